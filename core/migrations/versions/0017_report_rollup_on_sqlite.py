"""the daily report rollup on SQLite too, kept current by triggers

Until now SQLite had the rollup's tables but never filled them, so every report and the
dashboard counted answers and requests (1.6 s for a month at a million answers). From
this revision SQLite keeps the same rollup as PostgreSQL (migration 0005): the same
tables, deltas appended by triggers and folded by scoring.rollup.compact, reports that
read compacted rows plus pending deltas.

SQLite has no time zone arithmetic, so its days come from a table:
`report_rollup_days` holds, for the rollup's time zone, each local day's start in UTC
(scoring.rollup.switch_on fills it with scoring.buckets, the computation SQLite's direct
reports bucket with), with its ISO week and month labels. PostgreSQL converts time zones
itself (AT TIME ZONE) and leaves the table empty.

SQLite has no statement-level triggers or stored functions either. The figures of a row
are defined once, as two views (`report_request_figures`, `report_answer_figures`:
a row's day, keys and counters, none while the rollup is off and none for a test call),
with the same expressions as migrations 0005 and 0009. Row-level triggers append the
figures the views give for a row before a change (negated: BEFORE UPDATE, BEFORE
DELETE) and after it (AFTER INSERT, AFTER UPDATE); scoring.rollup's rebuild sums the
same views over every row. So the incremental and the from-scratch rollups cannot
disagree, as on PostgreSQL. The update triggers fire only when a column the figures read
is set (`UPDATE OF`): anonymising phone numbers appends nothing.

A later migration that rebuilds survey_requests or answers on SQLite (alembic's batch
mode copies and drops the table) drops these triggers with the table and must create
them again, and the views must be dropped first.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0005 and 0009, frozen: the counters, the keys, and what each request and answer
# adds.
NPS = tuple(range(0, 11))
CSAT = tuple(range(1, 6))
CES = tuple(range(1, 8))
REACHED = ("completed", "partial", "abandoned", "opted_out", "in_progress")
SUPPRESSION_REASONS = ("not_sampled", "opted_out", "surveyed_recently", "survey_under_way",
                       "call_cap_reached", "no_calling_window", "validity_expired")  # fmt: skip
COUNTERS = (
    *(f"nps_{v}" for v in NPS),
    *(f"csat_{v}" for v in CSAT),
    *(f"ces_{v}" for v in CES),
    "received", "placed", "calls_placed", "answered", "reached", "completed", "partial",
    "opted_out", "attempts_for_completed",
    *(f"suppressed_{reason}" for reason in SUPPRESSION_REASONS),
)  # fmt: skip
KEYS = ("day", "agent", "queue", "team", "survey_name", "language")
COUNTED = "NOT r.is_test"
# The columns each table's figures read: an UPDATE that sets none of them changes none.
WATCHED = {
    "survey_requests": ("id", "call_ended_at", "agent", "queue", "team", "survey_name",
                        "language", "is_test", "state", "calls_placed", "suppression_reason"),
    "answers": ("id", "call_ended_at", "agent", "queue", "team", "survey_name", "language",
                "is_test", "kind", "value"),
}  # fmt: skip
VIEWS = {"survey_requests": "report_request_figures", "answers": "report_answer_figures"}


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _request_counters() -> dict[str, str]:
    reached = ", ".join(f"'{s}'" for s in REACHED)
    counters = {name: "0" for name in COUNTERS}
    counters.update(
        received="1",
        placed=_flag("r.calls_placed > 0"),
        calls_placed="r.calls_placed",
        answered=_flag(f"r.state IN ({reached}, 'voicemail')"),
        reached=_flag(f"r.state IN ({reached})"),
        completed=_flag("r.state = 'completed'"),
        partial=_flag("r.state = 'partial'"),
        opted_out=_flag("r.state = 'opted_out'"),
        attempts_for_completed="(CASE WHEN r.state = 'completed' THEN r.calls_placed ELSE 0 END)",
    )
    for reason in SUPPRESSION_REASONS:
        counters[f"suppressed_{reason}"] = _flag(
            f"r.state IN ('suppressed', 'expired') AND r.suppression_reason = '{reason}'"
        )
    return counters


def _answer_counters() -> dict[str, str]:
    counters = {name: "0" for name in COUNTERS}
    for kind, scale in (("nps", NPS), ("csat", CSAT), ("ces", CES)):
        for value in scale:
            counters[f"{kind}_{value}"] = _flag(f"r.kind = '{kind}' AND r.value = {value}")
    return counters


def _view(name: str, table: str, counters: dict[str, str], where: str) -> str:
    # The local day whose start is the last at or before the call's end: the UTC ranges
    # SQLite's direct reports bucket with (text comparison of the stored UTC times).
    day = (
        "(SELECT d.day FROM report_rollup_days d WHERE d.starts <= r.call_ended_at"
        " ORDER BY d.starts DESC LIMIT 1)"
    )
    columns = ", ".join(f"{counters[c]} AS {c}" for c in COUNTERS)
    return (
        f"CREATE VIEW {name} AS SELECT r.id AS id, {day} AS day, r.agent AS agent,"
        " r.queue AS queue, r.team AS team, r.survey_name AS survey_name,"
        f" r.language AS language, {columns}"
        f" FROM {table} r JOIN report_rollup z ON z.id = 1 AND z.time_zone <> ''"
        f" WHERE {where}"
    )


def _trigger(table: str, when: str, event: str, row: str, sign: int) -> tuple[str, str]:
    """(name, CREATE TRIGGER): append the figures of `row` (NEW or OLD), times `sign`."""
    name = f"report_daily_{table}_{when.lower()}_{event.split()[0].lower()}"
    columns = ", ".join((*KEYS, *COUNTERS))
    signed = ", ".join((*KEYS, *(c if sign > 0 else f"-{c}" for c in COUNTERS)))
    return name, (
        f"CREATE TRIGGER {name} {when} {event} ON {table} FOR EACH ROW BEGIN"
        f" INSERT INTO report_daily_delta ({columns})"
        f" SELECT {signed} FROM {VIEWS[table]} WHERE id = {row}.id; END"
    )


def _triggers() -> list[tuple[str, str]]:
    """(name, CREATE TRIGGER) for both tables."""
    made = []
    for table in VIEWS:
        update = f"UPDATE OF {', '.join(WATCHED[table])}"
        for when, event, row, sign in (
            ("AFTER", "INSERT", "NEW", 1),
            ("BEFORE", update, "OLD", -1),
            ("AFTER", update, "NEW", 1),
            ("BEFORE", "DELETE", "OLD", -1),
        ):
            made.append(_trigger(table, when, event, row, sign))
    return made


def upgrade() -> None:
    op.create_table(
        "report_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_rollup_days")),
    )
    op.create_index("ix_report_rollup_days_starts", "report_rollup_days", ["starts"], unique=True)
    if op.get_bind().dialect.name != "sqlite":
        return
    answers_counted = (
        "r.kind IN ('nps', 'csat', 'ces') AND r.value IS NOT NULL"
        f" AND r.call_ended_at IS NOT NULL AND {COUNTED}"
    )
    op.execute(_view(VIEWS["survey_requests"], "survey_requests", _request_counters(), COUNTED))
    op.execute(_view(VIEWS["answers"], "answers", _answer_counters(), answers_counted))
    for _, statement in _triggers():
        op.execute(statement)
    # The rollup had never been built on SQLite: `aftercall db upgrade` builds it in
    # REPORT_TIME_ZONE (scoring.rollup.switch_on), as it did on PostgreSQL for 0005.
    op.execute("UPDATE report_rollup SET time_zone = '' WHERE id = 1")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _ in _triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for view in VIEWS.values():
            op.execute(f"DROP VIEW IF EXISTS {view}")
        # The older release reads no rollup on SQLite and keeps none.
        for table in ("report_daily", "report_daily_teams", "report_daily_delta"):
            op.execute(f"DELETE FROM {table}")
        op.execute("UPDATE report_rollup SET time_zone = '', rebuilt_at = NULL WHERE id = 1")
    op.drop_index("ix_report_rollup_days_starts", table_name="report_rollup_days")
    op.drop_table("report_rollup_days")
