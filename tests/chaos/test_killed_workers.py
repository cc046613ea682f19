"""Workers SIGKILLed at random moments during a campaign, and restarted."""

from __future__ import annotations

import random
import time

import pytest

from phonesim import PersonaMix
from tests.chaos.harness import callable_numbers, check_campaign

pytestmark = pytest.mark.chaos

REQUESTS = 150
SEED = 20261123


def test_workers_killed_at_random_moments_lose_nothing_and_call_no_one_twice(launch):
    campaign = launch(workers=3, mix=PersonaMix.default(), seed=SEED)
    campaign.network.lose_final_callbacks(share=0.05)
    rng = random.Random(SEED)
    campaign.intake(callable_numbers(REQUESTS))
    next_kill = [rng.uniform(0.5, 3.0)]
    kills = []

    def chaos(elapsed: float) -> None:
        if elapsed >= next_kill[0] and elapsed < 60:
            campaign.deployment.kill_worker(rng)
            kills.append(elapsed)
            next_kill[0] = elapsed + rng.uniform(1.0, 5.0)

    started = time.monotonic()
    campaign.run(timeout=300, during=chaos)
    summary = check_campaign(campaign, campaign.runtime.catalog)
    print(f"{summary}, {len(kills)} workers killed, {time.monotonic() - started:.0f} s")
    assert kills
