"""The dialer throughput benchmark still runs end to end, with too few requests to
measure anything: the Procfile's rq worker placing calls with the twilio SDK through
phonesim in its own process, the no-op baseline, a pacing run, and the check that every
request was placed exactly once.

It resets the PostgreSQL test database (the benchmark starts from an empty, migrated
one); the other tests empty its tables before each use, so they do not mind.
"""

from __future__ import annotations

import pytest

from bench.dialer_throughput import main
from tests.conftest import _postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def rows(output: str, first_word: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.split()[:1] == [first_word]]


def test_tiny_run_places_every_request_once(redis_url, capsys):
    code = main(
        ["--database-url", _postgres_url(), "--redis-url", redis_url,
         "--requests", "3", "--workers", "1",
         "--pacing", "20", "--pacing-seconds", "0.1", "--pacing-workers", "1",
         "--timeout", "60"]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0, output
    # workers, job, jobs, per s, ...: one no-op run and one call run, 3 jobs each.
    throughput = [row[:3] for row in rows(output, "1") if row[1] in ("no-op", "call")]
    assert throughput == [["1", "no-op", "3"], ["1", "call", "3"]], output
    # CPS, workers, calls: 0.1 s at 20 CPS is 2 requests.
    assert [row[:3] for row in rows(output, "20")] == [["20", "1", "2"]], output
    assert "placed exactly once (1 worker(s), CPS 1000): yes: 3 requests" in output
    assert "placed exactly once (1 worker(s), CPS 20): yes: 2 requests" in output
    assert "pacing 20 CPS at phonesim: held" in output


def test_the_check_catches_a_request_placed_twice_and_a_call_it_never_made():
    from datetime import UTC, datetime

    from bench.dialer_throughput import Attempt, Create, Run, placed_once

    now = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    run = Run("call", 1, 1000.0, 2, phones=["+12125550001", "+12125550002"])
    run.attempts = [Attempt(1, "CA1", "queued", now), Attempt(2, "CA2", "queued", now)]
    run.creates = [Create(0.0, 201, "CA1", "+12125550001"), Create(0.1, 201, "CA2", "+12125550002")]
    assert placed_once(run)[0]

    run.attempts.append(Attempt(2, "CA3", "queued", now))
    run.creates.append(Create(0.2, 201, "CA3", "+12125550002"))
    ok, summary = placed_once(run)
    assert not ok
    assert "placed twice 1" in summary and "numbers called twice 1" in summary

    run.attempts.pop()
    run.creates[-1] = Create(0.2, 201, "CA9", "+12125550009")
    ok, summary = placed_once(run)
    assert not ok
    assert "numbers not seeded 1" in summary and "CallSids DIFFER" in summary
