"""Twilio's API failing: rate limited (429), server errors (500), and create requests
that place the call but answer only after the SDK has given up (a timeout)."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import CallAttempt
from dialer.dispatch import TRANSIENT_BACKOFF
from tests.chaos.harness import REACHABLE, callable_numbers, check_campaign

pytestmark = pytest.mark.chaos

REQUESTS = 100
RATE_LIMITED, SERVER_ERRORS, TIMEOUTS = 12, 8, 3
# The SDK gives up after 10 s (core.telephony.rest_client).
SLOWER_THAN_THE_CLIENT = 11.0


def test_twilio_failures_back_off_lose_nothing_and_never_call_twice(launch):
    # One phone network: each fault counts its `times` on the network it is set on.
    campaign = launch(workers=3, mix=REACHABLE, seed=13, shards=1)
    network = campaign.network
    network.inject_fault(429, times=RATE_LIMITED, path_contains="Calls.json")
    network.inject_fault(500, times=SERVER_ERRORS, path_contains="Calls.json")
    network.slow_down_creates(SLOWER_THAN_THE_CLIENT, times=TIMEOUTS)
    # Fetches and updates of a call (reconciliation, machine detection steering).
    network.inject_fault(500, times=5, path_contains="/Calls/")
    campaign.intake(callable_numbers(REQUESTS))

    started = time.monotonic()
    campaign.run(timeout=240)
    summary = check_campaign(campaign, campaign.runtime.catalog)

    creates = [r for r in network.journal.rest if r.path.endswith("/Calls.json")]
    refused = [r for r in creates if r.status >= 400]
    assert len(refused) == RATE_LIMITED + SERVER_ERRORS
    with campaign.observer.session() as session:
        attempts = session.scalars(select(CallAttempt).order_by(CallAttempt.id)).all()
    by_request = defaultdict(list)
    for attempt in attempts:
        by_request[attempt.request_id].append(attempt)
    assert sum(a.status == "rejected" for a in attempts) == RATE_LIMITED + SERVER_ERRORS
    for tries in by_request.values():
        # Each refusal was followed by another try, after the backoff.
        for refused_attempt, later in itertools.pairwise(tries):
            if refused_attempt.status == "rejected":
                gap = later.created_at - refused_attempt.created_at
                assert gap >= TRANSIENT_BACKOFF[0] - timedelta(seconds=1), (
                    f"attempt {later.id} came {gap} after refused attempt {refused_attempt.id}"
                )
        assert tries[-1].status != "rejected"
    # The creates that timed out had placed their call: it was kept, not placed again.
    assert len(network.calls) == len(by_request)
    print(f"{summary}, {len(refused)} refusals, {time.monotonic() - started:.0f} s")
