"""The daily report rollup on PostgreSQL: when reports may read it, and its upkeep.

A report over 90 days of ten million answers would otherwise read millions of rows; the
rollup holds one row per day and agent/queue/team/survey/language (migration 0005 says
how PostgreSQL keeps it current). It is used only when it gives exactly the figures the
full aggregation would: on PostgreSQL, in the time zone it was built in, for ranges
that start and end at local midnight, and without metadata groups. It has no survey
mode (callback or in-call) and no channel (voice or text), so a report grouped or
filtered by either is never read from it; its counters are the same per request
whatever the mode or channel. What it cannot count of texts (texted, undelivered, no
reply) scoring.report counts from the conversations on either path. Anything else
aggregates answers and requests directly (scoring.report), so the rollup can make a
report faster but never different. Neither counts an admin's test call: the triggers
give test rows no figures (migration 0009), as scoring.report.filtered leaves them out.

Upkeep: `compact` (every minute through `rq cron`) folds the triggers' deltas into
report_daily, `tidy` (daily) keeps its rows in day order, and `switch_on` (by
`aftercall db upgrade`) builds it in REPORT_TIME_ZONE.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    and_,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from core.db import utcnow
from core.models import (
    ROLLUP_COUNTERS,
    ROLLUP_KEYS,
    ReportRollup,
    report_daily,
    report_daily_delta,
    report_daily_teams,
)

# Compaction and rebuilds take this transaction-level advisory lock, so that they never
# interleave (two cron runs, or a rebuild during a compaction).
_UPKEEP_LOCK = 0x41465452_4F4C4C  # "AFTROLL"
_PERIOD_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}


def built_zone(session: Session) -> str | None:
    """The time zone the rollup's days are in, or None where there is no rollup."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    zone = session.scalar(select(ReportRollup.time_zone).where(ReportRollup.id == 1))
    return zone or None


def covers(
    session: Session,
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
    groups: tuple[str, ...],
    filters: dict[str, str],
) -> bool:
    """Whether the rollup gives this report's figures exactly: never for a group or a
    filter it has no column for (a metadata key, the survey mode, the channel)."""
    if any(name not in _GROUPABLE for name in groups):
        return False
    if any(name not in _FIELDS for name in filters):
        return False
    if not all(bound is None or _is_local_midnight(bound, zone) for bound in (since, until)):
        return False
    return built_zone(session) == zone.key


def figures_statement(
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
    groups: tuple[str, ...],
    filters: dict[str, str],
) -> Select:
    """Per group: the group's values, then every counter of ROLLUP_COUNTERS, summed."""
    per_agent = "agent" in groups or "agent" in filters
    key_columns = ROLLUP_KEYS if per_agent else tuple(k for k in ROLLUP_KEYS if k != "agent")
    rows = _rows(zone, since, until, filters, (*key_columns, *ROLLUP_COUNTERS)).subquery("rollup")
    keys = [_group_expression(rows, name) for name in groups]
    sums = [func.sum(rows.c[name]) for name in ROLLUP_COUNTERS]
    return (
        select(*(key.label(f"g{i}") for i, key in enumerate(keys)), *sums)
        .group_by(*keys)
        # A group exists where requests do (answers always come with their request).
        .having(func.sum(rows.c.received) > 0)
    )


def values_statement(
    zone: ZoneInfo, since: datetime | None, until: datetime | None, names: tuple[str, ...]
) -> CompoundSelect:
    """(dimension, value) for each value that `names` (queue, team, ...) take in the
    range: one scan of the rollup's key columns, shared by every dimension."""
    columns = tuple(_FIELDS[name] for name in names)
    rows = _rows(zone, since, until, {}, ("day", *columns, "received")).cte("rollup_values")
    return union_all(
        *(
            select(literal(name, String).label("dimension"), rows.c[column].label("value"))
            .where(rows.c[column].is_not(None))
            .group_by(rows.c[column])
            .having(func.sum(rows.c.received) > 0)
            for name, column in zip(names, columns, strict=True)
        )
    )


def _rows(
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
    filters: dict[str, str],
    columns: tuple[str, ...],
) -> CompoundSelect:
    """The rollup's rows in the range (compacted and pending deltas alike), from the
    level without agents where `columns` do not need them."""
    compacted = report_daily if "agent" in columns else report_daily_teams
    parts = []
    for table in (compacted, report_daily_delta):
        conditions = []
        if since is not None:
            conditions.append(table.c.day >= _local_day(since, zone))
        if until is not None:
            conditions.append(table.c.day < _local_day(until, zone))
        for name, value in filters.items():
            conditions.append(table.c[_FIELDS[name]] == value)
        parts.append(select(*(table.c[name] for name in columns)).where(and_(True, *conditions)))
    return union_all(*parts)


def _group_expression(rows, name: str) -> ColumnElement:
    if name in _PERIOD_FORMATS:
        return func.to_char(func.date_trunc(name, rows.c.day), _PERIOD_FORMATS[name])
    return rows.c[_FIELDS[name]]


_FIELDS = {
    "agent": "agent",
    "queue": "queue",
    "team": "team",
    "survey": "survey_name",
    "language": "language",
}
_GROUPABLE = {*_FIELDS, *_PERIOD_FORMATS}


def _is_local_midnight(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


# -- upkeep -------------------------------------------------------------------------


def compact(session: Session) -> int:
    """Fold the triggers' deltas into report_daily; returns how many deltas were folded.

    Each day that has deltas is rewritten as one row per key (its old rows plus the
    deltas, summed), in one statement: readers see the figures before or after, never
    half. Deltas committed while it runs stay for the next run.
    """
    if built_zone(session) is None:
        return 0
    session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
    keys = ", ".join(ROLLUP_KEYS)
    columns = f"{keys}, {', '.join(ROLLUP_COUNTERS)}"
    sums = ", ".join(f"sum({name})" for name in ROLLUP_COUNTERS)
    all_zero = " AND ".join(f"sum({name}) = 0" for name in ROLLUP_COUNTERS)
    folded = session.execute(
        text(
            "WITH moved AS (DELETE FROM report_daily_delta RETURNING *),"
            " replaced AS (DELETE FROM report_daily"
            "  WHERE day IN (SELECT DISTINCT day FROM moved) RETURNING *),"
            " folded AS ("
            f"  INSERT INTO report_daily ({columns})"
            f"  SELECT {keys}, {sums} FROM ("
            f"   SELECT {columns} FROM moved UNION ALL SELECT {columns} FROM replaced) u"
            f"  GROUP BY {keys} HAVING NOT ({all_zero}))"
            " SELECT day, count(*) FROM moved GROUP BY day"
        )
    ).all()
    # The same transaction, so readers never see one level folded and not the other.
    _rewrite_teams(session, [day for day, _ in folded])
    return sum(count for _, count in folded)


def _rewrite_teams(session: Session, days: list[date] | None) -> None:
    """report_daily_teams := report_daily summed over agents, for `days` (None: all)."""
    if days == []:
        return
    keys = [name for name in ROLLUP_KEYS if name != "agent"]
    teams, daily = report_daily_teams, report_daily
    delete = teams.delete()
    source = select(
        *(daily.c[name] for name in keys), *(func.sum(daily.c[n]) for n in ROLLUP_COUNTERS)
    ).group_by(*(daily.c[name] for name in keys))
    if days is not None:
        delete = delete.where(teams.c.day.in_(days))
        source = source.where(daily.c.day.in_(days))
    session.execute(delete)
    session.execute(
        teams.insert().from_select([*keys, *ROLLUP_COUNTERS], source.order_by(daily.c.day))
    )


def tidy(session: Session) -> bool:
    """Store report_daily's rows in day order again (CLUSTER), once a day.

    A report reads a range of days; compaction rewrites today's rows every minute
    wherever there is free space, so over weeks one day's rows spread over many pages.
    Writers never touch report_daily (they append deltas), so only reports and
    compaction wait, a few seconds, while it runs.
    """
    if built_zone(session) is None:
        return False
    session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
    for table in ("report_daily", "report_daily_teams"):
        session.execute(text(f"CLUSTER {table} USING ix_{table}_day"))
        session.execute(text(f"ANALYZE {table}"))
    return True


def switch_on(session: Session, zone: ZoneInfo) -> bool:
    """Build the rollup in `zone` unless it already is; returns whether it rebuilt.

    Writers to survey requests and answers wait while it rebuilds (a SHARE lock), so no
    change can slip between the rebuild's read and the triggers: expect a few seconds
    per million answers, once, when the report time zone changes.
    """
    if session.get_bind().dialect.name != "postgresql" or built_zone(session) == zone.key:
        return False
    session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
    session.execute(text("LOCK TABLE survey_requests, answers IN SHARE MODE"))
    rollup = session.get(ReportRollup, 1)
    if rollup is None:
        rollup = ReportRollup(id=1, time_zone=zone.key)
        session.add(rollup)
    rollup.time_zone, rollup.rebuilt_at = zone.key, utcnow()
    session.flush()
    session.execute(select(literal_column("report_rollup_rebuild()")))
    _rewrite_teams(session, None)
    for table in ("report_daily", "report_daily_teams"):
        session.execute(text(f"ANALYZE {table}"))  # the planner's row estimates
    return True


def switch_off(session: Session) -> None:
    """Stop keeping the rollup (reports then aggregate everything directly)."""
    rollup = session.get(ReportRollup, 1)
    if rollup is not None:
        rollup.time_zone = ""
    for table in (report_daily, report_daily_teams, report_daily_delta):
        session.execute(table.delete())
