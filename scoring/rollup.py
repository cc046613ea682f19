"""The daily report rollup: when reports may read it, and its upkeep.

A report over 90 days of ten million answers would otherwise read millions of rows; the
rollup holds one row per day and agent/queue/team/survey/language/mode/channel, on
PostgreSQL and SQLite alike: the same tables, kept current by triggers that append
deltas (migration 0005 for PostgreSQL, 0017 for SQLite, which has no time zone
arithmetic and files rows under the local days of report_rollup_days; 0018 added the
survey mode and channel as keys and the spoken share's two counters on both), folded by
`compact`. Each row holds the report counters (ROLLUP_COUNTERS) and the spoken share's
(INPUT_COUNTERS: answers with a value given in calls, and those said aloud). It is used
only when it gives exactly the figures the full aggregation would: in the time zone it
was built in, for ranges that start and end at local midnight, and without metadata
groups; reports by or for a mode or channel, and the spoken share, included. What it
cannot count of texts (texted, undelivered, no reply) scoring.report counts from the
conversations on either path. Anything else aggregates answers and requests directly
(scoring.report), so the rollup can make a report faster but never different. Neither counts an admin's test call: the triggers
give test rows no figures (migrations 0009 and 0017), as scoring.report.filtered leaves
them out.

Upkeep: `compact` (every minute through `rq cron`) folds the triggers' deltas into
report_daily, `tidy` (daily, PostgreSQL) keeps its rows in day order, and `switch_on` (by
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
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery

from core.db import utcnow
from core.models import (
    INPUT_COUNTERS,
    ROLLUP_COUNTERS,
    ROLLUP_KEYS,
    STORED_COUNTERS,
    ReportRollup,
    report_daily,
    report_daily_delta,
    report_daily_teams,
    report_rollup_days,
)
from scoring.buckets import local_days

# Compaction and rebuilds take this transaction-level advisory lock, so that they never
# interleave (two cron runs, or a rebuild during a compaction).
_UPKEEP_LOCK = 0x41465452_4F4C4C  # "AFTROLL"
_PERIOD_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}


def built_zone(session: Session) -> str | None:
    """The time zone the rollup's days are in, or None where it is switched off."""
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
    """Whether the rollup gives this report's figures (or its spoken share) exactly:
    never for a group or a filter it has no column for (a metadata key); the survey
    mode and the channel are among its keys (migration 0018)."""
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
    *,
    postgres: bool = True,
) -> Select:
    """Per group: the group's values, then every counter of ROLLUP_COUNTERS, summed."""
    rows, keys, statement = _grouped_rows(zone, since, until, groups, filters, postgres)
    return (
        statement.add_columns(*(func.sum(rows.c[name]) for name in ROLLUP_COUNTERS))
        .group_by(*keys)
        # A group exists where requests do (answers always come with their request).
        .having(func.sum(rows.c.received) > 0)
    )


def unsummed_statement(
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
    groups: tuple[str, ...],
    filters: dict[str, str],
    *,
    postgres: bool = True,
) -> Select:
    """The rollup's rows in the range, not summed: each row's group values, its
    `received`, then all its counters (ROLLUP_COUNTERS) as one text, comma-separated.

    For groups as fine as the rollup's own days and agents (agents by day), where
    nearly every group is one row: summing 47 counters over 60,000 groups, and sending
    each as a column, costs the database more than handing over the rows, which the
    caller adds up where a group has several (scoring.report). Summed or not, the same
    rows give the same figures.
    """
    rows, _, statement = _grouped_rows(zone, since, until, groups, filters, postgres)
    # `||` on both databases, each integer written as text by the database itself.
    packed = type_coerce(rows.c[ROLLUP_COUNTERS[0]], String)
    for name in ROLLUP_COUNTERS[1:]:
        packed = packed.concat(literal(",", String)).concat(type_coerce(rows.c[name], String))
    return statement.add_columns(rows.c.received, packed.label("counters"))


def _grouped_rows(
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
    groups: tuple[str, ...],
    filters: dict[str, str],
    postgres: bool,
) -> tuple[Subquery, list[ColumnElement], Select]:
    """What figures_statement and unsummed_statement both start from: the range's rows
    with every counter (from the smaller level without agents unless the groups or
    filters name an agent), each group's expression over them, and a select of those
    expressions as g0, g1, ..., joined on SQLite to the weeks and months its days were
    filed under where a group needs them; each adds its own counter columns."""
    per_agent = "agent" in groups or "agent" in filters
    key_columns = ROLLUP_KEYS if per_agent else tuple(k for k in ROLLUP_KEYS if k != "agent")
    rows = _rows(zone, since, until, filters, (*key_columns, *ROLLUP_COUNTERS)).subquery("rollup")
    labels = None
    if not postgres and ("week" in groups or "month" in groups):
        labels = report_rollup_days  # SQLite: a day's week and month, as filed
    keys = [_group_expression(rows, name, postgres, labels) for name in groups]
    statement = select(*(key.label(f"g{i}") for i, key in enumerate(keys)))
    if labels is not None:
        statement = statement.select_from(rows).join(labels, labels.c.day == rows.c.day)
    return rows, keys, statement


def sums_each_row(groups: tuple[str, ...]) -> bool:
    """Whether `groups` are as fine as the rollup's rows (agents and days): then
    `unsummed_statement` gives about one row per group."""
    return "agent" in groups and "day" in groups


def spoken_statement(
    zone: ZoneInfo, since: datetime | None, until: datetime | None, filters: dict[str, str]
) -> Select:
    """The spoken share's two counts in the range: answers with a value given in calls,
    and those of them said aloud (INPUT_COUNTERS), from the level without agents unless
    an agent is filtered on."""
    # A filtered column among them: an agent's is only in report_daily (_rows).
    columns = ("day", *(_FIELDS[name] for name in filters), *INPUT_COUNTERS)
    rows = _rows(zone, since, until, filters, columns).subquery("rollup")
    return select(*(func.coalesce(func.sum(rows.c[name]), 0) for name in INPUT_COUNTERS))


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


def _group_expression(rows, name: str, postgres: bool, labels) -> ColumnElement:
    if name == "day":
        # The stored date as its ISO text: what scoring.buckets labels a day.
        if postgres:
            return func.to_char(rows.c.day, _PERIOD_FORMATS["day"])
        return type_coerce(rows.c.day, String)  # SQLite stores it so
    if name in _PERIOD_FORMATS:
        if postgres:
            return func.to_char(func.date_trunc(name, rows.c.day), _PERIOD_FORMATS[name])
        return labels.c[name]
    return rows.c[_FIELDS[name]]


_FIELDS = {
    "agent": "agent",
    "queue": "queue",
    "team": "team",
    "survey": "survey_name",
    "language": "language",
    "mode": "mode",
    "channel": "channel",
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
    if not _postgres(session):
        return _compact_sqlite(session)
    session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
    keys = ", ".join(ROLLUP_KEYS)
    columns = f"{keys}, {', '.join(STORED_COUNTERS)}"
    sums = ", ".join(f"sum({name})" for name in STORED_COUNTERS)
    all_zero = " AND ".join(f"sum({name}) = 0" for name in STORED_COUNTERS)
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


def _compact_sqlite(session: Session) -> int:
    """`compact` on SQLite: the same fold in a few statements of one transaction.

    SQLite has one writer at a time, and the first statement makes this transaction
    it, so no delta can arrive meanwhile; readers see the commit whole (WAL), as on
    PostgreSQL. The folded days' old rows are told from their new ones by rowid.
    """
    _take_write_lock(session)
    folded = session.execute(
        select(report_daily_delta.c.day, func.count()).group_by(report_daily_delta.c.day)
    ).all()
    if not folded:
        return 0
    keys = ", ".join(ROLLUP_KEYS)
    columns = f"{keys}, {', '.join(STORED_COUNTERS)}"
    sums = ", ".join(f"sum({name})" for name in STORED_COUNTERS)
    all_zero = " AND ".join(f"sum({name}) = 0" for name in STORED_COUNTERS)
    touched = "day IN (SELECT day FROM report_daily_delta)"
    mark = session.scalar(text("SELECT coalesce(max(rowid), 0) FROM report_daily"))
    session.execute(
        text(
            f"INSERT INTO report_daily ({columns}) SELECT {keys}, {sums} FROM ("
            f" SELECT {columns} FROM report_daily WHERE {touched}"
            f" UNION ALL SELECT {columns} FROM report_daily_delta) u"
            f" GROUP BY {keys} HAVING NOT ({all_zero}) ORDER BY day"
        )
    )
    session.execute(
        text(f"DELETE FROM report_daily WHERE rowid <= :mark AND {touched}"), {"mark": mark}
    )
    session.execute(report_daily_delta.delete())
    _rewrite_teams(session, [day for day, _ in folded])
    return sum(count for _, count in folded)


def _take_write_lock(session: Session) -> None:
    """SQLite: make this transaction the writer now (a write; SQLite has one writer at a
    time), before it reads what it will rewrite."""
    session.execute(
        update(ReportRollup).where(ReportRollup.id == 1).values(time_zone=ReportRollup.time_zone)
    )


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _rewrite_teams(session: Session, days: list[date] | None) -> None:
    """report_daily_teams := report_daily summed over agents, for `days` (None: all)."""
    if days == []:
        return
    keys = [name for name in ROLLUP_KEYS if name != "agent"]
    teams, daily = report_daily_teams, report_daily
    delete = teams.delete()
    source = select(
        *(daily.c[name] for name in keys), *(func.sum(daily.c[n]) for n in STORED_COUNTERS)
    ).group_by(*(daily.c[name] for name in keys))
    if days is not None:
        delete = delete.where(teams.c.day.in_(days))
        source = source.where(daily.c.day.in_(days))
    session.execute(delete)
    session.execute(
        teams.insert().from_select([*keys, *STORED_COUNTERS], source.order_by(daily.c.day))
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
    if not _postgres(session):
        _tidy_sqlite(session)
        return True
    session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
    for table in ("report_daily", "report_daily_teams"):
        session.execute(text(f"CLUSTER {table} USING ix_{table}_day"))
        session.execute(text(f"ANALYZE {table}"))
    return True


def _tidy_sqlite(session: Session) -> None:
    """`tidy` on SQLite, which has no CLUSTER: each table's rows written again in day
    order (new rowids), then the old ones deleted, in one transaction."""
    _take_write_lock(session)
    for table in (report_daily, report_daily_teams):
        mark = session.scalar(text(f"SELECT coalesce(max(rowid), 0) FROM {table.name}"))
        session.execute(
            table.insert().from_select(list(table.c.keys()), select(*table.c).order_by(table.c.day))
        )
        session.execute(text(f"DELETE FROM {table.name} WHERE rowid <= :mark"), {"mark": mark})
        session.execute(text(f"ANALYZE {table.name}"))


def switch_on(session: Session, zone: ZoneInfo) -> bool:
    """Build the rollup in `zone` unless it already is; returns whether it rebuilt.

    Writers to survey requests and answers wait while it rebuilds (a SHARE lock), so no
    change can slip between the rebuild's read and the triggers: expect a few seconds
    per million answers, once, when the report time zone changes.
    """
    if built_zone(session) == zone.key:
        return False
    postgres = _postgres(session)
    if postgres:
        session.execute(select(func.pg_advisory_xact_lock(_UPKEEP_LOCK)))
        session.execute(text("LOCK TABLE survey_requests, answers IN SHARE MODE"))
    else:
        _take_write_lock(session)  # SQLite's writers wait as PostgreSQL's do
    rollup = session.get(ReportRollup, 1)
    if rollup is None:
        rollup = ReportRollup(id=1, time_zone=zone.key)
        session.add(rollup)
    rollup.time_zone, rollup.rebuilt_at = zone.key, utcnow()
    session.flush()
    if postgres:
        session.execute(select(literal_column("report_rollup_rebuild()")))
    else:
        _rebuild_sqlite(session, zone)
    _rewrite_teams(session, None)
    for table in ("report_daily", "report_daily_teams"):
        session.execute(text(f"ANALYZE {table}"))  # the planner's row estimates
    return True


# The local days SQLite's rollup files rows under: every day a call intake accepts can
# have ended on (2000 to 2099, dialer.intake), in any time zone. A row outside them
# cannot be stored while the rollup is on (its delta would have no day).
SQLITE_DAYS = (date(1999, 12, 31), date(2100, 1, 1))


def _rebuild_sqlite(session: Session, zone: ZoneInfo) -> None:
    """report_rollup_rebuild() on SQLite: the local days of `zone`, then every row's
    figures summed, from the views the triggers read (migration 0017, as 0018 made them
    again with the mode, the channel and the input counters)."""
    session.execute(report_rollup_days.delete())
    session.execute(
        report_rollup_days.insert(),
        [
            {"day": day, "starts": starts, "week": week, "month": month}
            for day, starts, week, month in local_days(*SQLITE_DAYS, zone)
        ],
    )
    session.execute(report_daily.delete())
    session.execute(report_daily_delta.delete())
    keys = ", ".join(ROLLUP_KEYS)
    columns = f"{keys}, {', '.join(STORED_COUNTERS)}"
    sums = ", ".join(f"sum({name})" for name in STORED_COUNTERS)
    session.execute(
        text(
            f"INSERT INTO report_daily ({columns}) SELECT {keys}, {sums} FROM ("
            f" SELECT {columns} FROM report_request_figures"
            f" UNION ALL SELECT {columns} FROM report_answer_figures) f"
            # Stored day by day: a report over a range then reads few pages.
            f" GROUP BY {keys} ORDER BY day"
        )
    )


def switch_off(session: Session) -> None:
    """Stop keeping the rollup (reports then aggregate everything directly)."""
    rollup = session.get(ReportRollup, 1)
    if rollup is not None:
        rollup.time_zone = ""
    for table in (report_daily, report_daily_teams, report_daily_delta, report_rollup_days):
        session.execute(table.delete())
