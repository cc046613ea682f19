"""rollup triggers: a statement that changed no row costs the rollup nothing

PostgreSQL's rollup triggers (0005, functions since 0018) are statement triggers with
transition tables: they run once per INSERT, UPDATE or DELETE statement on
`survey_requests` and `answers`, rows or no rows. The answer webhook's one statement
holds a guarded UPDATE of its request (reopening an abandoned one), which updates no row
nearly always, yet its trigger summed an empty transition table every time: 40-80 µs of
the database's 290-370 µs per answer (bench/RESULTS.md, issue 19, session 18). Other
guarded UPDATEs and DELETEs that match nothing paid the same.

Each trigger function now returns at once when its transition table is empty. The
figures cannot change: summing no rows appended no delta. Only the first statement of
each function body gains the check; this revision rewrites the functions' source as
stored, so it applies whatever 0018 (or a later rebuild) wrote, and downgrade removes
exactly that line again. SQLite's triggers are row triggers (0017): nothing to do.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 18:40:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
TABLES = ("survey_requests", "answers")
# The transition table each event's function reads (0005's REFERENCING clauses); an
# UPDATE has both, with as many rows in each.
ROWS = {"insert": "new_rows", "delete": "old_rows", "update": "new_rows"}
START = "BEGIN\n"


def _guard(rows: str) -> str:
    return f"  IF NOT EXISTS (SELECT FROM {rows}) THEN RETURN NULL; END IF;\n"


def _rewrite(add: bool) -> None:
    connection = op.get_bind()
    for table in TABLES:
        for event, rows in ROWS.items():
            name = f"report_daily_{table}_{event}"
            source = connection.execute(
                # The function the search path names, as CREATE OR REPLACE below does.
                text("SELECT prosrc FROM pg_proc WHERE oid = to_regproc(:name)"),
                {"name": name},
            ).scalar_one()
            guarded = START + _guard(rows)
            if add:
                if guarded in source:
                    continue
                source = source.replace(START, guarded, 1)
            else:
                source = source.replace(guarded, START, 1)
            # Dollar quoting as 0005 and 0018 wrote them; the bodies hold no "$fn$".
            op.execute(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger"
                f" LANGUAGE plpgsql AS $fn${source}$fn$"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(add=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(add=False)
