"""The whole-call benchmark still runs: every kind of webhook a survey call makes, each
call answered to the end (the benchmark's own check), on the PostgreSQL test database
(which it resets, as bench.webhook_load's test explains)."""

from __future__ import annotations

import pytest

from bench.call_webhooks import main
from tests.conftest import _postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def tiny_run(redis_url: str, *more: str) -> list[str]:
    """Four calls after a history of 50 surveys: too few to measure, enough to run."""
    return [
        "--database-url", _postgres_url(), "--redis-url", redis_url,
        "--calls", "4", "--history", "50", *more,
    ]  # fmt: skip


def test_tiny_run_completes_every_call(redis_url, capsys):
    code = main(tiny_run(redis_url))
    output = capsys.readouterr().out
    assert code == 0, output
    rows = {line[:20].strip(): line[20:].split() for line in output.splitlines()}
    # posts per call: three progress callbacks, the start, two keypad answers, a comment
    # from every other caller (the detractors), the completed callback.
    assert rows["status (progress)"][0] == "3.0"
    assert rows["start"][0] == "1.0"
    assert rows["answer"][0] == "2.0"
    assert rows["comment"][0] == "0.5"
    assert rows["status (completed)"][0] == "1.0"
    assert "requests afterwards: {'completed': 24}" in output


def test_tiny_run_with_in_call_surveys_completes_both(redis_url, capsys):
    code = main(tiny_run(redis_url, "--in-call"))
    output = capsys.readouterr().out
    assert code == 0, output
    in_call = output.split("in-call surveys, the same answers")[1]
    rows = {line[:20].strip(): line[20:].split() for line in in_call.splitlines()}
    # The transfer starts the survey; the number's status callback sends completed only.
    assert rows["transfer"][0] == "1.0"
    assert rows["answer"][0] == "2.0"
    assert rows["status (completed)"][0] == "1.0"
    assert "status (progress)" not in rows
    assert "in-call survey / callback survey, web CPU per call:" in output
    assert "requests afterwards: {'completed': 48}" in output
