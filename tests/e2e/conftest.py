"""Whole calls: the real app on a live localhost server, the real twilio SDK, phonesim.

The app's settings point `TWILIO_API_BASE` at the simulator and `PUBLIC_BASE_URL` at the
app's own server, exactly as the demo and a manual run do; signature checks stay on
(phonesim signs every webhook like Twilio, with the same auth token).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from aftercall.demo import LateBoundApp
from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core.config import Settings
from core.models import SurveyRequest
from core.runtime import Runtime, use_worker_runtime
from dialer.intake import CallEnded, register_call
from dialer.placement import Placed, place_call
from phonesim import BackgroundServer, PhoneNetwork, SimCall, SimClock
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.e2e


@dataclass
class Campaign:
    runtime: Runtime
    network: PhoneNetwork
    _counter: int = 0

    def survey(self, phone: str, **fields) -> tuple[int, SimCall]:
        """Register a finished support call for `phone`, place the survey call, run it."""
        request_id, placed = self.place(phone, **fields)
        self.network.run_until_idle(timeout=30)
        return request_id, self.network.call(placed.call_sid)

    def place(self, phone: str, **fields) -> tuple[int, Placed]:
        self._counter += 1
        ended = CallEnded(
            phone=phone,
            source_call_id=fields.pop("source_call_id", f"crm-{self._counter}"),
            ended_at=datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
            agent=fields.pop("agent", "alice"),
            queue="billing",
            **fields,
        )
        with self.runtime.db.session() as session:
            result = register_call(
                session, self.runtime.catalog, ended,
                now=self.runtime.now(), settings=self.runtime.settings,
            )  # fmt: skip
        assert result.accepted, result
        request_id = result.request_id
        placed = place_call(self.runtime, request_id)
        assert placed is not None
        return request_id, placed

    def request(self, request_id: int) -> SurveyRequest:
        with self.runtime.db.session() as session:
            request = session.get(SurveyRequest, request_id)
            request.answers, request.attempts  # noqa: B018 - load before the session ends
            for attempt in request.attempts:
                attempt.events  # noqa: B018
            return request


@pytest.fixture
def campaign(runtime: Runtime, redis_url: str) -> Iterator[Campaign]:
    # Monday 18:05 UTC: 10:05 in California, inside every test number's calling hours.
    clock = SimClock(datetime(2026, 11, 23, 18, 5, tzinfo=UTC))
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock, seed=7)
    network.start()
    late_app = LateBoundApp()
    server = BackgroundServer(late_app).start()
    settings: Settings = runtime.settings.with_overrides(
        public_base_url=server.base_url, twilio_api_base=network.api_base
    )
    live = Runtime(
        wiring=PROCESS_WIRING,
        settings=settings.with_overrides(redis_url=redis_url, calls_per_second=100.0),
        db=runtime.db,
        catalog=runtime.catalog,
        now=clock.now,
    )
    late_app.app = create_app(runtime=live)
    try:
        yield Campaign(live, network)
    finally:
        server.stop()
        network.stop()


@pytest.fixture
def dialer(campaign: Campaign):
    """The campaign driven the way the worker drives it (tests/e2e/test_dialer.Dialer),
    with the in-process worker runtime pointed at it."""
    from tests.e2e.test_dialer import Dialer

    use_worker_runtime(campaign.runtime)
    yield Dialer(campaign)
    use_worker_runtime(None)
