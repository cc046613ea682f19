"""Incoming calls: a caller transferred to one of the account's numbers, answered by the
TwiML at the number's voice URL, through a live app and the real twilio SDK."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from phonesim import DEFAULT_NUMBERS, Persona, PhoneNetwork
from tests.phonesim.conftest import ACCOUNT_SID, START
from tests.phonesim.twiml_app import TwimlApp

SURVEY_NUMBER = DEFAULT_NUMBERS[0]
CUSTOMER = "+12125550142"  # a New York number: FromCountry US
WELCOME = "Thanks for holding. A short survey about your call."
QUESTION = "How likely are you to recommend us, from zero to ten?"
TOKEN_PROMPT = "Enter your survey code."


def _survey(webapp: TwimlApp, answers: dict[str, dict[str, str]]) -> None:
    """Welcome, then one question; the action records what it got and says goodbye."""
    start = VoiceResponse()
    start.say(WELCOME)
    gather = Gather(action="/inbound/answer", num_digits=1, timeout=5)
    gather.say(QUESTION)
    start.append(gather)
    start.say("We did not get an answer.")
    webapp.twiml("/inbound", start)

    @webapp.route("/inbound/answer")
    def answer(params: dict[str, str]) -> VoiceResponse:
        answers[params["CallSid"]] = params
        response = VoiceResponse()
        response.say(f"You pressed {params['Digits']}")
        response.hangup()
        return response


def _token_then_question(webapp: TwimlApp, seen: list[dict[str, str]]) -> None:
    """What a transfer with DTMF meets: a Gather for the code the platform sends (no
    numDigits: it ends on "#" or the timeout), then a question for the customer."""
    start = VoiceResponse()
    gather = Gather(action="/token", timeout=5, action_on_empty_result=True)
    gather.say(TOKEN_PROMPT)
    start.append(gather)
    webapp.twiml("/inbound", start)

    @webapp.route("/token")
    def token(params: dict[str, str]) -> VoiceResponse:
        seen.append(params)
        response = VoiceResponse()
        question = Gather(action="/answer", num_digits=1, timeout=5, action_on_empty_result=True)
        question.say(QUESTION)
        response.append(question)
        return response

    @webapp.route("/answer")
    def answer(params: dict[str, str]) -> VoiceResponse:
        seen.append(params)
        response = VoiceResponse()
        response.hangup()
        return response


@pytest.fixture
def statuses(webapp: TwimlApp) -> list[dict[str, str]]:
    posted: list[dict[str, str]] = []
    webapp.handlers["/status"] = lambda params: posted.append(params)
    return posted


def test_the_voice_url_is_requested_with_twilios_inbound_parameters(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    answers: dict[str, dict[str, str]] = {}
    _survey(webapp, answers)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))
    network.set_persona(CUSTOMER, Persona.answering(["9"]))

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER)
    assert (call.status, call.direction, call.start_time) == ("ringing", "inbound", START)
    network.run_until_idle()

    (first,) = webapp.requests_to("/inbound")
    assert first.method == "POST"
    assert first.params == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call.sid,
        "CallStatus": "ringing",
        "Called": SURVEY_NUMBER,
        "CalledCity": "",
        "CalledCountry": "US",
        "CalledState": "",
        "CalledZip": "",
        "Caller": CUSTOMER,
        "CallerCity": "",
        "CallerCountry": "US",
        "CallerState": "",
        "CallerZip": "",
        "Direction": "inbound",
        "From": CUSTOMER,
        "FromCity": "",
        "FromCountry": "US",
        "FromState": "",
        "FromZip": "",
        "To": SURVEY_NUMBER,
        "ToCity": "",
        "ToCountry": "US",
        "ToState": "",
        "ToZip": "",
    }
    # The TwiML answered the call: it was answered as the document came back.
    assert call.answered_at == call.documents[0].at == START
    action = answers[call.sid]
    assert (action["Digits"], action["CallStatus"], action["Direction"]) == (
        "9",
        "in-progress",
        "inbound",
    )
    assert call.heard == [WELCOME, QUESTION, "You pressed 9"]
    assert call.keys_sent == "9"
    assert call.status == "completed"
    assert call.app_errors == []


def test_a_get_voice_url_carries_the_parameters_in_its_query(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    _survey(webapp, {})
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"), voice_method="get")

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["3"]))
    network.run_until_idle()

    (first,) = webapp.requests_to("/inbound")
    assert (first.method, first.params["CallSid"], first.params["Direction"]) == (
        "GET",
        call.sid,
        "inbound",
    )
    query = parse_qs(urlsplit(call.documents[0].url).query)
    assert query["CallStatus"] == ["ringing"]


def test_the_persona_answers_every_question(network: PhoneNetwork, webapp: TwimlApp) -> None:
    seen: list[dict[str, str]] = []
    _token_then_question(webapp, seen)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["4", "7"]))
    network.run_until_idle()

    assert [params["Digits"] for params in seen] == ["4", "7"]
    assert call.keys_sent == "47"


def test_a_caller_is_a_person_whatever_its_persona_says_of_pickups(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    seen: list[dict[str, str]] = []
    _token_then_question(webapp, seen)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))
    network.set_persona(CUSTOMER, Persona.no_answer(answers=("4", "7")))

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER)
    network.run_until_idle()

    assert call.keys_sent == "47"
    assert call.persona.pickup == "human"


@pytest.mark.parametrize(
    ("send_digits", "token", "finished_on"),
    [("123#", "123", "#"), ("4567", "4567", ""), ("ww89#", "89", "#")],
)
def test_sent_digits_land_in_the_first_gather_and_the_persona_answers_the_next(
    network: PhoneNetwork, webapp: TwimlApp, send_digits: str, token: str, finished_on: str
) -> None:
    seen: list[dict[str, str]] = []
    _token_then_question(webapp, seen)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))
    # The persona's first answer goes to the first question it is asked: the second
    # Gather, after the platform's DTMF filled the first.
    persona = Persona.answering(["8", "5"])

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=persona, send_digits=send_digits)
    network.run_until_idle()

    code, answer = seen
    assert (code["Digits"], code["FinishedOnKey"]) == (token, finished_on)
    assert (answer["Digits"], answer["FinishedOnKey"]) == ("8", "")
    assert call.keys_sent == send_digits.replace("w", "") + "8"
    # The DTMF cut the code prompt short, once its pauses ("w": half a second) were over.
    pause = send_digits.count("w") * 0.5
    assert (call.key_presses[0].at - call.answered_at).total_seconds() == pause
    assert call.prompts[0].text == TOKEN_PROMPT
    assert call.prompts[0].interrupted is True
    if not finished_on:
        # Without "#" the Gather waited out its timeout after the last key.
        last_key = call.key_presses[len(token) - 1].at
        assert (call.documents[1].at - last_key).total_seconds() >= 5


def test_digits_sent_after_a_long_pause_wait_for_the_next_gather(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    seen: list[dict[str, str]] = []
    _token_then_question(webapp, seen)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))

    # Twelve "w": six seconds, longer than the first Gather's 5 s timeout.
    call = network.dial_in(
        CUSTOMER, SURVEY_NUMBER, persona=Persona.silent(), send_digits="1" + "w" * 12 + "2"
    )
    network.run_until_idle()

    assert [params["Digits"] for params in seen] == ["1", "2"]
    assert call.keys_sent == "12"


def test_the_url_query_reaches_the_app_and_is_signed(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    _survey(webapp, {})
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound?survey=nps"))

    call = network.dial_in(
        CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["6"]), url_query="?token=123"
    )
    network.run_until_idle()

    (first,) = webapp.requests_to("/inbound")
    assert (first.params["survey"], first.params["token"]) == ("nps", "123")
    assert call.url == webapp.url("/inbound?survey=nps&token=123")
    assert call.documents[0].url == call.url
    # The webapp fixture checks that the signature, computed over the whole URL, held.
    assert first.signed and first.signature_valid


def _hang_up_by(webapp: TwimlApp, how: str) -> Persona:
    """An app and a caller whose call ends `how`; returns the caller."""
    response = VoiceResponse()
    gather = Gather(action="/inbound/answer", num_digits=1, timeout=5)
    gather.say(QUESTION)
    response.append(gather)
    webapp.twiml("/inbound", response)
    goodbye = VoiceResponse()
    goodbye.say("Goodbye")
    if how == "hangup verb":
        goodbye.hangup()
        goodbye.say("never heard")
    webapp.twiml("/inbound/answer", goodbye)
    if how == "caller hangs up":
        return Persona.hangs_up_after(0)
    return Persona.answering(["2"])


@pytest.mark.parametrize("how", ["caller hangs up", "hangup verb", "document ends"])
def test_the_numbers_status_callback_hears_the_end(
    network: PhoneNetwork, webapp: TwimlApp, statuses: list[dict[str, str]], how: str
) -> None:
    persona = _hang_up_by(webapp, how)
    network.configure_number(
        SURVEY_NUMBER, voice_url=webapp.url("/inbound"), status_callback=webapp.url("/status")
    )

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=persona)
    network.run_until_idle()

    (completed,) = statuses  # only the completed event, as for a number's StatusCallback
    assert completed["CallStatus"] == "completed"
    assert (completed["CallSid"], completed["Direction"]) == (call.sid, "inbound")
    assert (completed["From"], completed["To"]) == (CUSTOMER, SURVEY_NUMBER)
    assert int(completed["CallDuration"]) == call.duration >= 1
    assert completed["Duration"] == "1"
    assert completed["SipResponseCode"] == "200"
    assert call.status == "completed"
    assert call.heard[-1] == (QUESTION if how == "caller hangs up" else "Goodbye")


def test_the_rest_api_shows_an_inbound_call(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    _survey(webapp, {})
    number = network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["1"]))
    ringing = twilio_client.calls(call.sid).fetch()
    network.run_until_idle()
    fetched = twilio_client.calls(call.sid).fetch()

    assert (ringing.status, ringing.direction) == ("ringing", "inbound")
    assert (fetched.status, fetched.direction) == ("completed", "inbound")
    assert (fetched._from, fetched.to) == (CUSTOMER, SURVEY_NUMBER)
    assert fetched.phone_number_sid == number.sid
    assert fetched.start_time == START
    assert int(fetched.duration) == call.duration
    assert [c.sid for c in twilio_client.calls.list(to=SURVEY_NUMBER)] == [call.sid]
    assert [c.sid for c in twilio_client.calls.list(from_=CUSTOMER)] == [call.sid]
    assert network.calls_to(SURVEY_NUMBER) == [call]
    assert network.calls_to(CUSTOMER) == []
    assert [entry.call_sid for entry in network.journal.documents] == [call.sid] * 2
    assert [exchange.status for exchange in call.rest] == [200, 200]


@pytest.mark.parametrize("update", ["redirect", "hangup"])
def test_rest_updates_change_an_inbound_calls_course(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, update: str
) -> None:
    _survey(webapp, {})
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))
    elsewhere = VoiceResponse()
    elsewhere.say("Redirected")
    webapp.twiml("/elsewhere", elsewhere)

    @webapp.route("/inbound/answer")
    def change_course(params: dict[str, str]) -> VoiceResponse:
        call = twilio_client.calls(params["CallSid"])
        if update == "redirect":
            call.update(url=webapp.url("/elsewhere"), method="POST")
        else:
            call.update(status="completed")
        response = VoiceResponse()
        response.say("You should not hear this")
        return response

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["5"]))
    network.run_until_idle()

    assert call.heard == [WELCOME, QUESTION, *(["Redirected"] if update == "redirect" else [])]
    assert call.status == "completed"
    assert [r.params.get("Status") for r in call.rest] == [
        None if update == "redirect" else "completed"
    ]
    fetched = twilio_client.calls(call.sid).fetch()
    assert (fetched.status, fetched.direction) == ("completed", "inbound")


@pytest.mark.parametrize("update", ["twiml", "cancel"])
def test_rest_updates_before_the_app_answered(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, update: str
) -> None:
    _survey(webapp, {})
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))
    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["5"]))

    if update == "twiml":
        twilio_client.calls(call.sid).update(twiml="<Response><Say>Inline</Say></Response>")
    else:
        twilio_client.calls(call.sid).update(status="completed")
    network.run_until_idle()

    assert webapp.requests_to("/inbound") == []
    if update == "twiml":
        assert (call.heard, call.status, call.answered_at) == (["Inline"], "completed", START)
    else:
        assert (call.heard, call.status, call.answered_at) == ([], "canceled", None)


def test_the_number_is_configured_through_the_sdk(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    _survey(webapp, {})
    (number,) = twilio_client.incoming_phone_numbers.list(phone_number=SURVEY_NUMBER)
    assert (number.voice_url, number.voice_method, number.status_callback) == (None, "POST", "")

    updated = twilio_client.incoming_phone_numbers(number.sid).update(
        voice_url=webapp.url("/inbound"),
        voice_method="GET",
        status_callback=webapp.url("/status"),
        status_callback_method="POST",
    )
    fetched = twilio_client.incoming_phone_numbers(number.sid).fetch()

    for shown in (updated, fetched):
        assert shown.voice_url == webapp.url("/inbound")
        assert shown.voice_method == "GET"
        assert shown.status_callback == webapp.url("/status")
        assert shown.status_callback_method == "POST"
        assert shown.date_updated == START
    # A partial update changes only the fields it names.
    twilio_client.incoming_phone_numbers(number.sid).update(voice_method="POST")
    assert twilio_client.incoming_phone_numbers(number.sid).fetch().voice_url == (
        webapp.url("/inbound")
    )

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["2"]))
    network.run_until_idle()

    assert webapp.requests_to("/inbound")[0].method == "POST"
    assert [p["CallSid"] for p in statuses] == [call.sid]
    update = network.journal.rest[1]
    assert (update.method, update.params["VoiceUrl"], update.status) == (
        "POST",
        webapp.url("/inbound"),
        200,
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"voice_url": "not a url"}, 21502),
        ({"voice_url": "ftp://example.test/voice"}, 21502),
        ({"status_callback": "example.test/status"}, 21502),
        ({"voice_method": "PUT"}, 20001),
        ({"status_callback_method": "DELETE"}, 20001),
    ],
)
def test_a_bad_number_update_is_a_400_and_changes_nothing(
    network: PhoneNetwork, twilio_client: Client, fields: dict[str, str], code: int
) -> None:
    sid = network.configure_number(SURVEY_NUMBER, voice_url="https://example.test/voice").sid

    with pytest.raises(TwilioRestException) as raised:
        twilio_client.incoming_phone_numbers(sid).update(**fields)

    assert (raised.value.status, raised.value.code) == (400, code)
    fetched = twilio_client.incoming_phone_numbers(sid).fetch()
    assert (fetched.voice_url, fetched.voice_method) == ("https://example.test/voice", "POST")


def test_updating_an_unknown_number_is_404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.incoming_phone_numbers("PN" + "0" * 32).update(voice_url="https://x.test/")

    assert (raised.value.status, raised.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("to", "options", "message"),
    [
        ("+14155550199", {}, "is not a number of account"),
        (DEFAULT_NUMBERS[1], {}, "has no voice URL"),
        ("+14155550123", {"voice": False}, "is not voice-capable"),
        (SURVEY_NUMBER, {"send_digits": "12x#"}, "may only hold"),
        (SURVEY_NUMBER, {"from_number": ""}, "needs a caller ID"),
    ],
)
def test_dialing_in_where_no_app_answers_is_refused(
    network: PhoneNetwork, to: str, options: dict[str, object], message: str
) -> None:
    network.configure_number(SURVEY_NUMBER, voice_url="https://example.test/voice")
    if options.pop("voice", True) is False:
        network.account.add_number(to, voice=False, voice_url="https://example.test/voice")
    from_number = options.pop("from_number", CUSTOMER)

    with pytest.raises(ValueError, match=message):
        network.dial_in(from_number, to, **options)  # type: ignore[arg-type]

    assert network.calls == []


@pytest.mark.parametrize(
    ("caller_id", "country"), [("anonymous", ""), ("Restricted", ""), ("+266696687", "LS")]
)
def test_withheld_caller_ids_pass_as_twilio_sends_them(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    statuses: list[dict[str, str]],
    caller_id: str,
    country: str,
) -> None:
    _survey(webapp, {})
    network.configure_number(
        SURVEY_NUMBER, voice_url=webapp.url("/inbound"), status_callback=webapp.url("/status")
    )
    network.set_persona(caller_id, Persona.answering(["7"]))

    call = network.dial_in(caller_id, SURVEY_NUMBER)
    network.run_until_idle()

    first = webapp.requests_to("/inbound")[0].params
    assert (first["From"], first["Caller"], first["FromCountry"]) == (caller_id, caller_id, country)
    assert statuses[0]["From"] == caller_id
    assert call.keys_sent == "7"
    assert twilio_client.calls(call.sid).fetch()._from == caller_id
    assert [c.sid for c in twilio_client.calls.list(from_=caller_id)] == [call.sid]


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), ("rejected", "no-answer")])
def test_a_first_reject_leaves_the_call_unanswered(
    network: PhoneNetwork,
    webapp: TwimlApp,
    statuses: list[dict[str, str]],
    reason: str,
    status: str,
) -> None:
    response = VoiceResponse()
    response.reject(reason=reason)
    response.say("never heard")
    webapp.twiml("/inbound", response)
    network.configure_number(
        SURVEY_NUMBER, voice_url=webapp.url("/inbound"), status_callback=webapp.url("/status")
    )

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.answering(["1"]))
    network.run_until_idle()

    assert call.status == status
    assert (call.answered_at, call.duration, call.heard) == (None, 0, [])
    assert [p["CallStatus"] for p in statuses] == [status]
    assert statuses[0]["CallDuration"] == "0"


def test_a_broken_voice_url_is_answered_with_the_error_message(
    network: PhoneNetwork, webapp: TwimlApp
) -> None:
    from flask import Response

    webapp.handlers["/inbound"] = lambda params: Response("oops", 500)
    network.configure_number(SURVEY_NUMBER, voice_url=webapp.url("/inbound"))

    call = network.dial_in(CUSTOMER, SURVEY_NUMBER, persona=Persona.silent())
    network.run_until_idle()

    assert [error.code for error in call.app_errors] == [11200]
    assert [prompt.kind for prompt in call.prompts] == ["error"]
    assert call.answered_at == START
    assert call.status == "completed"
