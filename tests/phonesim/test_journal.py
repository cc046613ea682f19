"""The record of everything, updates racing a call's own webhooks, personas for strangers."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from phonesim import Persona, PersonaMix, PhoneNetwork, serve
from tests.phonesim.conftest import FROM
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"


def _survey(webapp: TwimlApp) -> None:
    start = VoiceResponse()
    gather = Gather(action="/answer", num_digits=1, timeout=5, action_on_empty_result=True)
    gather.say("Press a key from one to five.", language="es-MX", voice="Polly.Mia")
    start.append(gather)
    webapp.twiml("/start", start)

    @webapp.route("/answer")
    def answer(params: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        response.say("Thanks")
        response.hangup()
        return response


def test_everything_is_recorded_per_call_and_globally(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    _survey(webapp)
    webapp.handlers["/status"] = lambda params: None
    network.set_persona(TO, Persona.answering(["3"]))
    network.set_persona("+15551230002", Persona.answering(["5"]))
    sids = [
        twilio_client.calls.create(
            to=number, from_=FROM, url=webapp.url("/start"), status_callback=webapp.url("/status")
        ).sid
        for number in (TO, "+15551230002")
    ]

    network.run_until_idle()

    one, two = (network.call(sid) for sid in sids)
    document = ET.fromstring(one.documents[0].xml)
    assert document.find("./Gather").get("numDigits") == "1"
    assert document.find("./Gather/Say").text == "Press a key from one to five."
    assert [d.status for d in one.documents] == [200, 200]
    assert [(p.text, p.language, p.voice) for p in one.prompts] == [
        ("Press a key from one to five.", "es-MX", "Polly.Mia"),
        ("Thanks", "en-US", "man"),
    ]
    assert (one.keys_sent, two.keys_sent) == ("3", "5")
    assert [(c.kind, c.status) for c in one.callbacks] == [("status", 204)]
    assert [r.status for r in one.rest] == [201]
    journal = network.journal
    assert len(journal.documents) == 4
    assert sorted(k.key for k in journal.keys) == ["3", "5"]
    assert {c.call_sid for c in journal.callbacks} == set(sids)
    assert journal.app_errors == []
    assert [r.call_sid for r in journal.rest] == sids


def test_an_app_hanging_up_its_own_call_during_a_webhook(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    _survey(webapp)

    @webapp.route("/answer")
    def hang_up_now(params: dict[str, str]) -> VoiceResponse:
        twilio_client.calls(params["CallSid"]).update(status="completed")
        response = VoiceResponse()
        response.say("You should not hear this")
        return response

    network.set_persona(TO, Persona.answering(["2"]))
    sid = twilio_client.calls.create(to=TO, from_=FROM, url=webapp.url("/start")).sid

    network.run_until_idle()

    call = network.call(sid)
    assert call.status == "completed"
    assert call.heard == ["Press a key from one to five."]
    assert [r.params.get("Status") for r in call.rest] == [None, "completed"]


def test_numbers_without_a_persona_get_a_seeded_mix(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    _survey(webapp)
    numbers = [f"+1555123{n:04d}" for n in range(30)]
    for number in numbers:
        twilio_client.calls.create(to=number, from_=FROM, url=webapp.url("/start"))

    network.run_until_idle()

    statuses = {call.status for call in network.calls}
    assert statuses <= {"completed", "busy", "no-answer", "failed"}
    assert len(statuses) > 1
    assert all(call.app_errors == [] for call in network.calls)
    again = PersonaMix.default()
    assert [network.persona_for(n) for n in numbers] == [again.choose(7, n) for n in numbers]


def test_serve_runs_until_stopped() -> None:
    stop = threading.Event()
    runner = threading.Thread(target=serve, kwargs={"port": 0, "stop": stop}, daemon=True)
    runner.start()
    stop.set()
    runner.join(timeout=5)
    assert not runner.is_alive()
