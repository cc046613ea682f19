"""Fixtures: a started PhoneNetwork on a simulated clock, the real Twilio SDK pointed
at it through the project's RedirectingHttpClient, and a live TwiML app on localhost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from twilio.rest import Client

from core.telephony import RedirectingHttpClient
from phonesim import PhoneNetwork, SimClock
from tests.phonesim.twiml_app import TwimlApp

ACCOUNT_SID = "AC" + "ab12" * 8
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
FROM = "+15550000000"
START = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START)


@pytest.fixture
def network(clock: SimClock) -> Iterator[PhoneNetwork]:
    net = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock, seed=7, blocked=["+44", "+1900"])
    net.start()
    yield net
    net.stop()


@pytest.fixture
def twilio_client(network: PhoneNetwork) -> Client:
    return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base))


@pytest.fixture
def webapp() -> Iterator[TwimlApp]:
    twiml_app = TwimlApp(AUTH_TOKEN).start()
    yield twiml_app
    twiml_app.stop()
    # Every webhook the simulator made carried a valid Twilio signature.
    assert all(seen.signed and seen.signature_valid for seen in twiml_app.seen)
