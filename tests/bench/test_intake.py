"""The intake benchmark still runs end to end, with too few calls to measure anything:
the baseline, the batch API and CSV import, the workers' call jobs after them, and the
memory run's fresh processes. On SQLite (fakeredis) and on PostgreSQL with Redis; the
PostgreSQL run resets the test database, which the other tests empty before each use.
"""

from __future__ import annotations

import pytest

from bench.intake import main
from tests.conftest import _postgres_url


def figures(output: str) -> dict[str, float]:
    """Each path's ratio against the baseline, by the path's name."""
    ratios = {}
    for line in output.splitlines():
        if "x baseline" in line:
            name, _, rest = line.strip().partition("  ")
            ratios[name] = float(rest.split("calls/s")[1].split("x baseline")[0])
    return ratios


def test_tiny_run_on_sqlite(capsys):
    main(["--count", str(120)])
    output = capsys.readouterr().out
    assert "intake of 120 calls on sqlite (fakeredis)" in output
    assert set(figures(output)) == {"baseline bulk INSERT", "batch API (1,000 per request)",
                                    "CSV import"}  # fmt: skip
    assert "then the workers' call jobs after batch API" in output


@pytest.mark.postgres
@pytest.mark.redis
def test_tiny_run_on_postgresql(redis_url, capsys):
    main(["--count", str(120), "--database-url", _postgres_url(), "--redis-url", redis_url])
    output = capsys.readouterr().out
    assert "intake of 120 calls on postgresql (redis)" in output
    assert figures(output)["baseline bulk INSERT"] == 1.0


def test_memory_run_imports_each_file_in_its_own_process(capsys):
    main(["--memory", "60", "120"])
    output = capsys.readouterr().out
    assert "       60 rows" in output and "      120 rows" in output
    assert "peak RSS" in output
