"""Workers SIGKILLed at random moments during a campaign, and restarted.

The campaign is REQUESTS survey requests; AFTERCALL_CHAOS_REQUESTS runs a bigger one by
hand (docs/reliability.md). A worker is killed every 2-8 s for as long as the dialer is
still making the campaign's first calls, whatever its size. (Each kill costs a new
worker's start, 1.5-2 s of CPU on the suite's 2-core machine: more kills would
slow the campaign more than they add moments to be killed at.)
"""

from __future__ import annotations

import random
import time

import pytest

from phonesim import PersonaMix
from tests.chaos.harness import callable_numbers, campaign_size, check_campaign

pytestmark = pytest.mark.chaos

# 600 keeps the suite near 5-6 minutes on its 2-core machine: the campaign is bound by
# the CPU each call costs the deployment (docs/reliability.md, "Not yet guaranteed").
REQUESTS = campaign_size(default=1000)
SEED = 20261123
WORKERS = 4
# Generous: a campaign places 3-5 calls a second on the suite's 2-core machine; the
# last retries come a minute after the first attempts.
TIMEOUT = 180 + REQUESTS * 0.5


def test_workers_killed_at_random_moments_lose_nothing_and_call_no_one_twice(launch):
    campaign = launch(workers=WORKERS, mix=PersonaMix.default(), seed=SEED)
    campaign.network.lose_final_callbacks(share=0.05)
    rng = random.Random(SEED)
    campaign.intake_as_dialed(
        callable_numbers(REQUESTS, minutes=int(TIMEOUT / 60) + 5), ahead=10 * WORKERS
    )
    next_kill = [rng.uniform(0.5, 3.0)]
    kills = []

    def chaos(elapsed: float) -> None:
        first_calls_left = len(campaign.network.calls) < REQUESTS
        if elapsed >= next_kill[0] and first_calls_left:
            campaign.deployment.kill_worker(rng)
            kills.append(elapsed)
            next_kill[0] = elapsed + rng.uniform(2.0, 8.0)

    started = time.monotonic()
    campaign.run(timeout=TIMEOUT, during=chaos)
    took = time.monotonic() - started
    summary = check_campaign(campaign, campaign.runtime.catalog)
    print(f"{summary}, {len(kills)} workers killed, {took:.0f} s "
          f"({summary['calls'] / took:.1f} calls/s)")  # fmt: skip
    assert kills
