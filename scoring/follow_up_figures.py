"""How well follow-ups close the loop (issue 18): per team, owner or survey, how many
opened, how many are still open and overdue, how fast the first contact and the
resolution came, and how many were resolved within their SLA.

What each figure counts (follow-ups opened in the range, `opened_at` in [since, until)):

- `opened`: all of them. `open`: still new or contacted. `overdue`: open, and due
  before `now`.
- `median_hours_to_first_contact`: over those with a first contact, the time from
  opening to it. The first contact is `first_contacted_at` as scoring.follow_ups.update
  stamps it: the first time the status left new (to contacted, or straight to closed). `median_hours_to_resolution`: over those resolved, opening to closing.
  Won't-fix ones are left out of it: giving up is not resolving, and counting them
  would make giving up early look like fast work.
- `sla_share` (resolved within SLA): resolved ones closed by their due time, over the
  closed ones (resolved and won't fix). Decision: a won't-fix counts against the share,
  so closing the hard cases as won't fix cannot raise it; open follow-ups are left out,
  since how they end is not known yet, and the late ones among them are what `overdue`
  counts. A reader wants both: the share says how the closed cases went, overdue says
  what is piling up.

Durations are whole seconds between the two stamps, each cut to its second, on both
databases (SQLite's `strftime('%s')` is exact to the second, and PostgreSQL's epoch is
cut the same way), so the medians are the same numbers on both, to the last digit.

Counts are one `GROUP BY` statement. Medians: PostgreSQL computes them in that same
statement (`percentile_cont`, which skips the NULLs of the ones not counted); SQLite has
no such aggregate, so a second statement returns only the durations of each group (two
numbers a row, never the follow-ups themselves) and Python takes their median. The
tests run every figure on both. `with_total` gives the groups and their total from one
pass: GROUPING SETS on PostgreSQL, the same two statements on SQLite (the total's counts
are the groups' sums, its medians those of the durations pooled). On 100,000 follow-ups
(bench/follow_ups_page.py) a year by team with the total takes about 150 ms on
PostgreSQL, 30 days about 16 ms: a page should ask for a period.

Test calls never count (`is_test`), whatever visibility condition the caller passes;
that condition (scoring.follow_ups.visible) decides the rest: a supervisor's figures are
their teams'. The rows' text forms are here (`to_table` for the CLI, `to_csv` for it and
any download, `FollowUpFigures.to_json`); HTML is the dashboard's.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.models import FollowUp
from scoring.follow_ups import OPEN

# What figures can be grouped by, and the column each reads.
GROUPS: dict[str, InstrumentedAttribute[Any]] = {
    "team": FollowUp.team,
    "owner": FollowUp.owner,
    "survey": FollowUp.survey_name,
}
# How readers name a missing group: no team (an in-call survey no support call claimed,
# as reports say), or nobody owns it. JSON keeps null.
MISSING_LABELS = {"team": "unattributed", "owner": "unassigned", "survey": "(none)"}
SECONDS_PER_HOUR = 3600
# Median seconds to first contact and to resolution (None: nothing to take one of).
Medians = tuple[float | None, float | None]
# The counts of a row, which add up from the groups to the total.
ADDITIVE = ("opened", "open", "overdue", "contacted", "resolved", "wont_fix", "resolved_in_sla")


class FigureError(ValueError):
    """Figures asked for in a way that cannot be answered; the message says why."""


@dataclass(frozen=True)
class FollowUpFigures:
    """One group's figures (`group` maps each `by` name to its value, None for none;
    empty for the total)."""

    group: dict[str, str | None]
    opened: int = 0
    open: int = 0
    overdue: int = 0
    contacted: int = 0  # with a first contact (contacted, or closed)
    resolved: int = 0
    wont_fix: int = 0
    resolved_in_sla: int = 0
    median_seconds_to_first_contact: float | None = None
    median_seconds_to_resolution: float | None = None

    @property
    def closed(self) -> int:
        return self.resolved + self.wont_fix

    @property
    def sla_share(self) -> float | None:
        """Resolved within SLA over closed (resolved and won't fix), 0 to 1; None when
        none closed."""
        return self.resolved_in_sla / self.closed if self.closed else None

    @property
    def median_hours_to_first_contact(self) -> float | None:
        return _hours(self.median_seconds_to_first_contact)

    @property
    def median_hours_to_resolution(self) -> float | None:
        return _hours(self.median_seconds_to_resolution)

    def label(self, name: str) -> str:
        """The group's value as a reader sees it: a missing one named MISSING_LABELS."""
        value = self.group.get(name)
        return value if value else MISSING_LABELS[name]

    def to_json(self) -> dict[str, Any]:
        hours_contact = self.median_hours_to_first_contact
        hours_resolution = self.median_hours_to_resolution
        share = self.sla_share
        return {
            **self.group,
            "opened": self.opened,
            "open": self.open,
            "overdue": self.overdue,
            "contacted": self.contacted,
            "resolved": self.resolved,
            "wont_fix": self.wont_fix,
            "closed": self.closed,
            "resolved_in_sla": self.resolved_in_sla,
            "sla_share": None if share is None else round(share, 4),
            "median_hours_to_first_contact": (
                None if hours_contact is None else round(hours_contact, 3)
            ),
            "median_hours_to_resolution": (
                None if hours_resolution is None else round(hours_resolution, 3)
            ),
        }


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_HOUR


def parse_by(names: Sequence[str]) -> tuple[str, ...]:
    """`by` as given (each name one of GROUPS, or comma-separated names; a blank one asks
    for nothing), checked."""
    if isinstance(names, str):  # one name (a str is a sequence of its letters too)
        names = (names,)
    parts = tuple(part.strip() for name in names if name.strip() for part in name.split(","))
    for name in parts:
        if not name:
            raise FigureError("a group's name is empty (two commas, or one at an end)")
        if name not in GROUPS:
            raise FigureError(
                f"cannot group by {name[:50]!r} (expected one of {', '.join(GROUPS)})"
            )
    if len(set(parts)) != len(parts):
        raise FigureError("each group at most once")
    return parts


def figures(
    session: Session,
    by: Sequence[str] = (),
    *,
    visible: ColumnElement[bool],
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FollowUpFigures]:
    """The figures of follow-ups opened in [since, until) that `visible` lets through,
    one row per group of `by` (team, owner, survey), ordered by group with missing groups
    last; without `by`, exactly one row: the total (zeros when nothing matches).

    `visible` is scoring.follow_ups.visible(viewer); a caller with more filters (a team,
    a survey) ands them into it. `now` decides what is overdue. A caller that shows the
    total too asks `with_total`, which reads the follow-ups once for both."""
    rows, _ = _figures(session, by, visible, now, since, until, want_total=False)
    return rows


def with_total(
    session: Session,
    by: Sequence[str],
    *,
    visible: ColumnElement[bool],
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[FollowUpFigures], FollowUpFigures]:
    """`figures(...)` and the total of the same follow-ups, in one pass over them.

    The total's counts are the sums of the groups', but its medians are not the groups'
    medians of anything: PostgreSQL computes the groups and the total in one statement
    (GROUPING SETS), SQLite pools the durations it already returned per group."""
    rows, whole = _figures(session, by, visible, now, since, until, want_total=True)
    assert whole is not None
    return rows, whole


def total(
    session: Session,
    *,
    visible: ColumnElement[bool],
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> FollowUpFigures:
    """All the follow-ups `figures` would group, as one row."""
    return figures(session, (), visible=visible, now=now, since=since, until=until)[0]


def _figures(
    session: Session,
    by: Sequence[str],
    visible: ColumnElement[bool],
    now: datetime,
    since: datetime | None,
    until: datetime | None,
    *,
    want_total: bool,
) -> tuple[list[FollowUpFigures], FollowUpFigures | None]:
    by = parse_by(by)
    if since is not None and until is not None and since >= until:
        raise FigureError("since must be before until")
    columns = [GROUPS[name] for name in by]
    where = [FollowUp.is_test.is_(False), visible]
    if since is not None:
        where.append(FollowUp.opened_at >= since)
    if until is not None:
        where.append(FollowUp.opened_at < until)
    postgres = session.get_bind().dialect.name == "postgresql"
    to_contact = _seconds_between(postgres, FollowUp.opened_at, FollowUp.first_contacted_at)
    to_resolution = case(
        (
            FollowUp.status == "resolved",
            _seconds_between(postgres, FollowUp.opened_at, FollowUp.closed_at),
        )
    )
    is_open = FollowUp.status.in_(OPEN)
    aggregates = [
        func.count(FollowUp.id),
        _count_if(is_open),
        _count_if(and_(is_open, FollowUp.due_at < now)),
        func.count(FollowUp.first_contacted_at),
        _count_if(FollowUp.status == "resolved"),
        _count_if(FollowUp.status == "wont_fix"),
        _count_if(and_(FollowUp.status == "resolved", FollowUp.closed_at <= FollowUp.due_at)),
    ]
    if postgres:
        # Ordered-set aggregates skip NULLs: the uncontacted, the unresolved.
        aggregates += [
            func.percentile_cont(0.5).within_group(to_contact),
            func.percentile_cont(0.5).within_group(to_resolution),
        ]
    both = bool(columns) and want_total and postgres
    # grouping() is 0 on a group's row and non-zero on the total's, which a NULL group
    # (no team, no owner) could not tell apart by its values.
    marker = [func.grouping(*columns)] if both else []
    statement = select(*columns, *marker, *aggregates).where(*where)
    if columns:
        grouped = func.grouping_sets(tuple_(*columns), tuple_()) if both else None
        statement = statement.group_by(*([grouped] if grouped is not None else columns))
        statement = statement.order_by(
            *marker, *(part for column in columns for part in (column.is_(None), column))
        )
    width = len(columns) + len(marker)
    medians: dict[tuple[Any, ...], Medians] = {}
    pooled: Medians = (None, None)
    if not postgres:
        medians, pooled = _medians(session, columns, where, to_contact, to_resolution)
    rows: list[FollowUpFigures] = []
    whole: FollowUpFigures | None = None
    for row in session.execute(statement):
        key = tuple(row[: len(columns)])
        is_total = not columns or bool(marker and row[len(columns)])
        values = row[width:]
        contact, resolution = values[7:9] if postgres else medians.get(key, (None, None))
        figures_ = FollowUpFigures(
            group={} if is_total else dict(zip(by, key, strict=True)),
            **dict(zip(ADDITIVE, values[:7], strict=True)),
            median_seconds_to_first_contact=None if contact is None else float(contact),
            median_seconds_to_resolution=None if resolution is None else float(resolution),
        )
        if is_total:
            whole = figures_
        else:
            rows.append(figures_)
    if not columns:
        assert whole is not None  # an aggregate without GROUP BY gives one row, always
        return [whole], whole
    if want_total and whole is None:
        # SQLite: the groups' counts add up; the medians come from every duration pooled.
        whole = FollowUpFigures(
            group={},
            **{name: sum(getattr(row, name) for row in rows) for name in ADDITIVE},
            median_seconds_to_first_contact=pooled[0],
            median_seconds_to_resolution=pooled[1],
        )
    return rows, whole


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT skips the NULL a CASE without ELSE gives: portable, unlike FILTER (WHERE ...).
    return func.count(case((condition, 1)))


def _seconds_between(
    postgres: bool, start: InstrumentedAttribute[Any], end: InstrumentedAttribute[Any]
) -> ColumnElement[Any]:
    """Whole seconds from `start` to `end` (NULL when `end` is), each stamp cut to its
    second: exact integers on both databases, so both give the same medians."""
    if postgres:
        # date_part is double precision, exact for an epoch in microseconds (under 2**53),
        # and cheaper per row than extract()'s numeric.
        return func.floor(func.date_part("epoch", end)) - func.floor(func.date_part("epoch", start))
    return cast(func.strftime("%s", end), Integer) - cast(func.strftime("%s", start), Integer)


def _medians(
    session: Session,
    columns: list[InstrumentedAttribute[Any]],
    where: list[ColumnElement[bool]],
    to_contact: ColumnElement[Any],
    to_resolution: ColumnElement[Any],
) -> tuple[dict[tuple[Any, ...], Medians], Medians]:
    """SQLite: each group's median seconds to first contact and to resolution, from the
    durations the database computes (the follow-ups themselves never leave it), and
    those of all the groups pooled, for the total."""
    contact: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    resolution: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    statement = select(*columns, to_contact, to_resolution).where(
        *where, or_(FollowUp.first_contacted_at.is_not(None), FollowUp.status == "resolved")
    )
    width = len(columns)
    for row in session.execute(statement):
        key = tuple(row[:width])
        if row[width] is not None:
            contact[key].append(row[width])
        if row[width + 1] is not None:
            resolution[key].append(row[width + 1])
    per_group = {
        key: (_median(contact.get(key)), _median(resolution.get(key)))
        for key in contact.keys() | resolution.keys()
    }
    pooled = (
        _median([seconds for values in contact.values() for seconds in values]),
        _median([seconds for values in resolution.values() for seconds in values]),
    )
    return per_group, pooled


def _median(values: list[int] | None) -> float | None:
    return float(statistics.median(values)) if values else None


# -- as text -----------------------------------------------------------------------------

CSV_FIGURES = (
    "opened", "open", "overdue", "contacted", "resolved", "wont_fix", "closed",
    "resolved_in_sla", "sla_share", "median_hours_to_first_contact",
    "median_hours_to_resolution",
)  # fmt: skip


def to_csv(rows: Sequence[FollowUpFigures], by: Sequence[str]) -> str:
    """One line per group, every figure in its own column (blank where there is none);
    a missing group reads as the table names it (unattributed, unassigned)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*by, *CSV_FIGURES])
    for row in rows:
        figures_ = row.to_json()
        writer.writerow(
            [row.label(name) for name in by]
            + ["" if figures_[name] is None else figures_[name] for name in CSV_FIGURES]
        )
    return buffer.getvalue()


def _hours_cell(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f}"


def to_table(
    rows: Sequence[FollowUpFigures], by: Sequence[str], total: FollowUpFigures | None = None
) -> str:
    """Aligned columns for the terminal, the total last under a rule. The SLA share shows
    its count too ("50% of 4"): a share of two closed cases reads differently."""
    header = [*by, "opened", "open", "overdue", "h to contact", "h to resolve", "in SLA"]
    lines = []
    for row in [*rows, *([total] if total is not None else [])]:
        if row is total and by:
            group = ["total"] + [""] * (len(by) - 1)
        else:
            group = [row.label(name) for name in by]
        share = row.sla_share
        lines.append(
            [
                *group,
                str(row.opened),
                str(row.open),
                str(row.overdue),
                _hours_cell(row.median_hours_to_first_contact),
                _hours_cell(row.median_hours_to_resolution),
                "-" if share is None else f"{share * 100:.0f}% of {row.closed}",
            ]
        )
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < len(by) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [render(line) for line in lines]
    if total is not None and rows and by:
        body.insert(len(rows), rule)
    return "\n".join([render(header), rule, *body])
