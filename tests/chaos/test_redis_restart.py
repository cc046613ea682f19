"""Redis crashes mid-campaign and comes back, with its append-only file and without
any persistence (every queued job lost): the database rebuilds the queue."""

from __future__ import annotations

import time

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from dialer.scheduling import CALL_QUEUE
from tests.chaos.harness import REACHABLE, callable_numbers, check_campaign

pytestmark = pytest.mark.chaos

REQUESTS = 80


@pytest.mark.parametrize("appendonly", [True, False], ids=["appendonly", "no-persistence"])
def test_a_redis_restart_mid_campaign_is_recovered_from_the_database(launch, appendonly):
    campaign = launch(workers=2, appendonly=appendonly, mix=REACHABLE, seed=11)
    campaign.intake(callable_numbers(REQUESTS))
    restarted: dict[str, int] = {}

    def chaos(elapsed: float) -> None:
        if restarted or len(campaign.network.calls) < REQUESTS // 4:
            return
        redis = campaign.runtime.redis
        queue = Queue(CALL_QUEUE, connection=redis)
        waiting = {*queue.get_job_ids(), *ScheduledJobRegistry(queue=queue).get_job_ids()}
        campaign.redis.crash()
        time.sleep(2)
        campaign.redis.start()
        # Jobs waiting before the crash that are still there (the web tier and the
        # workers write new ones as soon as Redis is back).
        restarted["waiting"] = len(waiting)
        restarted["kept"] = sum(Job.exists(job_id, connection=redis) for job_id in waiting)
        restarted["unfinished"] = campaign.unfinished()

    started = time.monotonic()
    campaign.run(timeout=240, during=chaos)
    summary = check_campaign(campaign, campaign.runtime.catalog)
    print(f"{summary}, after the restart {restarted}, {time.monotonic() - started:.0f} s")
    assert restarted["unfinished"] > 0  # the crash came mid-campaign
    assert restarted["waiting"] > 0
    if appendonly:
        assert restarted["kept"] > 0  # the queue came back from the append-only file
    else:
        assert restarted["kept"] == 0  # everything queued was lost
