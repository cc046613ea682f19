"""The report benchmark still runs end to end, with too few answers to measure anything:
it loads a year of requests and answers (COPY on PostgreSQL, executemany on SQLite),
builds the daily rollup (on both databases), times every report and the dashboard page,
and prints a line per figure. The timings are not judged here.

The PostgreSQL run resets the PostgreSQL test database (the benchmark starts from an
empty, migrated one); the other tests empty its tables before each use, and the rollup
is left switched on in UTC, as tests/conftest.py builds it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select

from bench.reports import main
from core.db import Database
from core.models import Answer, report_daily
from scoring import rollup
from tests.conftest import _postgres_url

FIGURES = (
    "baseline count(*) of 90 days of answers",
    "headline report, 90 days",
    "per-agent report, 90 days",
    "per-agent report, 90 days, no rollup",
    "per-agent-per-day report, 30 days",
    "per-agent-per-day report, 30 days, CSV",
    "detractor list, first page",
    "dashboard page, 30 days by day (HTTP)",
)


def check_output(output: str, backend: str) -> None:
    lines = output.splitlines()
    assert lines[0].startswith(f"{backend}: "), output
    assert lines[1].strip().startswith("rollup built in "), output
    for figure in FIGURES:
        line = next((line for line in lines if line.strip().startswith(figure)), None)
        assert line is not None, f"{figure!r} missing:\n{output}"
        milliseconds, unit = line.strip()[len(figure) :].split()[:2]
        assert float(milliseconds) > 0 and unit == "ms", line


def rows_in(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = (
            connection.scalar(select(func.count(Answer.id))),
            connection.scalar(select(func.count()).select_from(report_daily)),
        )
    engine.dispose()
    return counts


def test_tiny_run_on_sqlite(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    main(["--database-url", url, "--answers", "3000", "--repeat", "2"])
    check_output(capsys.readouterr().out, "sqlite")
    answers, rolled_up = rows_in(url)
    assert answers > 2000 and rolled_up > 0
    main(["--database-url", url, "--measure-only", "--repeat", "1"])
    assert "per-agent-per-day report, 30 days" in capsys.readouterr().out


@pytest.mark.postgres
def test_tiny_run_on_postgresql(capsys):
    url = _postgres_url()
    try:
        main(["--database-url", url, "--answers", "3000", "--repeat", "2"])
        check_output(capsys.readouterr().out, "postgresql")
        answers, rolled_up = rows_in(url)
        assert answers > 2000 and rolled_up > 0
    finally:
        db = Database(url)  # as the other tests expect it (tests/conftest.py)
        with db.session() as session:
            rollup.switch_on(session, ZoneInfo("UTC"))
        db.dispose()
