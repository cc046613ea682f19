"""The follow-ups page benchmark still runs end to end, with too few follow-ups to
measure anything: it loads them (COPY on PostgreSQL, executemany on SQLite), signs in
as an admin and as a supervisor leading one team, gets every view of the page and times
the figures, and prints a line per case. The timings are not judged here: a few hundred
follow-ups on a busy test machine say nothing about 100,000 on a quiet one.

The PostgreSQL run resets the PostgreSQL test database (the benchmark starts from an
empty, migrated one); the other tests empty its tables before each use, so they do not
mind.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select

from bench.follow_ups_page import main
from core.models import FollowUp
from tests.conftest import _postgres_url

CASES = (
    "baseline: sign-in page, signed out",
    "admin: my open (the default)",
    "admin: all open",
    "admin: all overdue",
    "admin: team-007's open",
    "admin: everything, any status",
    "admin: everything, page 40",
    "supervisor: my open (the default)",
    "supervisor: all open of my team",
    "figures(): admin, by team + total",
    "figures(): admin, by team + total, 30 d",
    "figures(): supervisor, total",
)


def check_output(output: str, follow_ups: int) -> None:
    lines = output.splitlines()
    assert lines[0].split(":")[1].split()[0] == f"{follow_ups:,}", output
    assert "the page lists as many overdue as figures() counts: yes" in output
    for case in CASES:
        line = next((line for line in lines if line.strip().startswith(case)), None)
        assert line is not None, f"{case!r} missing:\n{output}"
        median, p95, ratio = line.strip()[len(case) :].split()[:3]
        assert float(median) > 0 and float(p95) >= float(median), line
        assert ratio.endswith("x"), line
    assert lines[-1].startswith("every page's p95 under 300 ms: "), output


def follow_ups_in(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count(FollowUp.id)))
    engine.dispose()
    return count


def test_tiny_run_on_sqlite(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    main(["--database-url", url, "--follow-ups", "300", "--repeat", "3"])
    check_output(capsys.readouterr().out, 300)
    assert follow_ups_in(url) == 300


@pytest.mark.postgres
def test_tiny_run_on_postgresql(capsys):
    url = _postgres_url()
    main(["--database-url", url, "--follow-ups", "400", "--repeat", "3"])
    check_output(capsys.readouterr().out, 400)
    assert follow_ups_in(url) == 400
    # Measuring again without loading finds what the first run left.
    main(["--database-url", url, "--measure-only", "--repeat", "2"])
    assert capsys.readouterr().out.startswith("postgresql: 400 follow-ups already loaded")
