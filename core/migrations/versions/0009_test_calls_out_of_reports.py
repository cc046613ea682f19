"""test calls count in no report figure

An admin's test call (dialer.test_call) is a survey request like any other, so until
now every figure counted it. From this revision `survey_requests.is_test` says which
requests are test calls (dialer.test_call sets it; nothing else does), answers carry a
copy like their other report fields, and no figure counts either: report queries
filter on it (scoring.report.filtered), ix_answers_report gains it as a last column so
that those queries still read the index alone, and the rollup's trigger functions
(migration 0005) are replaced by ones that give test rows no figures.

Existing test calls are found as dialer.test_call recognised them before this revision:
a `source_call_id` starting with `aftercall-test-call:` and a true `test_call` in the
metadata. Marking them is an UPDATE like any other, so on PostgreSQL the new triggers
take their figures out of the rollup as they would for any change: no rebuild, and no
lock on the tables beyond those rows. Downgrade puts them back the same way before the
0005 functions return.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# How dialer.test_call marked a test call before this revision, frozen.
TEST_CALL_PREFIX = "aftercall-test-call:"
TEST_CALL_FLAG = "test_call"
# As in 0005, frozen: the counters, the keys, and what each request and answer adds.
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
TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
# The rows that count: this revision's condition; None (every row) gives 0005's functions
# back, word for word, on downgrade.
COUNTED = "NOT r.is_test"
BATCH = 1000


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _request_figures(source: str, sign: int, counted: str | None) -> str:
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
    return _figures(source, counters, sign, where=counted or "TRUE")


def _answer_figures(source: str, sign: int, counted: str | None) -> str:
    counters = {name: "0" for name in COUNTERS}
    for kind, scale in (("nps", NPS), ("csat", CSAT), ("ces", CES)):
        for value in scale:
            counters[f"{kind}_{value}"] = _flag(f"r.kind = '{kind}' AND r.value = {value}")
    where = (
        "r.kind IN ('nps', 'csat', 'ces') AND r.value IS NOT NULL AND r.call_ended_at IS NOT NULL"
    )
    return _figures(source, counters, sign, where=f"{where} AND {counted}" if counted else where)


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


def _replace_functions(counted: str | None) -> None:
    """The triggers' functions and report_rollup_rebuild(), counting only `counted` rows.

    The triggers themselves (0005) call the functions by name and stay as they are.
    """
    for table, figures in (("survey_requests", _request_figures), ("answers", _answer_figures)):
        delta = {
            "insert": _summed(figures("new_rows", 1, counted)),
            "delete": _summed(figures("old_rows", -1, counted)),
            "update": _summed(
                f"{figures('new_rows', 1, counted)} UNION ALL {figures('old_rows', -1, counted)}",
                skip_zero=True,
            ),
        }
        for event, select in delta.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION report_daily_{table}_{event}() RETURNS trigger"
                " LANGUAGE plpgsql AS $fn$\n"
                f"BEGIN\n  {_insert('report_daily_delta', select)};\n  RETURN NULL;\nEND\n$fn$"
            )
    rebuild = ";\n  ".join(
        [
            "DELETE FROM report_daily",
            "DELETE FROM report_daily_delta",
            _insert(
                "report_daily",
                _summed(
                    f"{_request_figures('survey_requests', 1, counted)}"
                    f" UNION ALL {_answer_figures('answers', 1, counted)}"
                )
                + " ORDER BY day",
            ),
        ]
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION report_rollup_rebuild() RETURNS void LANGUAGE plpgsql"
        f" AS $fn$\nBEGIN\n  {rebuild};\nEND\n$fn$"
    )


_requests = sa.table(
    "survey_requests",
    sa.column("id", sa.Integer),
    sa.column("source_call_id", sa.String),
    sa.column("metadata", sa.JSON),
    sa.column("is_test", sa.Boolean),
)
_answers = sa.table(
    "answers", sa.column("request_id", sa.Integer), sa.column("is_test", sa.Boolean)
)


def _mark_test_calls() -> None:
    """is_test on the test calls stored so far and on their answers.

    The candidates by their prefix in SQL, then the metadata flag checked in Python
    exactly as dialer.test_call did (a truthy value), whatever JSON the rows hold.
    """
    bind = op.get_bind()
    candidates = bind.execute(
        sa.select(_requests.c.id, _requests.c.metadata).where(
            _requests.c.source_call_id.startswith(TEST_CALL_PREFIX, autoescape=True)
        )
    ).all()
    ids = [
        id_ for id_, extra in candidates if isinstance(extra, dict) and extra.get(TEST_CALL_FLAG)
    ]
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        bind.execute(sa.update(_requests).where(_requests.c.id.in_(batch)).values(is_test=True))
        bind.execute(
            sa.update(_answers).where(_answers.c.request_id.in_(batch)).values(is_test=True)
        )


def _unmark_test_calls() -> None:
    bind = op.get_bind()
    bind.execute(sa.update(_answers).where(_answers.c.is_test).values(is_test=False))
    bind.execute(sa.update(_requests).where(_requests.c.is_test).values(is_test=False))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # Plain ALTER TABLE on both backends, no batch copy: SQLite adds a column with a
    # constant default in place (copying survey_requests would trip the foreign keys
    # of its answers and attempts), PostgreSQL without rewriting the table.
    for table in ("survey_requests", "answers"):
        op.add_column(
            table, sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.drop_index("ix_answers_report", table_name="answers")
    if postgres:
        _replace_functions(COUNTED)
    _mark_test_calls()
    # Reports filter on is_test: in the index, their scans stay index-only.
    op.create_index(
        "ix_answers_report",
        "answers",
        ["call_ended_at", "agent", "kind", "value", "is_test"],
        unique=False,
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_answers_report", table_name="answers")
    # Still under this revision's triggers: unmarking adds the test calls' figures back.
    _unmark_test_calls()
    if postgres:
        _replace_functions(None)
    op.create_index(
        "ix_answers_report", "answers", ["call_ended_at", "agent", "kind", "value"], unique=False
    )
    # SQLite (3.35 and later) drops an unindexed column in place, as PostgreSQL does.
    for table in ("answers", "survey_requests"):
        op.drop_column(table, "is_test")
