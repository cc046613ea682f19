"""The webhook load benchmark still runs end to end, at a rate and duration too small to
measure anything: the Procfile's gunicorn serving the real app and the bare endpoint,
the load generator's processes, the floor (the bare endpoint plus one INSERT), and the
database check of every acknowledged answer.

It resets the PostgreSQL test database (the benchmark starts from an empty, migrated
one); the other tests empty its tables before each use, so they do not mind.
"""

from __future__ import annotations

import pytest

from bench.webhook_load import main
from tests.conftest import _postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def table_rows(output: str) -> dict[str, list[list[str]]]:
    rows: dict[str, list[list[str]]] = {
        "bare endpoint": [],
        "stored floor": [],
        "answer webhook": [],
    }
    for line in output.splitlines():
        for name in rows:
            if line.startswith(name):
                rows[name].append(line.removeprefix(name).split())
    return rows


def test_tiny_run_acknowledges_every_answer_and_stores_each_once(redis_url, capsys):
    code = main(
        ["--database-url", _postgres_url(), "--redis-url", redis_url,
         "--rate", "20", "--seconds", "1", "--closed-requests", "20", "--concurrency", "2",
         "--warmup", "4", "--pause", "0", "--web-concurrency", "1", "--history", "50"]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0, output
    rows = table_rows(output)
    # One open-loop and one closed-loop row per server: sent, ok, errors, ...
    for name, runs in rows.items():
        assert [run[:3] for run in runs] == [["20", "20", "0"]] * 2, (name, output)
    assert (
        "database: 44 answers acknowledged, 44 stored; missing 0, stored more than once 0, wrong value 0"
        in output
    )
    assert "floor / bare" in output  # the bare endpoint plus one INSERT, beside the two
    assert "target not measured" in output
