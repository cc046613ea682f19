"""Faults phonesim can inject for tests of the product: lost final callbacks, creates
that answer too late, and Twilio's TimeLimit ending a call that goes on too long."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from core.telephony import RedirectingHttpClient
from phonesim import EagerClock, Persona, PhoneNetwork
from tests.phonesim.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, START
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


@pytest.fixture
def statuses(webapp: TwimlApp) -> list[dict[str, str]]:
    posted: list[dict[str, str]] = []
    webapp.handlers["/status"] = lambda params: posted.append(params)
    hello = VoiceResponse()
    hello.say("Hello")
    webapp.twiml("/hello", hello)
    return posted


def _call(client: Client, webapp: TwimlApp, to: str = TO, **options) -> str:
    return client.calls.create(
        to=to, from_=FROM, url=webapp.url("/hello"), status_callback=webapp.url("/status"),
        status_callback_event=ALL_EVENTS, **options,
    ).sid  # fmt: skip


def test_a_lost_final_callback_is_never_posted_but_the_call_tells_its_end(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses
) -> None:
    network.set_persona(TO, Persona.busy())
    network.lose_final_callbacks(numbers=[TO])
    lost = _call(twilio_client, webapp)
    kept = _call(twilio_client, webapp, to="+15551230002")
    network.run_until_idle()

    assert network.call(lost).status_events == ["initiated"]
    assert network.call(lost).final_callback_lost
    assert twilio_client.calls(lost).fetch().status == "busy"
    assert network.call(kept).status_events[-1] == "completed"
    assert not network.call(kept).final_callback_lost


def test_a_share_of_final_callbacks_is_lost_the_same_way_for_the_same_seed(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses
) -> None:
    network.lose_final_callbacks(share=0.3)
    for n in range(40):
        network.set_persona(f"+155512310{n:02d}", Persona.busy())
        _call(twilio_client, webapp, to=f"+155512310{n:02d}")
    network.run_until_idle()

    lost = [call.final_callback_lost for call in network.calls]
    assert 4 <= sum(lost) <= 20
    assert lost == [network.loses_final_callback(call) for call in network.calls]


def test_a_slow_create_places_the_call_and_the_client_times_out(
    network: PhoneNetwork, webapp: TwimlApp, statuses
) -> None:
    impatient = Client(
        ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base, timeout=0.3)
    )
    network.slow_down_creates(seconds=1.0, times=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        _call(impatient, webapp)
    assert time.monotonic() - started < 1.0
    time.sleep(0.8)  # the server finishes answering the request nobody waits for
    (placed,) = network.calls
    assert placed.to == TO
    # The next create answers at once.
    assert _call(impatient, webapp, to="+15551230002")


def test_time_limit_ends_an_answered_call(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses
) -> None:
    long_pause = VoiceResponse()
    long_pause.pause(length=600)
    webapp.twiml("/hello", long_pause)
    network.set_persona(TO, Persona.answering([], ring_seconds=5))
    sid = _call(twilio_client, webapp, time_limit=120)
    network.run_until_idle()

    call = network.call(sid)
    assert call.status == "completed"
    assert call.duration == 120
    assert call.end_time == START + timedelta(seconds=5 + 120)
    assert statuses[-1]["CallStatus"] == "completed"


def test_without_a_time_limit_calls_run_their_course(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses
) -> None:
    network.set_persona(TO, Persona.answering([], ring_seconds=5))
    sid = _call(twilio_client, webapp)
    network.run_until_idle()
    # Twilio's 4-hour default limit is not waited for once the call is over.
    assert network.clock.now() - START < timedelta(minutes=1)
    assert network.call(sid).status == "completed"


def test_the_eager_clock_stamps_real_time_and_never_waits(webapp: TwimlApp, statuses) -> None:
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=EagerClock(), seed=3)
    network.start()
    try:
        client = Client(
            ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base)
        )
        network.set_persona(TO, Persona.no_answer())
        before = datetime.now(UTC)
        started = time.monotonic()
        sid = _call(client, webapp)
        network.run_until_idle()
        assert time.monotonic() - started < 5  # the 60 s of ringing took no time
        call = network.call(sid)
        assert call.status == "no-answer"
        assert before <= call.end_time <= datetime.now(UTC)
    finally:
        network.stop()
