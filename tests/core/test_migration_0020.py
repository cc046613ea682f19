"""Migration 0020: PostgreSQL's rollup triggers return at once for a statement that
changed no row. (The rollup's own tests, run at head, hold its figures to the tables'.)"""

from __future__ import annotations

import pytest

from core import migrate
from tests.conftest import _postgres_url, _reset_postgres, migrate_for_tests
from tests.core.test_migration_0009 import ROLLUP_FUNCTIONS, function_definitions

# The rollup's trigger functions (report_rollup_rebuild() is not one).
FUNCTIONS = [name for name in ROLLUP_FUNCTIONS if name != "report_rollup_rebuild"]


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
    before = function_definitions(url)
    assert set(before) == set(ROLLUP_FUNCTIONS)
    migrate.upgrade(url, "0020")
    after = function_definitions(url)
    for name in FUNCTIONS:
        rows = "old_rows" if name.endswith("_delete") else "new_rows"
        guard = f"IF NOT EXISTS (SELECT FROM {rows}) THEN RETURN NULL; END IF;"
        assert after[name].count(guard) == 1, after[name]
        # The rest is 0018's definition, untouched, and the guard comes before its INSERT.
        assert after[name].replace(f"  {guard}\n", "", 1) == before[name]
        assert after[name].index(guard) < after[name].index("INSERT INTO report_daily_delta")
    migrate.downgrade(url, "0019")
    assert function_definitions(url) == before
