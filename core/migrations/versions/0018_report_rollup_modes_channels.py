"""the survey mode and channel as rollup keys, and the spoken share as two counters

Until now the daily rollup had no mode (callback, in-call), no channel (voice, sms,
sms_fallback) and no answer input, so every report grouped or filtered by mode or
channel, and the spoken share, counted the rows: the dashboard's mode/channel table and
its spoken share took most of the page at a million answers. From this revision the
rollup's rows (report_daily, report_daily_teams, report_daily_delta) are keyed by
`mode` and `channel` too, each row's from its own table as reports read it (a request's
columns; an answer's copies, NULL read as `callback` and `voice` as scoring.report
does), and carry two answer counters for the spoken share:

- `call_answers`: answers with a value given in a call (input NULL, `keys` or
  `speech`: not `text`), of any kind, as scoring.report.spoken_share counts them;
- `spoken_answers`: those of them said aloud (input `speech`).

So the rollup's answer figures read every answer with a value (not only NPS, CSAT and
CES: a yes/no answer counts in the spoken share), where each row adds something: a
texted yes/no answer, which counts nowhere, is left out.

The figures stay defined once per engine: on PostgreSQL the trigger functions and
`report_rollup_rebuild()` (0005, 0009) are replaced by ones generated from the same two
expressions; on SQLite the two views (0017) are created again and the row-level
triggers with them (watching the new columns), and scoring.rollup's rebuild sums the
same views. The rollup is switched off here, its rows deleted: `aftercall db upgrade`
(scoring.rollup.switch_on) builds it again in REPORT_TIME_ZONE, and until then reports
count the rows, with the same figures. Downgrade does the same the other way: 0017's
and 0009's definitions back, the rollup off.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0005, 0009 and 0017, frozen: the counters, the keys, and what each request and
# answer adds; `new` says whether this revision's keys and counters are meant.
NPS = tuple(range(0, 11))
CSAT = tuple(range(1, 6))
CES = tuple(range(1, 8))
REACHED = ("completed", "partial", "abandoned", "opted_out", "in_progress")
SUPPRESSION_REASONS = ("not_sampled", "opted_out", "surveyed_recently", "survey_under_way",
                       "call_cap_reached", "no_calling_window", "validity_expired")  # fmt: skip
OLD_COUNTERS = (
    *(f"nps_{v}" for v in NPS),
    *(f"csat_{v}" for v in CSAT),
    *(f"ces_{v}" for v in CES),
    "received", "placed", "calls_placed", "answered", "reached", "completed", "partial",
    "opted_out", "attempts_for_completed",
    *(f"suppressed_{reason}" for reason in SUPPRESSION_REASONS),
)  # fmt: skip
INPUT_COUNTERS = ("call_answers", "spoken_answers")
NEW_COUNTERS = (*OLD_COUNTERS, *INPUT_COUNTERS)
OLD_KEYS = ("day", "agent", "queue", "team", "survey_name", "language")
NEW_KEYS = (*OLD_KEYS, "mode", "channel")
TABLES = ("report_daily", "report_daily_teams", "report_daily_delta")
COUNTED = "NOT r.is_test"
SCALES = "r.kind IN ('nps', 'csat', 'ces')"
# An answer given in a text (sms.conversation): neither keyed nor said.
IN_A_CALL = "(r.input IS NULL OR r.input <> 'text')"
# The columns each table's figures read on SQLite: an UPDATE that sets none of them
# changes none (0017's, and this revision's).
OLD_WATCHED = {
    "survey_requests": ("id", "call_ended_at", "agent", "queue", "team", "survey_name",
                        "language", "is_test", "state", "calls_placed", "suppression_reason"),
    "answers": ("id", "call_ended_at", "agent", "queue", "team", "survey_name", "language",
                "is_test", "kind", "value"),
}  # fmt: skip
NEW_WATCHED = {
    "survey_requests": (*OLD_WATCHED["survey_requests"], "mode", "channel"),
    "answers": (*OLD_WATCHED["answers"], "mode", "channel", "input"),
}
VIEWS = {"survey_requests": "report_request_figures", "answers": "report_answer_figures"}
TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _keys(new: bool) -> tuple[str, ...]:
    return NEW_KEYS if new else OLD_KEYS


def _counters(new: bool) -> tuple[str, ...]:
    return NEW_COUNTERS if new else OLD_COUNTERS


def _request_counters(new: bool) -> dict[str, str]:
    reached = ", ".join(f"'{s}'" for s in REACHED)
    counters = {name: "0" for name in _counters(new)}
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


def _answer_counters(new: bool) -> dict[str, str]:
    counters = {name: "0" for name in _counters(new)}
    for kind, scale in (("nps", NPS), ("csat", CSAT), ("ces", CES)):
        for value in scale:
            counters[f"{kind}_{value}"] = _flag(f"r.kind = '{kind}' AND r.value = {value}")
    if new:
        counters["call_answers"] = _flag(IN_A_CALL)
        counters["spoken_answers"] = _flag("r.input = 'speech'")
    return counters


def _answers_counted(new: bool) -> str:
    """The answers that add figures: 0009's (scale answers), or this revision's (every
    answer with a value that adds a scale counter or an input counter)."""
    where = "r.value IS NOT NULL AND r.call_ended_at IS NOT NULL"
    kinds = f"({SCALES} OR {IN_A_CALL})" if new else SCALES
    return f"{kinds} AND {where} AND {COUNTED}"


def _key_columns(table: str, new: bool) -> str:
    """The keys after the day, each from the row itself (r)."""
    columns = "r.agent AS agent, r.queue AS queue, r.team AS team,"
    columns += " r.survey_name AS survey_name, r.language AS language"
    if not new:
        return columns
    if table == "answers":  # NULL: stored before the column existed (scoring.report)
        mode, channel = "coalesce(r.mode, 'callback')", "coalesce(r.channel, 'voice')"
    else:
        mode, channel = "r.mode", "r.channel"
    return f"{columns}, {mode} AS mode, {channel} AS channel"


# -- PostgreSQL: the triggers' functions and report_rollup_rebuild() ---------------------


def _pg_figures(table: str, source: str, sign: int, new: bool) -> str:
    if table == "survey_requests":
        counters, where = _request_counters(new), COUNTED
    else:
        counters, where = _answer_counters(new), _answers_counted(new)
    signed = ", ".join(f"{sign} * {counters[name]} AS {name}" for name in _counters(new))
    return (
        "SELECT (r.call_ended_at AT TIME ZONE z.time_zone)::date AS day,"
        f" {_key_columns(table, new)}, {signed}"
        f" FROM {source} r CROSS JOIN report_rollup z"
        f" WHERE z.id = 1 AND z.time_zone <> '' AND {where}"
    )


def _summed(select: str, new: bool, *, skip_zero: bool = False) -> str:
    keys = ", ".join(_keys(new))
    sums = ", ".join(f"sum({name})" for name in _counters(new))
    having = (
        " HAVING NOT (" + " AND ".join(f"sum({name}) = 0" for name in _counters(new)) + ")"
        if skip_zero
        else ""
    )
    return f"SELECT {keys}, {sums} FROM ({select}) f GROUP BY {keys}{having}"


def _insert(table: str, select: str, new: bool) -> str:
    return f"INSERT INTO {table} ({', '.join(_keys(new))}, {', '.join(_counters(new))}) {select}"


def _replace_pg_functions(new: bool) -> None:
    """The triggers' functions and report_rollup_rebuild(): this revision's, or 0009's
    back. The triggers (0005) call the functions by name and stay."""
    for table in VIEWS:
        delta = {
            "insert": _summed(_pg_figures(table, "new_rows", 1, new), new),
            "delete": _summed(_pg_figures(table, "old_rows", -1, new), new),
            "update": _summed(
                f"{_pg_figures(table, 'new_rows', 1, new)}"
                f" UNION ALL {_pg_figures(table, 'old_rows', -1, new)}",
                new,
                skip_zero=True,
            ),
        }
        for event, select in delta.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION report_daily_{table}_{event}() RETURNS trigger"
                " LANGUAGE plpgsql AS $fn$\n"
                f"BEGIN\n  {_insert('report_daily_delta', select, new)};\n  RETURN NULL;\nEND\n$fn$"
            )
    everything = (
        f"{_pg_figures('survey_requests', 'survey_requests', 1, new)}"
        f" UNION ALL {_pg_figures('answers', 'answers', 1, new)}"
    )
    rebuild = ";\n  ".join(
        [
            "DELETE FROM report_daily",
            "DELETE FROM report_daily_delta",
            _insert("report_daily", _summed(everything, new) + " ORDER BY day", new),
        ]
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION report_rollup_rebuild() RETURNS void LANGUAGE plpgsql"
        f" AS $fn$\nBEGIN\n  {rebuild};\nEND\n$fn$"
    )


# -- SQLite: the figure views and the row-level triggers ---------------------------------


def _sqlite_view(table: str, new: bool) -> str:
    # The local day whose start is the last at or before the call's end (0017).
    day = (
        "(SELECT d.day FROM report_rollup_days d WHERE d.starts <= r.call_ended_at"
        " ORDER BY d.starts DESC LIMIT 1)"
    )
    if table == "survey_requests":
        counters, where = _request_counters(new), COUNTED
    else:
        counters, where = _answer_counters(new), _answers_counted(new)
    columns = ", ".join(f"{counters[c]} AS {c}" for c in _counters(new))
    return (
        f"CREATE VIEW {VIEWS[table]} AS SELECT r.id AS id, {day} AS day,"
        f" {_key_columns(table, new)}, {columns}"
        f" FROM {table} r JOIN report_rollup z ON z.id = 1 AND z.time_zone <> ''"
        f" WHERE {where}"
    )


def _sqlite_triggers(new: bool) -> list[tuple[str, str]]:
    """(name, CREATE TRIGGER) for both tables: append the figures the view gives for the
    row before a change (negated) and after it, as 0017 does."""
    watched = NEW_WATCHED if new else OLD_WATCHED
    columns = ", ".join((*_keys(new), *_counters(new)))
    made = []
    for table, view in VIEWS.items():
        update = f"UPDATE OF {', '.join(watched[table])}"
        for when, event, row, sign in (
            ("AFTER", "INSERT", "NEW", 1),
            ("BEFORE", update, "OLD", -1),
            ("AFTER", update, "NEW", 1),
            ("BEFORE", "DELETE", "OLD", -1),
        ):
            name = f"report_daily_{table}_{when.lower()}_{event.split()[0].lower()}"
            signed = ", ".join((*_keys(new), *(c if sign > 0 else f"-{c}" for c in _counters(new))))
            made.append(
                (
                    name,
                    f"CREATE TRIGGER {name} {when} {event} ON {table} FOR EACH ROW BEGIN"
                    f" INSERT INTO report_daily_delta ({columns})"
                    f" SELECT {signed} FROM {view} WHERE id = {row}.id; END",
                )
            )
    return made


def _drop_sqlite_definitions() -> None:
    # Either revision's triggers have the same names.
    for name, _ in _sqlite_triggers(True):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for view in VIEWS.values():
        op.execute(f"DROP VIEW IF EXISTS {view}")


def _create_sqlite_definitions(new: bool) -> None:
    for table in VIEWS:
        op.execute(_sqlite_view(table, new))
    for _, statement in _sqlite_triggers(new):
        op.execute(statement)


def _switch_off() -> None:
    """The rollup off and empty: `aftercall db upgrade` builds it again (switch_on)."""
    for table in (*TABLES, "report_rollup_days"):
        op.execute(f"DELETE FROM {table}")
    op.execute("UPDATE report_rollup SET time_zone = '', rebuilt_at = NULL WHERE id = 1")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _switch_off()
    if sqlite:
        # SQLite checks a trigger's columns when a column is dropped or added: first
        # the old definitions out.
        _drop_sqlite_definitions()
    # In place on both engines (a constant default; no batch copy of the tables).
    for table in TABLES:
        op.add_column(table, sa.Column("mode", sa.String(length=16), nullable=True))
        op.add_column(table, sa.Column("channel", sa.String(length=16), nullable=True))
        for name in INPUT_COUNTERS:
            op.add_column(table, sa.Column(name, sa.Integer(), server_default="0", nullable=False))
    if sqlite:
        _create_sqlite_definitions(new=True)
    else:
        _replace_pg_functions(new=True)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _switch_off()
    if sqlite:
        _drop_sqlite_definitions()
    else:
        _replace_pg_functions(new=False)
    for table in TABLES:
        for name in (*reversed(INPUT_COUNTERS), "channel", "mode"):
            op.drop_column(table, name)
    if sqlite:
        _create_sqlite_definitions(new=False)
