"""Score reports: NPS, CSAT, CES and the call funnel, grouped any way a supervisor asks.

Everything is aggregated by the database: one GROUP BY over answers (score
distributions) and one over survey requests (the funnel), each a single pass; Python
only merges the two by group and does the arithmetic on counts (scoring.nps). Requests
are selected and bucketed by the time their support call ended, since that is the
period a report is about.

Groups: agent, queue, team, survey, language, mode (callback or in-call), channel
(voice, sms, or sms_fallback: texted after the calls went unanswered), `meta:<key>` (a
metadata field), and one of day / week / month in the contact center's time zone
(scoring.buckets). The daily rollup is keyed by mode and channel too (migration 0018),
so a report by either reads it like any other where it covers the report
(scoring.rollup.covers); a `meta:<key>` group always counts the rows.

Texts add to the funnel what the rollup cannot count: requests texted (their
conversation exists), those whose survey text could not be delivered, and those that
expired with no reply. Counting the tables, the funnel's statement counts them in its
pass, with each request's conversation outer-joined; a report read from the rollup
counts them in one more small statement, joined from the conversations (a few rows,
none on a voice-only system). Both use the same expressions (`_text_counts`), so
either way gives the same figures. A request is `placed` once called or texted; a
texted customer is `reached` once they reply (the request leaves `texting`), the same
states that say so for a call (docs/reports.md, "Calls and texts side by side").

An in-call survey whose transfer matched no support call has no agent, queue or team:
its figures fall in the NULL group of those dimensions, which readers show as
UNATTRIBUTED (ReportRow.unattributed says when a row is such a group).

An admin's test call (`SurveyRequest.is_test`, dialer.trial_call) counts in no figure:
every statement here and in scoring.detractors selects through `filtered`, which
leaves test rows out, as the rollup's triggers do (migration 0009).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    String,
    and_,
    case,
    column,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from core.db import UTCDateTime
from core.models import (
    CES_COUNTERS,
    CSAT_COUNTERS,
    FUNNEL_COUNTERS,
    NPS_COUNTERS,
    ROLLUP_COUNTERS,
    SUPPRESSION_COUNTERS,
    Answer,
    Channel,
    RequestState,
    SmsConversation,
    Suppression,
    SurveyMode,
    SurveyRequest,
)
from scoring import nps as score
from scoring import rollup
from scoring.buckets import MAX_BUCKETS, UNITS, TooManyBuckets, buckets

DIMENSIONS = {
    "agent": SurveyRequest.agent,
    "queue": SurveyRequest.queue,
    "team": SurveyRequest.team,
    "survey": SurveyRequest.survey_name,
    "language": SurveyRequest.language,
    # As plain text: rows are merged by their group's values, and a SurveyMode member
    # does not hash like the string the answers carry.
    "mode": type_coerce(SurveyRequest.mode, String),
    "channel": type_coerce(SurveyRequest.channel, String),
}
# The filters a ReportQuery takes: one per dimension, each an equality.
FILTERS = tuple(DIMENSIONS)
MODES = tuple(mode.value for mode in SurveyMode)
CHANNELS = tuple(channel.value for channel in Channel)
TEXT_CHANNELS = tuple(channel.value for channel in Channel if channel.texts)
# sms.conversation closes a conversation whose question could not be delivered so.
UNDELIVERED_OUTCOME = "undelivered"
# Answers.input of an answer given in a text (sms.conversation).
TEXT_INPUT = "text"
# The dimensions an in-call survey without a matching support call leaves NULL.
ATTRIBUTION_DIMENSIONS = ("agent", "queue", "team")
UNATTRIBUTED = "unattributed"
META_PREFIX = "meta:"
NPS_SCALE, CSAT_SCALE, CES_SCALE = range(0, 11), range(1, 6), range(1, 8)
# CES is asked "1 very difficult ... 7 very easy": 5-7 is a low-effort experience.
CES_LOW_EFFORT_MIN = 5
# Below this many answers a score says more about chance than about service.
MIN_RELIABLE_SAMPLE = 30

REACHED = (
    RequestState.COMPLETED,
    RequestState.PARTIAL,
    RequestState.ABANDONED,
    RequestState.OPTED_OUT,
    RequestState.IN_PROGRESS,
)
SUPPRESSION_REASONS = tuple(reason.value for reason in Suppression)
# The days a report may ask about. Intake stores only calls that ended in 2000 to 2099
# (dialer.intake), so no figure lies outside them; and bounds this far from the ends of
# Python's calendar (years 1 to 9999) leave room for every offset, time zone and the
# previous period's arithmetic, which would otherwise overflow into a 500.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


class ReportError(ValueError):
    """A report was asked for in a way that cannot be answered.

    `parameter` names the request's parameter at fault (None: the request as a whole)
    and `problem` says what is wrong with it, so that each caller names the parameter its
    own way: the API `since`, the CLI `--since`. str() gives "since: <problem>".
    """

    def __init__(self, problem: str, parameter: str | None = None) -> None:
        super().__init__(f"{parameter}: {problem}" if parameter else problem)
        self.problem = problem
        self.parameter = parameter


@dataclass(frozen=True)
class ReportQuery:
    by: tuple[str, ...] = ()
    since: datetime | None = None  # on the support call's end time, inclusive
    until: datetime | None = None  # exclusive
    survey: str | None = None
    queue: str | None = None
    team: str | None = None
    agent: str | None = None
    language: str | None = None
    mode: str | None = None  # a SurveyMode value
    channel: str | None = None  # a Channel value
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def time_unit(self) -> str | None:
        return next((d for d in self.by if d in UNITS), None)

    def previous_period(self) -> ReportQuery:
        """The period of the same length just before this one; ReportError if it would
        start before FIRST_DAY (in the report's time zone)."""
        if self.since is None or self.until is None:
            raise ReportError("the previous period needs both since and until", "compare")
        previous = replace(self, since=self.since - (self.until - self.since), until=self.since)
        if previous.since < datetime.combine(FIRST_DAY, time(0), tzinfo=self.time_zone):
            starts = previous.since.astimezone(self.time_zone).date()
            raise ReportError(
                f"the previous period would start on {starts}, before {FIRST_DAY}, "
                "the first day a report covers",
                "compare",
            )
        previous.check_periods()
        return previous

    def check_periods(self) -> None:
        """ReportError if grouping by day, week or month makes more than MAX_BUCKETS
        periods between `since` and `until` (an open range is judged by the data, in
        `report`). The same limit on every database: SQLite needs the periods as a table,
        and no reader wants more rows than that."""
        unit = self.time_unit
        if unit is None or self.since is None or self.until is None:
            return
        try:
            buckets(self.since, self.until, unit, self.time_zone)
        except TooManyBuckets:
            raise ReportError(
                f"more than {MAX_BUCKETS:,} {unit}s between since and until, the most a "
                "report groups by; narrow the range or group by a longer period",
                "by",
            ) from None


@dataclass
class ReportRow:
    """One group's figures. Counts are exact; derived figures are None without data.

    A row read from the rollup starts light (`_LightRow`): its group and the database's
    tuple of summed counters, its fields filled in the first time one is read. A report
    of 60,000 groups (agents by day) thus builds no dictionaries for the groups nobody
    reads, and every reader sees the same fields either way.
    """

    group: dict[str, str | None]
    nps_distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(NPS_SCALE, 0))
    csat_distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(CSAT_SCALE, 0))
    ces_distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(CES_SCALE, 0))
    received: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    placed: int = 0  # requests with at least one (outbound) call placed, or texted
    calls_placed: int = 0
    answered: int = 0  # a person or a machine picked up, or a texted customer replied
    reached: int = 0  # a person picked up, or a texted customer replied
    completed: int = 0
    partial: int = 0
    opted_out: int = 0
    attempts_for_completed: int = 0
    texted: int = 0  # requests whose survey went out by text (a conversation exists)
    undelivered: int = 0  # texted requests whose survey text could not be delivered
    no_reply: int = 0  # texted requests that expired with no reply at all

    # -- NPS ---------------------------------------------------------------------------
    @property
    def nps_responses(self) -> int:
        return sum(self.nps_distribution.values())

    @property
    def promoters(self) -> int:
        return sum(n for k, n in self.nps_distribution.items() if k >= score.PROMOTER_MIN)

    @property
    def detractors(self) -> int:
        return sum(n for k, n in self.nps_distribution.items() if k <= score.DETRACTOR_MAX)

    @property
    def passives(self) -> int:
        return self.nps_responses - self.promoters - self.detractors

    @property
    def nps(self) -> float | None:
        return score.nps(self.promoters, self.detractors, self.nps_responses)

    @property
    def nps_margin(self) -> float | None:
        return score.nps_margin(self.promoters, self.detractors, self.nps_responses)

    @property
    def nps_reliable(self) -> bool:
        return self.nps_responses >= MIN_RELIABLE_SAMPLE

    # -- CSAT and CES ----------------------------------------------------------------
    @property
    def csat_responses(self) -> int:
        return sum(self.csat_distribution.values())

    @property
    def csat_satisfied(self) -> int:
        return sum(n for k, n in self.csat_distribution.items() if k >= score.CSAT_SATISFIED_MIN)

    @property
    def csat(self) -> float | None:
        return score.csat(self.csat_satisfied, self.csat_responses)

    @property
    def csat_margin(self) -> float | None:
        return score.csat_margin(self.csat_satisfied, self.csat_responses)

    @property
    def csat_mean(self) -> float | None:
        return _mean(self.csat_distribution)

    @property
    def ces_responses(self) -> int:
        return sum(self.ces_distribution.values())

    @property
    def ces(self) -> float | None:
        return _mean(self.ces_distribution)

    @property
    def ces_low_effort(self) -> float | None:
        n = self.ces_responses
        low = sum(c for k, c in self.ces_distribution.items() if k >= CES_LOW_EFFORT_MIN)
        return 100.0 * low / n if n else None

    # -- funnel ----------------------------------------------------------------------
    @property
    def response_rate(self) -> float | None:
        """Completed surveys per person reached, in percent."""
        return 100.0 * self.completed / self.reached if self.reached else None

    @property
    def invited(self) -> int:
        """Requests the survey was put to: a callback once the dialer placed a call, a
        text survey once its first text went out (both `placed`), an in-call survey once
        its customer was transferred and the survey began (reached; an in-call request
        places no call). Counted from the counters alone, the same whether read from the
        rollup or the tables (no counter says which requests were transferred): a call or text survey is reached only once placed, and
        an in-call request is never placed, so for a group of one mode this is `placed`
        (callbacks and texts, as before in-call surveys) or `reached` (in-call) exactly.
        For a group of both modes the larger of the two counts fewer requests than there
        were, so its rate reads high (never above 100%: every completed request is
        reached); docs/reports.md says where the exact ones are."""
        return max(self.placed, self.reached)

    @property
    def response_rate_placed(self) -> float | None:
        """Completed surveys per request called or texted (callbacks, texts) or
        transferred (in-call), in percent."""
        invited = self.invited
        return 100.0 * self.completed / invited if invited else None

    @property
    def attempts_per_completed(self) -> float | None:
        return self.attempts_for_completed / self.completed if self.completed else None

    @property
    def has_texts(self) -> bool:
        """Whether texts are part of this row's figures: a request of it was texted, or
        it is the group of a text channel. Readers add the text steps of the funnel
        (texted, undelivered, no reply) only then, so a voice-only report reads as it
        always did."""
        return self.texted > 0 or self.group.get("channel") in TEXT_CHANNELS

    @property
    def unattributed(self) -> bool:
        """Whether this row is the group of requests without an agent, queue or team (of
        those the report groups by): in-call surveys no support call claimed, and any
        request intake got without them. Readers label it UNATTRIBUTED."""
        return any(
            name in self.group and self.group[name] is None for name in ATTRIBUTION_DIMENSIONS
        )

    def to_json(self) -> dict[str, Any]:
        figures = self.figures()
        return {
            **self.group,
            "unattributed": self.unattributed,
            **figures,
            "nps_distribution": _distribution(self.nps_distribution, NPS_SCALE),
            "csat_distribution": _distribution(self.csat_distribution, CSAT_SCALE),
            "ces_distribution": _distribution(self.ces_distribution, CES_SCALE),
            "suppressed_by_reason": {k: v for k, v in self.suppressed.items() if v},
        }

    def figures(self) -> dict[str, Any]:
        """The row's counts and rounded figures, without its group or distributions: what
        a CSV line holds. Each tally is summed once here; the properties above sum again
        on every read, which made a 60,000-row download spend most of its time summing
        (bench.reports, "CSV")."""
        nps_counts = self.nps_distribution
        nps_responses = sum(nps_counts.values())
        promoters = sum(n for k, n in nps_counts.items() if k >= score.PROMOTER_MIN)
        detractors = sum(n for k, n in nps_counts.items() if k <= score.DETRACTOR_MAX)
        csat_counts = self.csat_distribution
        csat_responses = sum(csat_counts.values())
        satisfied = sum(n for k, n in csat_counts.items() if k >= score.CSAT_SATISFIED_MIN)
        ces_counts = self.ces_distribution
        ces_responses = sum(ces_counts.values())
        low_effort = sum(n for k, n in ces_counts.items() if k >= CES_LOW_EFFORT_MIN)
        completed, reached, invited = self.completed, self.reached, self.invited
        return {
            "nps": _round(score.nps(promoters, detractors, nps_responses)),
            "nps_margin": _round(score.nps_margin(promoters, detractors, nps_responses)),
            "nps_reliable": nps_responses >= MIN_RELIABLE_SAMPLE,
            "nps_responses": nps_responses,
            "promoters": promoters,
            "passives": nps_responses - promoters - detractors,
            "detractors": detractors,
            "csat": _round(score.csat(satisfied, csat_responses)),
            "csat_margin": _round(score.csat_margin(satisfied, csat_responses)),
            "csat_mean": _round(_mean(csat_counts, csat_responses), 2),
            "csat_responses": csat_responses,
            "ces": _round(_mean(ces_counts, ces_responses), 2),
            "ces_low_effort": _round(100.0 * low_effort / ces_responses if ces_responses else None),
            "ces_responses": ces_responses,
            "received": self.received,
            "suppressed": sum(self.suppressed.values()),
            "placed": self.placed,
            "calls_placed": self.calls_placed,
            "answered": self.answered,
            "reached": reached,
            "completed": completed,
            "partial": self.partial,
            "opted_out": self.opted_out,
            "texted": self.texted,
            "undelivered": self.undelivered,
            "no_reply": self.no_reply,
            "response_rate": _round(100.0 * completed / reached if reached else None),
            "response_rate_placed": _round(100.0 * completed / invited if invited else None),
            "attempts_per_completed": _round(
                self.attempts_for_completed / completed if completed else None, 2
            ),
        }

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())


class _UnreadField:
    """A field of a `_LightRow` not read yet: reading it fills in the row's fields. Not a
    data descriptor, so once a field is in the row's __dict__ it is read from there."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, row: ReportRow | None, owner: type | None = None) -> Any:
        if row is None:
            return self
        _fill_in(row)
        return row.__dict__[self.name]


class _LightRow(ReportRow):
    """A ReportRow read from the rollup, as its group and its tuple of summed counters
    (in ROLLUP_COUNTERS order) until a field is read; then it becomes a plain ReportRow
    with the fields the counters give."""

    for _name in ("nps_distribution", "csat_distribution", "ces_distribution", "suppressed",
                  *FUNNEL_COUNTERS, "texted", "undelivered", "no_reply"):  # fmt: skip
        locals()[_name] = _UnreadField()
    del _name

    def __init__(self, group: dict[str, str | None], counters: Sequence[int] | str) -> None:
        # The counters summed, or one row's as the database's text (_summed_here).
        self.__dict__.update(group=group, _counters=counters)

    def __eq__(self, other: object) -> bool:
        _fill_in(self)
        if isinstance(other, _LightRow):
            _fill_in(other)
        return self == other

    def __repr__(self) -> str:
        _fill_in(self)
        return repr(self)

    __hash__ = None  # type: ignore[assignment]  # as a mutable dataclass's


def _fill_in(row: ReportRow) -> None:
    """A light row's fields from its counters (a field set already stays, as the text
    counters `report` sets), and it a plain ReportRow from then on."""
    counters = row.__dict__.pop("_counters", None)
    if counters is not None:
        for name, value in _fields_from_rollup(_counters(counters)).items():
            row.__dict__.setdefault(name, value)
    row.__class__ = ReportRow


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _mean(distribution: dict[int, int], n: int | None = None) -> float | None:
    if n is None:
        n = sum(distribution.values())
    return sum(k * c for k, c in distribution.items()) / n if n else None


def _distribution(distribution: dict[int, int], scale: range) -> dict[str, int]:
    return {str(k): distribution.get(k, 0) for k in scale}


# -- the queries --------------------------------------------------------------------


def report(session: Session, query: ReportQuery) -> list[ReportRow]:
    """Figures per group, sorted by group; groups with requests but no answers included."""
    plan = _Plan(session, query)
    rows: dict[tuple, ReportRow] = {}
    names = [d.name for d in plan.dims]

    def row_for(key: tuple) -> ReportRow:
        if key not in rows:
            rows[key] = ReportRow(group=dict(zip(names, key, strict=True)))
        return rows[key]

    distributions = {
        "nps": "nps_distribution",
        "csat": "csat_distribution",
        "ces": "ces_distribution",
    }
    if plan.from_rollup:
        # The database's tuples, sorted, each the counters of a light row: a group costs
        # its tuple and its group's values, whatever the number of groups.
        width = len(names)
        if rollup.sums_each_row(query.by):
            with _no_cycle_collection():
                records = _summed_here(session, plan, width)
                light = [
                    _LightRow(dict(zip(names, record, strict=False)), record[width])
                    for record in records
                ]
        else:
            records = [tuple(record) for record in session.execute(plan.rollup_statement())]
            _sort_groups(records, width)
            light = [
                _LightRow(dict(zip(names, record, strict=False)), record[width:])
                for record in records
            ]
        # The text counters, from the conversations: none on a voice-only system, which
        # one look at the conversations tells (SQLite would otherwise walk the range's
        # requests to find none).
        texted = session.scalar(select(SmsConversation.id).limit(1)) is not None
        texts = session.execute(plan.texts_statement()).all() if texted else []
        if not texts:
            return light
        rows.update(zip((record[:width] for record in records), light, strict=True))
        for record in texts:
            _set_texts(row_for(tuple(record[:width])), *(int(v or 0) for v in record[width:]))
        return [rows[key] for key in sorted(rows, key=_sort_key)]

    for record in session.execute(plan.answers_statement()):
        key = tuple(record[: len(names)])
        kind, value, count = record[len(names) :]
        distribution = getattr(row_for(key), distributions[kind])
        if value in distribution:  # the scales' own values; the database enforces none
            distribution[value] += int(count)

    for record in session.execute(plan.funnel_statement()):
        key, counts = tuple(record[: len(names)]), [int(v or 0) for v in record[len(names) :]]
        row = row_for(key)
        (row.received, row.placed, row.calls_placed, row.answered, row.reached,
         row.completed, row.partial, row.opted_out, row.attempts_for_completed,
         *rest) = counts  # fmt: skip
        texts, suppressed = rest[: len(_TEXT_COUNTERS)], rest[len(_TEXT_COUNTERS) :]
        _set_texts(row, *texts)
        row.suppressed = dict(zip(SUPPRESSION_REASONS, suppressed, strict=True))

    return [rows[key] for key in sorted(rows, key=_sort_key)]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while tens of thousands of rows are made.

    Every few hundred new objects start a collection, and the older generations'
    collections walk the rows made so far again: for 60,000 agent-days that was 0.05
    to 0.15 s of the report on PostgreSQL at 10M answers (bench/RESULTS.md). The rows
    hold no reference cycles, so nothing is left for it meanwhile; it resumes (if it
    was on) once they are made.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _summed_here(session: Session, plan: _Plan, width: int) -> list[tuple]:
    """(group values..., counters) per group, from the rollup's rows unsummed: sorted by
    group, a group of one row keeps its counters as the database's text (a light row
    reads them when asked), a group of several is added up here. As the summed
    statement, a group exists where requests do (its `received` adds up to more than 0).
    """
    # The driver's own tuples: every value is a string or an integer as it comes.
    records = session.execute(plan.rollup_statement(summed=False)).cursor.fetchall()
    _sort_groups(records, width)
    summed: list[tuple] = []
    group_of = itemgetter(*range(width)) if width > 1 else lambda record: (record[0],)
    for key, group in groupby(records, group_of):
        rows = list(group)
        if len(rows) == 1:
            if rows[0][width] > 0:
                summed.append((*key, rows[0][width + 1]))
        elif sum(row[width] for row in rows) > 0:
            counters = [_counters(row[width + 1]) for row in rows]
            summed.append((*key, tuple(map(sum, zip(*counters, strict=True)))))
    return summed


def _counters(packed: str | Sequence[int]) -> Sequence[int]:
    """A rollup row's counters, from their text (rollup.unsummed_statement) if packed."""
    return tuple(map(int, packed.split(","))) if isinstance(packed, str) else packed


def _sort_groups(records: list[tuple], width: int) -> None:
    """`records` in the order of their groups (their first `width` values) by _sort_key.

    Tuples of strings compare, in C, as _sort_key orders them (no two records share a
    group, so their counters are never compared); a None compares only with None or
    raises TypeError, and then the key decides.
    """
    try:
        records.sort()
    except TypeError:
        records.sort(key=lambda record: _sort_key(record[:width]))


def _set_texts(
    row: ReportRow, texted: int, never_called: int, undelivered: int, no_reply: int
) -> None:
    """A row's text counters (_TEXT_COUNTERS, in order). A texted request never called is
    placed too; a fallback's calls placed it already, as the funnel and rollup count."""
    row.texted, row.undelivered, row.no_reply = texted, undelivered, no_reply
    row.placed += never_called


def _fields_from_rollup(sums: Sequence[int]) -> dict[str, Any]:
    """A row's fields from its summed rollup counters (in ROLLUP_COUNTERS order), the
    text counters 0 (`report` sets them, from the conversations)."""
    cut = _ROLLUP_SLICES
    return {
        "nps_distribution": dict(zip(NPS_SCALE, sums[cut["nps"]], strict=True)),
        "csat_distribution": dict(zip(CSAT_SCALE, sums[cut["csat"]], strict=True)),
        "ces_distribution": dict(zip(CES_SCALE, sums[cut["ces"]], strict=True)),
        "suppressed": dict(zip(SUPPRESSION_REASONS, sums[cut["suppressed"]], strict=True)),
        **dict(zip(FUNNEL_COUNTERS, sums[cut["funnel"]], strict=True)),
        "texted": 0,
        "undelivered": 0,
        "no_reply": 0,
    }


def _slices(**lengths: int) -> dict[str, slice]:
    slices, start = {}, 0
    for name, length in lengths.items():
        slices[name], start = slice(start, start + length), start + length
    return slices


_ROLLUP_SLICES = _slices(
    nps=len(NPS_COUNTERS),
    csat=len(CSAT_COUNTERS),
    ces=len(CES_COUNTERS),
    funnel=len(FUNNEL_COUNTERS),
    suppressed=len(SUPPRESSION_COUNTERS),
)
assert (*NPS_COUNTERS, *CSAT_COUNTERS, *CES_COUNTERS, *FUNNEL_COUNTERS,
                           *SUPPRESSION_COUNTERS) == ROLLUP_COUNTERS  # fmt: skip


def _sort_key(key: tuple) -> tuple:
    return tuple((value is None, value or "") for value in key)


@dataclass(frozen=True)
class _Source:
    """Where a query reads the report fields: the requests, or their copies on answers."""

    ended: ColumnElement
    fields: dict[str, ColumnElement]
    counted: ColumnElement  # the rows figures count: not an admin's test call


REQUESTS = _Source(SurveyRequest.call_ended_at, DIMENSIONS, ~SurveyRequest.is_test)
ANSWERS = _Source(
    Answer.call_ended_at,
    {
        "agent": Answer.agent,
        "queue": Answer.queue,
        "team": Answer.team,
        "survey": Answer.survey_name,
        "language": Answer.language,
        # Every answer copies its request's mode (core.models.REPORT_FIELDS; migration
        # 0012 filled in the older ones); one stored with its report fields already set
        # copies nothing, and is a callback's, as a request is by default.
        "mode": func.coalesce(Answer.mode, SurveyMode.CALLBACK.value),
        # Answers stored before texts existed carry no channel (migration 0014 left them
        # as they were): they were all given in calls.
        "channel": func.coalesce(Answer.channel, Channel.VOICE.value),
    },
    ~Answer.is_test,
)
# PostgreSQL labels for local periods (ISO weeks, Monday first, as scoring.buckets).
_PERIOD_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}


@dataclass(frozen=True)
class _Dimension:
    name: str
    meta_key: str | None = None
    unit: str | None = None


def _dimensions(query: ReportQuery) -> list[_Dimension]:
    dims: list[_Dimension] = []
    for name in dict.fromkeys(query.by):
        if name in DIMENSIONS:
            dims.append(_Dimension(name))
        elif name.startswith(META_PREFIX) and len(name) > len(META_PREFIX):
            dims.append(_Dimension(name, meta_key=name[len(META_PREFIX) :]))
        elif name in UNITS:
            if sum(1 for d in query.by if d in UNITS) > 1:
                raise ReportError("group by one of day, week or month, not several", "by")
            dims.append(_Dimension(name, unit=name))
        else:
            allowed = ", ".join([*DIMENSIONS, *UNITS, "meta:<key>"])
            raise ReportError(f"cannot group by {name!r} (expected one of {allowed})", "by")
    return dims


class _Plan:
    """The two statements of one report, for one database.

    Local days, weeks and months: PostgreSQL converts time zones exactly itself
    (`AT TIME ZONE` then `date_trunc`); SQLite cannot, so there the statements join a
    small table of the periods' UTC ranges computed by scoring.buckets.
    """

    def __init__(self, session: Session, query: ReportQuery) -> None:
        self.query = query
        self.dims = _dimensions(query)
        self.postgres = session.get_bind().dialect.name == "postgresql"
        unit = query.time_unit
        self.from_rollup = rollup.covers(
            session, query.time_zone, query.since, query.until, query.by, self._filters()
        )
        self.bucket_table = (
            _bucket_table(session, query, unit) if unit and not self.postgres else None
        )

    def _filters(self) -> dict[str, str]:
        return {n: getattr(self.query, n) for n in FILTERS if getattr(self.query, n) is not None}

    def rollup_statement(self, *, summed: bool = True) -> Select:
        """The same figures from the daily rollup (when `from_rollup`), summed per group
        or (`summed=False`) its rows as rollup.unsummed_statement gives them."""
        make = rollup.figures_statement if summed else rollup.unsummed_statement
        return make(
            self.query.time_zone,
            self.query.since,
            self.query.until,
            tuple(d.name for d in self.dims),
            self._filters(),
            postgres=self.postgres,
        )

    def _expression(self, dim: _Dimension, source: _Source) -> ColumnElement:
        if dim.meta_key is not None:
            return SurveyRequest.extra[dim.meta_key].as_string()
        if dim.unit is not None:
            if self.bucket_table is not None:
                return self.bucket_table.c.label
            local = func.timezone(self.query.time_zone.key, source.ended)
            return func.to_char(func.date_trunc(dim.unit, local), _PERIOD_FORMATS[dim.unit])
        return source.fields[dim.name]

    def _grouped(self, statement: Select, source: _Source) -> Select:
        if self.bucket_table is not None:
            table = self.bucket_table
            statement = statement.join(
                table, and_(source.ended >= table.c.starts, source.ended < table.c.ends)
            )
        expressions = [self._expression(d, source) for d in self.dims]
        labelled = [e.label(f"g{i}") for i, e in enumerate(expressions)]
        return filtered(statement.add_columns(*labelled).group_by(*expressions), self.query, source)

    def answers_statement(self) -> Select:
        """Answer counts per group, kind and value, from the answers table alone (its
        copies of the request's fields), pivoted into distributions by the reader."""
        base = select().select_from(Answer)
        if any(d.meta_key is not None for d in self.dims):
            base = base.join(SurveyRequest, SurveyRequest.id == Answer.request_id)
        statement = self._grouped(base, ANSWERS)
        return (
            statement.add_columns(Answer.kind, Answer.value, func.count())
            .group_by(Answer.kind, Answer.value)
            .where(Answer.kind.in_(("nps", "csat", "ces")))
        )

    def funnel_statement(self) -> Select:
        state = SurveyRequest.state
        calls = SurveyRequest.calls_placed
        counts = [
            func.count(SurveyRequest.id),
            _count_where(calls > 0),
            func.sum(calls),
            _count_where(state.in_((*REACHED, RequestState.VOICEMAIL))),
            _count_where(state.in_(REACHED)),
            _count_where(state == RequestState.COMPLETED),
            _count_where(state == RequestState.PARTIAL),
            _count_where(state == RequestState.OPTED_OUT),
            func.sum(case((state == RequestState.COMPLETED, calls), else_=0)),
            *_text_counts(),
            *[
                _count_where(
                    and_(
                        state.in_((RequestState.SUPPRESSED, RequestState.EXPIRED)),
                        SurveyRequest.suppression_reason == reason,
                    )
                )
                for reason in SUPPRESSION_REASONS
            ],
        ]
        # The requests' conversations alongside (at most one each, so no count changes),
        # for the text counters in the same pass.
        base = select().select_from(SurveyRequest).outerjoin(SmsConversation, _TEXTED_REQUEST)
        return self._grouped(base, REQUESTS).add_columns(*counts)

    def texts_statement(self) -> Select:
        """The text counters per group alone, for a report read from the rollup.

        From the conversations joined to their requests, so that its cost follows the
        texts, not the calls: on a voice-only system it reads an empty table.
        """
        base = select().select_from(SurveyRequest).join(SmsConversation, _TEXTED_REQUEST)
        return self._grouped(base, REQUESTS).add_columns(*_text_counts())


# One conversation per request (unique request_id): a request is texted when it has one.
_TEXTED_REQUEST = SmsConversation.request_id == SurveyRequest.id
_TEXT_COUNTERS = ("texted", "never_called", "undelivered", "no_reply")


def _text_counts() -> list[ColumnElement]:
    """_TEXT_COUNTERS over requests joined to their conversation, whether outer-joined
    (the funnel statement) or inner-joined (texts_statement): every count needs the
    conversation, so both give the same figures."""
    texted = SmsConversation.id.is_not(None)
    return [
        func.count(SmsConversation.id),
        _count_where(and_(texted, SurveyRequest.calls_placed == 0)),
        _count_where(SmsConversation.outcome == UNDELIVERED_OUTCOME),
        _count_where(and_(texted, SurveyRequest.state == RequestState.NO_REPLY)),
    ]


def _bucket_table(session: Session, query: ReportQuery, unit: str):
    since, until = query.since, query.until
    if since is None or until is None:
        # Without a range, cover the data there is.
        first, last = session.execute(
            filtered(
                select(
                    func.min(SurveyRequest.call_ended_at), func.max(SurveyRequest.call_ended_at)
                ),
                query,
            )
        ).one()
        since = since or first
        until = until or (last + timedelta(microseconds=1) if last else None)
    try:
        periods = buckets(since, until, unit, query.time_zone) if since and until else []
    except TooManyBuckets:
        raise ReportError(
            f"more than {MAX_BUCKETS:,} {unit}s from the first call to the last, the most a "
            "report groups by; give since and until, or group by a longer period",
            "by",
        ) from None
    table = values(
        column("label", String),
        column("starts", UTCDateTime()),
        column("ends", UTCDateTime()),
        name="buckets",
    ).data([(b.label, b.starts, b.ends) for b in periods] or [("", _EPOCH, _EPOCH)])
    # A CTE, not an inline VALUES: SQLite cannot name the columns of (VALUES ...) AS t.
    return table.cte("buckets")


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def filtered(statement: Select, query: ReportQuery, source: _Source = REQUESTS) -> Select:
    """`statement` restricted to the rows the query's figures count: its period and
    filters, and never an admin's test call."""
    conditions = [source.counted]
    if query.since is not None:
        conditions.append(source.ended >= query.since)
    if query.until is not None:
        conditions.append(source.ended < query.until)
    for name in FILTERS:
        value = getattr(query, name)
        if value is not None:
            conditions.append(source.fields[name] == value)
    return statement.where(*conditions)


def group_values(
    session: Session, names: Iterable[str], query: ReportQuery
) -> dict[str, list[str]]:
    """The values each of `names` (agent, queue, team, survey, language, mode, channel) takes
    among the requests of the query's period, sorted: what a filter dropdown offers."""
    names = tuple(names)
    period = ReportQuery(since=query.since, until=query.until, time_zone=query.time_zone)
    if rollup.covers(session, period.time_zone, period.since, period.until, names, {}):
        statement = rollup.values_statement(period.time_zone, period.since, period.until, names)
    else:
        statement = union(
            *(
                filtered(
                    select(
                        literal(name, String).label("dimension"), DIMENSIONS[name].label("value")
                    ).where(DIMENSIONS[name].is_not(None)),
                    period,
                )
                for name in names
            )
        )
    values: dict[str, list[str]] = {name: [] for name in names}
    for dimension, value in session.execute(statement.order_by("dimension", "value")):
        values[dimension].append(value)
    return values


def _count_where(condition: ColumnElement) -> ColumnElement:
    return func.sum(case((condition, 1), else_=0))


@dataclass(frozen=True)
class SpokenShare:
    """How the period's scale answers given in calls were given: said aloud
    (core.utterance) or keyed. Texted answers are neither, and are not counted."""

    answers: int
    spoken: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.spoken / self.answers if self.answers else None

    def to_json(self) -> dict[str, Any]:
        return {"answers": self.answers, "spoken": self.spoken, "percent": _round(self.percent)}


def spoken_share(session: Session, query: ReportQuery) -> SpokenShare:
    """The share of spoken answers among the query's answers with a value given in calls
    (its period and filters, test calls aside): from the rollup's two input counters
    where it covers the query (migration 0018 counts them as below), else counted from
    the answers. A texted answer is left out: it was neither said nor keyed, and
    counting it would read as keyed."""
    filters = {n: getattr(query, n) for n in FILTERS if getattr(query, n) is not None}
    if rollup.covers(session, query.time_zone, query.since, query.until, (), filters):
        statement = rollup.spoken_statement(query.time_zone, query.since, query.until, filters)
        answers, spoken = session.execute(statement).one()
        return SpokenShare(int(answers), int(spoken))
    answers, spoken = session.execute(
        filtered(
            select(
                func.count(Answer.id),
                _count_where(Answer.input == "speech"),
            ).where(
                Answer.value.is_not(None),
                or_(Answer.input.is_(None), Answer.input != TEXT_INPUT),
            ),
            query,
            ANSWERS,
        )
    ).one()
    return SpokenShare(answers or 0, spoken or 0)


_COUNTS = ("received", "placed", "calls_placed", "answered", "reached", "completed", "partial",
           "opted_out", "attempts_for_completed", "texted", "undelivered", "no_reply")  # fmt: skip


def totals(rows: Iterable[ReportRow]) -> ReportRow:
    """All groups added together (counts add; scores are recomputed from the counts)."""
    total = ReportRow(group={})
    for row in rows:
        for name in ("nps_distribution", "csat_distribution", "ces_distribution", "suppressed"):
            merged = getattr(total, name)
            for k, v in getattr(row, name).items():
                merged[k] = merged.get(k, 0) + v
        for name in _COUNTS:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total


def regroup(rows: Iterable[ReportRow], names: Sequence[str]) -> list[ReportRow]:
    """`rows` added together per value of `names` (a part of their groups), sorted as
    `report` sorts: the figures a report by `names` alone gives, since every counter
    adds. One report by (mode, channel) thus gives both the table by mode and the one
    by channel, with one pass over the tables instead of two."""
    parts: dict[tuple, list[ReportRow]] = {}
    for row in rows:
        parts.setdefault(tuple(row.group.get(name) for name in names), []).append(row)
    grouped = []
    for key in sorted(parts, key=_sort_key):
        row = totals(parts[key])
        row.group = dict(zip(names, key, strict=True))
        grouped.append(row)
    return grouped


def outcomes(session: Session) -> dict[RequestState, int]:
    """How many requests (test calls aside) are in each state."""
    rows = session.execute(
        filtered(select(SurveyRequest.state, func.count(SurveyRequest.id)), ReportQuery()).group_by(
            SurveyRequest.state
        )
    )
    return {state: count for state, count in rows}
