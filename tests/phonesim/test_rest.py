"""The REST Calls resource through the real twilio Client and over raw HTTP."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from core.telephony import RedirectingHttpClient
from phonesim import Persona, PhoneNetwork, SimClock
from tests.phonesim.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, START
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"


def _hello(webapp: TwimlApp) -> str:
    response = VoiceResponse()
    response.say("Hello")
    webapp.twiml("/hello", response)
    return webapp.url("/hello")


def test_create_returns_a_queued_call_shaped_like_twilios(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    call = twilio_client.calls.create(to=TO, from_=FROM, url=_hello(webapp))

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued"
    assert call.account_sid == ACCOUNT_SID
    assert call.to == TO
    assert call._from == FROM
    assert call.direction == "outbound-api"
    assert call.api_version == "2010-04-01"
    assert call.date_created == START
    assert call.end_time is None
    assert call.duration is None
    assert call.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json"


def test_raw_create_answers_201_with_rfc2822_dates(network: PhoneNetwork, webapp: TwimlApp) -> None:
    response = requests.post(
        f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={"To": TO, "From": FROM, "Url": _hello(webapp)},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["answered_by"] is None
    assert parsedate_to_datetime(body["date_created"]) == START
    assert body["date_created"] == "Wed, 01 May 2024 14:00:00 +0000"


def test_fetch_after_the_call_reports_times_and_duration(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering([], ring_seconds=5))
    sid = twilio_client.calls.create(to=TO, from_=FROM, url=_hello(webapp)).sid

    network.run_until_idle()
    call = twilio_client.calls(sid).fetch()

    assert call.status == "completed"
    assert call.start_time == START
    assert call.end_time > call.start_time
    assert int(call.duration) == network.call(sid).duration
    assert int(call.duration) >= 1


def test_list_filters_by_number(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    url = _hello(webapp)
    first = twilio_client.calls.create(to=TO, from_=FROM, url=url).sid
    twilio_client.calls.create(to="+15551230002", from_=FROM, url=url)

    listed = twilio_client.calls.list(to=TO)

    assert [call.sid for call in listed] == [first]


def test_cancel_a_queued_call(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    status_url = webapp.url("/status")
    webapp.handlers["/status"] = lambda params: None
    sid = twilio_client.calls.create(
        to=TO, from_=FROM, url=_hello(webapp), status_callback=status_url
    ).sid

    updated = twilio_client.calls(sid).update(status="canceled")
    network.run_until_idle()

    assert updated.status == "canceled"
    call = network.call(sid)
    assert call.status == "canceled"
    assert call.documents == []
    assert call.status_events == ["canceled"]
    assert twilio_client.calls(sid).fetch().status == "canceled"


def test_redirecting_an_ended_call_is_error_21220(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering([]))
    sid = twilio_client.calls.create(to=TO, from_=FROM, url=_hello(webapp)).sid
    network.run_until_idle()

    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls(sid).update(url=webapp.url("/hello"))

    assert (raised.value.status, raised.value.code) == (400, 21220)


@pytest.mark.parametrize(
    ("to", "status", "code"),
    [
        ("5551230001", 400, 21211),
        ("not-a-number", 400, 21211),
        ("+1", 400, 21211),
        ("+447700900123", 400, 21215),
        ("+19005550100", 400, 21215),
    ],
)
def test_numbers_that_cannot_be_called(
    twilio_client: Client, webapp: TwimlApp, to: str, status: int, code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls.create(to=to, from_=FROM, url=_hello(webapp))

    assert (raised.value.status, raised.value.code) == (status, code)


@pytest.mark.parametrize(("fault", "code"), [(429, 20429), (500, 20500)])
def test_injected_faults(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, fault: int, code: int
) -> None:
    network.inject_fault(fault, times=1, path_contains="/Calls")

    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls.create(to=TO, from_=FROM, url=_hello(webapp))
    retry = twilio_client.calls.create(to=TO, from_=FROM, url=_hello(webapp))

    assert (raised.value.status, raised.value.code) == (fault, code)
    assert retry.status == "queued"
    assert [exchange.status for exchange in network.journal.rest] == [fault, 201]


@pytest.mark.parametrize("field", ["Timeout", "TimeLimit"])
@pytest.mark.parametrize("value", ["soon", "-5", "1.5"])
def test_seconds_that_are_not_whole_numbers_are_400_not_a_crash(
    network: PhoneNetwork, webapp: TwimlApp, field: str, value: str
) -> None:
    response = requests.post(
        f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={"To": TO, "From": FROM, "Url": _hello(webapp), field: value},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    assert (response.status_code, response.json()["code"]) == (400, 21201)
    assert field in response.json()["message"]
    assert network.calls == []


def test_wrong_token_is_401_code_20003(network: PhoneNetwork, webapp: TwimlApp) -> None:
    client = Client(ACCOUNT_SID, "wrong", http_client=RedirectingHttpClient(network.api_base))

    with pytest.raises(TwilioRestException) as raised:
        client.calls.create(to=TO, from_=FROM, url=_hello(webapp))

    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert network.calls == []


def test_unknown_call_is_404_code_20404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls("CA" + "f" * 32).fetch()

    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_error_body_has_twilios_shape(network: PhoneNetwork) -> None:
    response = requests.post(
        f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={"To": "12", "From": FROM, "Url": "https://example.test/x"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": 21211,
        "message": "The 'To' number 12 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }


def test_calls_per_second_limit_on_the_simulated_clock(webapp: TwimlApp) -> None:
    clock = SimClock(START)
    with PhoneNetwork(
        ACCOUNT_SID, AUTH_TOKEN, clock=clock, calls_per_second=2, rate_limit_clock="sim"
    ) as network:
        client = Client(
            ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base)
        )
        url = _hello(webapp)
        for _ in range(2):
            client.calls.create(to=TO, from_=FROM, url=url)
        with pytest.raises(TwilioRestException) as raised:
            client.calls.create(to=TO, from_=FROM, url=url)
        clock.advance(1.0)
        after_a_second = client.calls.create(to=TO, from_=FROM, url=url)

    assert (raised.value.status, raised.value.code) == (429, 20429)
    assert after_a_second.status == "queued"


def test_every_rest_request_is_recorded(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    sid = twilio_client.calls.create(
        to=TO,
        from_=FROM,
        url=_hello(webapp),
        status_callback=webapp.url("/status"),
        status_callback_event=["initiated", "answered"],
    ).sid
    twilio_client.calls(sid).fetch()

    create, fetch = network.journal.rest
    assert (create.method, create.status, create.call_sid) == ("POST", 201, sid)
    assert create.params["To"] == TO
    assert create.params["StatusCallbackEvent"].split() == ["initiated", "answered"]
    assert (fetch.method, fetch.path, fetch.status) == (
        "GET",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
        200,
    )
    assert network.call(sid).rest == [create, fetch]
    assert network.call(sid).status_callback_events == ("initiated", "answered")


def test_the_calls_list_pages_newest_first(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    url = _hello(webapp)
    sids = [twilio_client.calls.create(to=TO, from_=FROM, url=url).sid for _ in range(3)]

    listed = twilio_client.calls.list(page_size=2)
    first_page = twilio_client.calls.page(page_size=2)

    assert [call.sid for call in listed] == sids[::-1]
    assert first_page.next_page_url is not None
    assert [call.sid for call in first_page.next_page()] == [sids[0]]
