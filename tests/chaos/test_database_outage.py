"""The database unreachable for a few seconds mid-campaign (a proxy in front of the
shared PostgreSQL server drops every connection and refuses new ones)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from tests.chaos.harness import REACHABLE, UNAVAILABLE, callable_numbers, check_campaign

pytestmark = pytest.mark.chaos

REQUESTS = 80
OUTAGE = timedelta(seconds=5)
# A placement whose attempt was committed just before the cut still reaches Twilio.
IN_FLIGHT_AT_CUT = timedelta(seconds=1)


def test_a_database_outage_is_met_politely_and_dials_nobody(launch):
    # One phone network, whose driver has a backlog of calls to run while the database
    # is away; with several, every call live at the cut ends within a fraction of a
    # second, and the rest of the outage meets no webhook.
    campaign = launch(workers=2, proxy=True, mix=REACHABLE, seed=12, shards=1)
    campaign.intake(callable_numbers(REQUESTS))
    outage: dict[str, datetime] = {}

    def chaos(elapsed: float) -> None:
        now = datetime.now(UTC)
        if "cut" not in outage and len(campaign.network.calls) >= REQUESTS // 4:
            campaign.proxy.cut()
            outage["cut"] = now
        elif "cut" in outage and "restored" not in outage and now - outage["cut"] >= OUTAGE:
            outage["restored"] = now
            campaign.proxy.restore()

    started = time.monotonic()
    campaign.run(timeout=240, during=chaos)
    summary = check_campaign(campaign, campaign.runtime.catalog)
    cut, restored = outage["cut"], outage["restored"]
    # The dialer placed no call while the database was unreachable.
    placed = [c.date_created for c in campaign.network.calls]
    assert not [t for t in placed if cut + IN_FLIGHT_AT_CUT < t < restored]
    # Twilio's webhooks got polite TwiML, never an error page.
    during = [d for d in campaign.network.journal.documents if cut < d.at < restored]
    assert during, "no webhook came during the outage"
    assert all(d.status == 200 for d in during)
    apologies = [d for d in during if UNAVAILABLE in _said(d.xml)]
    assert apologies
    print(f"{summary}, {len(during)} webhooks during the outage, "
          f"{len(apologies)} apologies, {time.monotonic() - started:.0f} s")  # fmt: skip


def _said(xml: str) -> list[str | None]:
    return [e.text for e in ElementTree.fromstring(xml).iter("Say")]
