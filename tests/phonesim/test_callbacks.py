"""Status callbacks and answering machine detection."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from phonesim import Persona, PhoneNetwork
from tests.phonesim.conftest import ACCOUNT_SID, FROM, START
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
LONG_WELCOME = " ".join(["Hello, this is a short survey about your recent call."] * 3)


@pytest.fixture
def statuses(webapp: TwimlApp) -> list[dict[str, str]]:
    posted: list[dict[str, str]] = []
    webapp.handlers["/status"] = lambda params: posted.append(params)
    welcome = VoiceResponse()
    welcome.say("Hello")
    welcome.hangup()
    webapp.twiml("/welcome", welcome)
    return posted


@pytest.mark.parametrize(
    ("persona", "expected", "sip"),
    [
        (Persona.answering([]), ["initiated", "ringing", "in-progress", "completed"], "200"),
        (Persona.busy(), ["initiated", "busy"], "486"),
        (Persona.no_answer(), ["initiated", "ringing", "no-answer"], "487"),
        (Persona.failing(), ["initiated", "failed"], "404"),
        (Persona.failing(sip_response_code=500), ["initiated", "failed"], "500"),
    ],
)
def test_status_callback_sequence(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    statuses: list[dict[str, str]],
    persona: Persona,
    expected: list[str],
    sip: str,
) -> None:
    network.set_persona(TO, persona)
    sid = twilio_client.calls.create(
        to=TO,
        from_=FROM,
        url=webapp.url("/welcome"),
        status_callback=webapp.url("/status"),
        status_callback_event=ALL_EVENTS,
        timeout=20,
    ).sid

    network.run_until_idle()

    assert [p["CallStatus"] for p in statuses] == expected
    assert [int(p["SequenceNumber"]) for p in statuses] == list(range(len(expected)))
    assert {p["CallbackSource"] for p in statuses} == {"call-progress-events"}
    assert {(p["CallSid"], p["AccountSid"], p["To"], p["From"]) for p in statuses} == {
        (sid, ACCOUNT_SID, TO, FROM)
    }
    stamps = [parsedate_to_datetime(p["Timestamp"]) for p in statuses]
    assert stamps == sorted(stamps)
    assert stamps[0] == START
    final = statuses[-1]
    assert final["SipResponseCode"] == sip
    assert int(final["CallDuration"]) == network.call(sid).duration
    assert network.call(sid).status == expected[-1].replace("in-progress", "completed")
    if expected[-1] == "no-answer":
        # Rang for the whole Timeout, in simulated seconds.
        assert stamps[-1] - stamps[0] == timedelta(seconds=20)


def test_only_completed_by_default(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    network.set_persona(TO, Persona.answering([], ring_seconds=3))
    twilio_client.calls.create(
        to=TO, from_=FROM, url=webapp.url("/welcome"), status_callback=webapp.url("/status")
    )

    network.run_until_idle()

    (completed,) = statuses
    assert completed["CallStatus"] == "completed"
    assert completed["SequenceNumber"] == "0"
    assert int(completed["CallDuration"]) >= 1
    assert completed["Duration"] == "1"  # billed minutes


def test_space_separated_events_are_accepted(
    network: PhoneNetwork, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    import requests

    network.set_persona(TO, Persona.answering([]))
    requests.post(
        f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={
            "To": TO,
            "From": FROM,
            "Url": webapp.url("/welcome"),
            "StatusCallback": webapp.url("/status"),
            "StatusCallbackEvent": "answered completed",
        },
        auth=(ACCOUNT_SID, network.auth_token),
        timeout=5,
    ).raise_for_status()

    network.run_until_idle()

    assert [p["CallStatus"] for p in statuses] == ["in-progress", "completed"]


def _amd_app(webapp: TwimlApp, client: Client, on_machine: str) -> list[dict[str, str]]:
    verdicts: list[dict[str, str]] = []
    welcome = VoiceResponse()
    welcome.say(LONG_WELCOME)
    gather = welcome.gather(action="/answer", num_digits=1, timeout=5)
    gather.say("Press a key.")
    webapp.twiml("/welcome", welcome)
    voicemail = VoiceResponse()
    voicemail.say("Sorry we missed you. Goodbye.")
    voicemail.hangup()
    webapp.twiml("/voicemail", voicemail)

    @webapp.route("/amd")
    def amd(params: dict[str, str]) -> None:
        verdicts.append(params)
        if not params["AnsweredBy"].startswith("machine"):
            return
        call = client.calls(params["CallSid"])
        if on_machine == "redirect":
            call.update(url=webapp.url("/voicemail"), method="POST")
        elif on_machine == "twiml":
            call.update(twiml="<Response><Say>Inline goodbye.</Say><Hangup/></Response>")
        else:
            call.update(status="completed")

    return verdicts


def _dial_with_async_amd(client: Client, webapp: TwimlApp) -> str:
    return client.calls.create(
        to=TO,
        from_=FROM,
        url=webapp.url("/welcome"),
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=webapp.url("/amd"),
        async_amd_status_callback_method="POST",
    ).sid


@pytest.mark.parametrize(
    ("on_machine", "heard_last"),
    [("redirect", "Sorry we missed you. Goodbye."), ("twiml", "Inline goodbye.")],
)
def test_async_amd_machine_then_rest_redirect(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    on_machine: str,
    heard_last: str,
) -> None:
    verdicts = _amd_app(webapp, twilio_client, on_machine)
    network.set_persona(TO, Persona.machine(amd_seconds=4.0))

    sid = _dial_with_async_amd(twilio_client, webapp)
    network.run_until_idle()

    call = network.call(sid)
    # The Url was fetched at answer, before any verdict, so a person hears no silence.
    first = call.documents[0]
    assert first.at == call.answered_at
    assert "AnsweredBy" not in first.params
    (verdict,) = verdicts
    assert verdict["AnsweredBy"] == "machine_end_beep"
    assert verdict["MachineDetectionDuration"] == "4000"
    assert verdict["CallSid"] == sid
    # The welcome was cut off when the redirect arrived, 4 simulated seconds in.
    assert call.prompts[0].text == LONG_WELCOME
    assert call.prompts[0].interrupted is True
    assert call.heard == [LONG_WELCOME, heard_last]
    if on_machine == "redirect":
        assert call.documents[1].reason == "update"
        assert call.documents[1].params["AnsweredBy"] == "machine_end_beep"
    assert call.status == "completed"
    assert call.answered_by == "machine_end_beep"
    assert twilio_client.calls(sid).fetch().answered_by == "machine_end_beep"


def test_async_amd_machine_then_rest_hangup(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    verdicts = _amd_app(webapp, twilio_client, "hangup")
    network.set_persona(TO, Persona.machine(amd_seconds=4.0))

    sid = _dial_with_async_amd(twilio_client, webapp)
    network.run_until_idle()

    call = network.call(sid)
    assert [v["AnsweredBy"] for v in verdicts] == ["machine_end_beep"]
    assert call.status == "completed"
    assert call.heard == [LONG_WELCOME]
    assert call.prompts[0].interrupted is True
    assert (call.end_time - call.answered_at) == timedelta(seconds=4)
    assert call.duration == 4


def test_async_amd_human_keeps_going(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    verdicts = _amd_app(webapp, twilio_client, "hangup")
    webapp.handlers["/answer"] = lambda params: VoiceResponse()
    network.set_persona(TO, Persona.answering(["5"]))

    sid = _dial_with_async_amd(twilio_client, webapp)
    network.run_until_idle()

    call = network.call(sid)
    assert [v["AnsweredBy"] for v in verdicts] == ["human"]
    assert [d.reason for d in call.documents] == ["answer", "gather"]
    assert call.documents[1].params["AnsweredBy"] == "human"
    assert call.documents[1].params["Digits"] == "5"


@pytest.mark.parametrize(
    ("persona", "mode", "answered_by"),
    [
        (Persona.answering([]), "Enable", "human"),
        (Persona.machine(), "Enable", "machine_start"),
        (Persona.machine(), "DetectMessageEnd", "machine_end_beep"),
        (Persona.fax(), "Enable", "fax"),
    ],
)
def test_sync_amd_fetches_the_url_after_detection(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    statuses: list[dict[str, str]],
    persona: Persona,
    mode: str,
    answered_by: str,
) -> None:
    network.set_persona(TO, persona)
    sid = twilio_client.calls.create(
        to=TO,
        from_=FROM,
        url=webapp.url("/welcome"),
        machine_detection=mode,
        status_callback=webapp.url("/status"),
    ).sid

    network.run_until_idle()

    call = network.call(sid)
    first = call.documents[0]
    assert first.params["AnsweredBy"] == answered_by
    assert (first.at - call.answered_at).total_seconds() == persona.amd_seconds
    assert statuses[-1]["AnsweredBy"] == answered_by


def test_canceling_a_ringing_call_from_its_ringing_callback(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    def cancel_when_ringing(params: dict[str, str]) -> None:
        statuses.append(params)
        if params["CallStatus"] == "ringing":
            twilio_client.calls(params["CallSid"]).update(status="canceled")

    webapp.handlers["/status"] = cancel_when_ringing
    network.set_persona(TO, Persona.answering([]))
    sid = twilio_client.calls.create(
        to=TO,
        from_=FROM,
        url=webapp.url("/welcome"),
        status_callback=webapp.url("/status"),
        status_callback_event=ALL_EVENTS,
    ).sid

    network.run_until_idle()

    call = network.call(sid)
    assert [p["CallStatus"] for p in statuses] == ["initiated", "ringing", "canceled"]
    assert statuses[-1]["SipResponseCode"] == "487"
    assert call.documents == []
    assert call.answered_at is None
    assert call.duration == 0


def test_the_network_is_busy_until_the_final_callback_is_delivered(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    # The call counts as ended before its final status callback is posted: a driver
    # that stopped counting the call then would let run_until_idle (and anyone waiting
    # for a quiet network) go on while the web tier is still recording the end.
    record = webapp.handlers["/status"]

    def slow_to_record(params: dict[str, str]) -> None:
        if params["CallStatus"] == "completed":
            time.sleep(0.5)
        record(params)

    webapp.handlers["/status"] = slow_to_record
    network.set_persona(TO, Persona.answering([]))
    network.start_driver()
    twilio_client.calls.create(
        to=TO, from_=FROM, url=webapp.url("/welcome"), status_callback=webapp.url("/status")
    )

    network.run_until_idle(timeout=10)

    assert [p["CallStatus"] for p in statuses] == ["completed"]
