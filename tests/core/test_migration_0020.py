"""Migration 0020: PostgreSQL's rollup triggers return at once for a statement that
changed no row. (The rollup's own tests, run at head, hold its figures to the tables'.)"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from core import migrate
from tests.conftest import _postgres_url, _reset_postgres, migrate_for_tests

FUNCTIONS = [
    f"report_daily_{table}_{event}"
    for table in ("survey_requests", "answers")
    for event in ("insert", "update", "delete")
]


def _sources(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT proname, prosrc FROM pg_proc"
                " WHERE oid IN (SELECT to_regproc(unnest(CAST(:names AS text[]))))"
            ),
            {"names": FUNCTIONS},
        ).all()
    engine.dispose()
    return dict(rows)


@pytest.fixture
def url():
    """The PostgreSQL test database, emptied; left migrated to head with the rollup on in
    UTC afterwards, as the session's `database_url` fixture leaves it for other tests."""
    url = _postgres_url()
    _reset_postgres(url)
    yield url
    _reset_postgres(url)
    migrate_for_tests(url)


def test_each_function_returns_first_when_its_transition_table_is_empty_and_back(url):
    migrate.upgrade(url, "0019")
    before = _sources(url)
    assert set(before) == set(FUNCTIONS)
    migrate.upgrade(url, "0020")
    after = _sources(url)
    for name in FUNCTIONS:
        rows = "old_rows" if name.endswith("_delete") else "new_rows"
        guard = f"IF NOT EXISTS (SELECT FROM {rows}) THEN RETURN NULL; END IF;"
        assert after[name].count(guard) == 1, after[name]
        # The rest of the body is 0018's, untouched, and the guard comes before it.
        assert after[name].replace(f"  {guard}\n", "", 1) == before[name]
        assert after[name].index(guard) < after[name].index("INSERT INTO report_daily_delta")
    migrate.downgrade(url, "0019")
    assert _sources(url) == before
