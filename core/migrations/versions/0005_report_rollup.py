"""daily report rollup, kept current by PostgreSQL triggers

Reports over months of data read daily figures per agent/queue/team/survey/language
instead of every answer and request. On PostgreSQL, statement-level triggers on
survey_requests and answers append the change in figures of each statement (+ for new
rows, - for old ones) to report_daily_delta; scoring.rollup folds those into
report_daily. The figures of a row are defined once, here (`_request_figures`,
`_answer_figures`), and used by both the triggers and `report_rollup_rebuild()`, so the
incremental and the from-scratch rollups cannot disagree. The rollup starts switched off
(no time zone); `aftercall db upgrade` switches it on in REPORT_TIME_ZONE, which
rebuilds it. SQLite gets the tables only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen as of this revision: a new counter or suppression reason is a new migration.
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
TABLES = ("report_daily", "report_daily_delta")


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _request_figures(source: str, sign: int) -> str:
    """SELECT of each request's keys and counters (times `sign`) from `source`."""
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
    return _figures(source, counters, sign, where="TRUE")


def _answer_figures(source: str, sign: int) -> str:
    counters = {name: "0" for name in COUNTERS}
    for kind, scale in (("nps", NPS), ("csat", CSAT), ("ces", CES)):
        for value in scale:
            counters[f"{kind}_{value}"] = _flag(f"r.kind = '{kind}' AND r.value = {value}")
    return _figures(
        source,
        counters,
        sign,
        where="r.kind IN ('nps', 'csat', 'ces') AND r.value IS NOT NULL"
        " AND r.call_ended_at IS NOT NULL",
    )


def _figures(source: str, counters: dict[str, str], sign: int, where: str) -> str:
    signed = ", ".join(f"{sign} * {counters[name]} AS {name}" for name in COUNTERS)
    return (
        "SELECT (r.call_ended_at AT TIME ZONE z.time_zone)::date AS day, r.agent, r.queue,"
        f" r.team, r.survey_name, r.language, {signed}"
        f" FROM {source} r CROSS JOIN report_rollup z"
        f" WHERE z.id = 1 AND z.time_zone <> '' AND {where}"
    )


def _summed(select: str, *, skip_zero: bool = False) -> str:
    keys = ", ".join(KEYS)
    sums = ", ".join(f"sum({name})" for name in COUNTERS)
    having = (
        " HAVING NOT (" + " AND ".join(f"sum({name}) = 0" for name in COUNTERS) + ")"
        if skip_zero
        else ""
    )
    return f"SELECT {keys}, {sums} FROM ({select}) f GROUP BY {keys}{having}"


def _insert(table: str, select: str) -> str:
    return f"INSERT INTO {table} ({', '.join(KEYS)}, {', '.join(COUNTERS)}) {select}"


def _trigger_function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        f"BEGIN\n  {body};\n  RETURN NULL;\nEND\n$fn$"
    )


def _postgres_upgrade() -> None:
    for table, figures in (("survey_requests", _request_figures), ("answers", _answer_figures)):
        delta = {
            "insert": _summed(figures("new_rows", 1)),
            "delete": _summed(figures("old_rows", -1)),
            "update": _summed(
                f"{figures('new_rows', 1)} UNION ALL {figures('old_rows', -1)}", skip_zero=True
            ),
        }
        for event, select in delta.items():
            function = f"report_daily_{table}_{event}"
            op.execute(_trigger_function(function, _insert("report_daily_delta", select)))
            transition = {
                "insert": "NEW TABLE AS new_rows",
                "delete": "OLD TABLE AS old_rows",
                "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            }[event]
            op.execute(
                f"CREATE TRIGGER {function} AFTER {event.upper()} ON {table}"
                f" REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    rebuild = ";\n  ".join(
        [
            "DELETE FROM report_daily",
            "DELETE FROM report_daily_delta",
            _insert(
                "report_daily",
                _summed(
                    f"{_request_figures('survey_requests', 1)}"
                    f" UNION ALL {_answer_figures('answers', 1)}"
                )
                # Stored day by day: a report over a range then reads few pages.
                + " ORDER BY day",
            ),
        ]
    )
    op.execute(
        "CREATE FUNCTION report_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $fn$\n"
        f"BEGIN\n  {rebuild};\nEND\n$fn$"
    )


def _postgres_downgrade() -> None:
    for table in ("survey_requests", "answers"):
        for event in ("insert", "delete", "update"):
            function = f"report_daily_{table}_{event}"
            op.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute("DROP FUNCTION IF EXISTS report_rollup_rebuild()")


def upgrade() -> None:
    op.create_table(
        "report_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_report_rollup_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollup")),
    )
    for table in TABLES:
        op.create_table(
            table,
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("agent", sa.String(length=200), nullable=True),
            sa.Column("queue", sa.String(length=200), nullable=True),
            sa.Column("team", sa.String(length=200), nullable=True),
            sa.Column("survey_name", sa.String(length=100), nullable=True),
            sa.Column("language", sa.String(length=16), nullable=True),
            *(
                sa.Column(name, sa.Integer(), server_default="0", nullable=False)
                for name in COUNTERS
            ),
        )
    op.create_index("ix_report_daily_day", "report_daily", ["day"], unique=False)
    op.execute("INSERT INTO report_rollup (id, time_zone) VALUES (1, '')")
    if op.get_bind().dialect.name == "postgresql":
        _postgres_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgres_downgrade()
    op.drop_index("ix_report_daily_day", table_name="report_daily")
    for table in TABLES:
        op.drop_table(table)
    op.drop_table("report_rollup")
