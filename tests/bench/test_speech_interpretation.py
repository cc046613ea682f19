"""The speech bench still runs (a tiny run on the PostgreSQL test database, which it
resets, as bench.webhook_load's test explains): every spoken answer taken, the ratio
printed."""

from __future__ import annotations

import pytest

from bench.speech_interpretation import main
from tests.conftest import _postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_tiny_run_takes_every_spoken_answer(redis_url, capsys):
    code = main(["--database-url", _postgres_url(), "--redis-url", redis_url, "--calls", "8"])
    output = capsys.readouterr().out
    assert code == 0, output
    ratio = float(output.splitlines()[-1].split(":")[1])
    assert 0 < ratio < 1
