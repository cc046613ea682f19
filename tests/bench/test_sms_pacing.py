"""The SMS pacing benchmark still runs end to end, with too few texts to measure
anything: the unpaced baseline through `sms.sender.send`, then rq workers (the
Procfile's worker class) sending texts through `sms.jobs.send_text` and the Redis
limiter to phonesim, every text sent once, and no 1-second window holding more
admissions than MESSAGES_PER_SECOND.

It resets the PostgreSQL test database (the benchmark starts from an empty, migrated
one); the other tests empty its tables before each use, so they do not mind.
"""

from __future__ import annotations

import pytest

from bench.sms_pacing import main, max_in_any_window
from tests.conftest import _postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MPS = 4


def rows(output: str, first_word: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.split()[:1] == [first_word]]


def test_tiny_run_sends_every_text_once_within_the_limit(redis_url, capsys):
    code = main(
        ["--database-url", _postgres_url(), "--redis-url", redis_url,
         "--mps", str(MPS), "--workers", "1", "2", "--texts", "8", "--baseline-texts", "6",
         "--timeout", "60"]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0, output
    # workers, texts
    assert [row[1:3] for row in rows(output, "unpaced")] == [["1", "6"], ["2", "6"]], output
    paced = rows(output, "paced")
    # mps, workers, texts, seconds, held/s, held/limit, ceiling/s, limit/ceiling,
    # held/ceiling, then the most in 1 s: admitted / accepted / accepted warm
    assert [row[1:4] for row in paced] == [[str(MPS), "1", "8"], [str(MPS), "2", "8"]], output
    for row in paced:
        admitted, slash = int(row[10]), row[11]
        assert slash == "/" and 0 < admitted <= MPS, output
        # 8 texts at 4 a second are two windows: the second starts a window after the first.
        assert float(row[4]) >= 1.9, output
    for workers in (1, 2):
        assert f"sent exactly once ({workers} worker(s), unpaced): yes" in output
        assert f"sent exactly once ({workers} worker(s), {MPS} mps): yes" in output
        assert f"limit held ({workers} worker(s), {MPS} mps): yes: 8 admissions" in output


def test_the_most_in_any_window_counts_half_open_windows():
    assert max_in_any_window([]) == 0
    assert max_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert max_in_any_window([0.0, 1.0, 2.0, 3.0]) == 1
    assert max_in_any_window([0.0, 1.0, 2.0, 3.0], width=2.5) == 3
