"""Whole calls: the simulator running a live TwiML app's documents with scripted callees."""

from __future__ import annotations

import io
import time
import wave

import pytest
import requests
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from phonesim import Comment, Persona, PhoneNetwork
from tests.phonesim.conftest import ACCOUNT_SID, FROM, START
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"
QUESTION = "How likely are you to recommend us, from zero to ten?"


def _dial(client: Client, webapp: TwimlApp, path: str, **options: object) -> str:
    return client.calls.create(to=TO, from_=FROM, url=webapp.url(path), **options).sid


def _say_what_was_pressed(webapp: TwimlApp, path: str) -> None:
    def answer(params: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        response.say(f"You pressed {params['Digits'] or 'nothing'}")
        response.hangup()
        return response

    webapp.handlers[path] = answer


def _question(action: str, num_digits: int = 1, **options: object) -> VoiceResponse:
    response = VoiceResponse()
    gather = Gather(action=action, num_digits=num_digits, timeout=5, **options)
    gather.say(QUESTION, voice="Polly.Joanna", language="en-US")
    response.append(gather)
    response.say("We did not get an answer.")
    return response


def test_gather_follows_a_relative_action_with_the_digits(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering(["7"]))
    webapp.twiml("/survey/start", _question("answer"))
    _say_what_was_pressed(webapp, "/survey/answer")

    sid = _dial(twilio_client, webapp, "/survey/start")
    network.run_until_idle()

    call = network.call(sid)
    assert [d.reason for d in call.documents] == ["answer", "gather"]
    action = call.documents[1]
    assert action.url == webapp.url("/survey/answer")
    assert action.method == "POST"
    assert action.params["Digits"] == "7"
    assert action.params["FinishedOnKey"] == ""
    assert action.params["CallStatus"] == "in-progress"
    assert call.heard == [QUESTION, "You pressed 7"]
    assert (call.prompts[0].voice, call.prompts[0].language) == ("Polly.Joanna", "en-US")
    assert call.prompts[0].interrupted is False
    assert call.keys_sent == "7"
    assert call.status == "completed"
    assert call.app_errors == []
    first = webapp.requests_to("/survey/start")[0].params
    assert {k: first[k] for k in ("CallSid", "AccountSid", "From", "To", "Direction")} == {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": FROM,
        "To": TO,
        "Direction": "outbound-api",
    }
    assert first["ApiVersion"] == "2010-04-01"
    assert "AnsweredBy" not in first


def test_a_key_pressed_during_the_prompt_stops_it(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering(["9"], barge_in_after=1.0))
    webapp.twiml("/start", _question("/answer"))
    _say_what_was_pressed(webapp, "/answer")

    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle()

    call = network.call(sid)
    assert call.prompts[0].text == QUESTION
    assert call.prompts[0].interrupted is True
    assert call.heard == [QUESTION, "You pressed 9"]
    gather_started = call.documents[0].at
    assert (call.key_presses[0].at - gather_started).total_seconds() == pytest.approx(1.0)


def _nps_app(webapp: TwimlApp, scores: dict[str, str]) -> None:
    """Asks 0-10 one key at a time, like the product: after a "1", listens for a "0"."""
    webapp.twiml("/nps", _question("/nps/first", action_on_empty_result=True))

    @webapp.route("/nps/first")
    def first(params: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        if params["Digits"] == "1":
            response.gather(
                action="/nps/second", num_digits=1, timeout=2, action_on_empty_result=True
            )
            return response
        scores[params["CallSid"]] = params["Digits"]
        response.redirect("/q2")
        return response

    @webapp.route("/nps/second")
    def second(params: dict[str, str]) -> VoiceResponse:
        scores[params["CallSid"]] = "10" if params["Digits"] == "0" else "1"
        response = VoiceResponse()
        response.redirect("/q2")
        return response

    webapp.twiml("/q2", _question("/q2/answer", action_on_empty_result=True))

    @webapp.route("/q2/answer")
    def q2(params: dict[str, str]) -> VoiceResponse:
        scores[params["CallSid"] + ":q2"] = params["Digits"]
        response = VoiceResponse()
        response.hangup()
        return response


@pytest.mark.parametrize(
    ("answers", "score", "second_gather"),
    [
        (["10", "2"], "10", {"Digits": "0", "FinishedOnKey": ""}),
        (["1", "2"], "1", {"Digits": "", "FinishedOnKey": ""}),
        (["1#", "2"], "1", {"Digits": "", "FinishedOnKey": "#"}),
        (["7", "2"], "7", None),
    ],
)
def test_typeahead_carries_keys_to_the_next_gather(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    answers: list[str],
    score: str,
    second_gather: dict[str, str] | None,
) -> None:
    scores: dict[str, str] = {}
    _nps_app(webapp, scores)
    network.set_persona(TO, Persona.answering(answers))

    sid = _dial(twilio_client, webapp, "/nps")
    network.run_until_idle()

    assert scores == {sid: score, f"{sid}:q2": "2"}
    seconds = network.call(sid).documents
    follow_ups = [d.params for d in seconds if d.url == webapp.url("/nps/second")]
    if second_gather is None:
        assert follow_ups == []
    else:
        (params,) = follow_ups
        assert {k: params[k] for k in ("Digits", "FinishedOnKey")} == second_gather
    assert network.call(sid).keys_sent == "".join(answers)


def test_numdigits_two_ends_at_the_finish_key(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering(["1#"]))
    webapp.twiml("/start", _question("/answer", num_digits=2))
    _say_what_was_pressed(webapp, "/answer")

    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle()

    action = network.call(sid).documents[1].params
    assert (action["Digits"], action["FinishedOnKey"]) == ("1", "#")


def test_keys_beyond_numdigits_stay_buffered(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering(["123"]))
    webapp.twiml("/start", _question("/more", num_digits=2))
    webapp.twiml("/more", _question("/answer", num_digits=5))
    _say_what_was_pressed(webapp, "/answer")

    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle()

    call = network.call(sid)
    assert [d.params.get("Digits") for d in call.documents] == [None, "12", "3"]
    # The typed-ahead "3" stopped the second question before it was heard.
    assert call.heard == [QUESTION, "You pressed 3"]


def test_silence_falls_through_to_the_next_verb(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.silent())
    webapp.twiml("/start", _question("/answer"))
    _say_what_was_pressed(webapp, "/answer")

    began = time.monotonic()
    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle()
    wall = time.monotonic() - began

    call = network.call(sid)
    assert [d.reason for d in call.documents] == ["answer"]
    assert call.heard == [QUESTION, "We did not get an answer."]
    assert call.status == "completed"
    # A 5 s Gather timeout, ringing and speech passed in simulated time only.
    assert call.duration >= 5
    assert wall < 1.0


def test_silence_with_action_on_empty_result_posts_empty_digits(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.silent())
    webapp.twiml("/start", _question("/answer", action_on_empty_result=True))
    _say_what_was_pressed(webapp, "/answer")

    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle()

    call = network.call(sid)
    assert [d.reason for d in call.documents] == ["answer", "gather"]
    assert call.documents[1].params["Digits"] == ""
    assert call.heard == [QUESTION, "You pressed nothing"]
    answered_at = call.answered_at
    assert (call.documents[1].at - answered_at).total_seconds() >= 5


def _comment_app(webapp: TwimlApp, transcripts: list[dict[str, str]]) -> None:
    response = VoiceResponse()
    response.say("Please tell us more after the beep.")
    response.record(
        action="/comment/done",
        max_length=30,
        timeout=3,
        finish_on_key="#*",
        transcribe=True,
        transcribe_callback="/comment/transcript",
    )
    response.say("We did not get a recording.")
    webapp.twiml("/comment", response)

    done = VoiceResponse()
    done.say("Thank you.")
    done.hangup()
    webapp.twiml("/comment/done", done)

    @webapp.route("/comment/transcript")
    def transcript(params: dict[str, str]) -> None:
        transcripts.append(params)


def test_record_posts_the_recording_and_the_transcription(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    transcripts: list[dict[str, str]] = []
    _comment_app(webapp, transcripts)
    network.set_persona(TO, Persona.answering([Comment("The wait was too long", seconds=6)]))

    sid = _dial(twilio_client, webapp, "/comment")
    network.run_until_idle()

    call = network.call(sid)
    assert [d.reason for d in call.documents] == ["answer", "record"]
    action = call.documents[1].params
    assert action["RecordingDuration"] == "6"
    assert action["RecordingSid"].startswith("RE")
    assert action["RecordingUrl"] == (
        f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{action['RecordingSid']}"
    )
    assert action["Digits"] == ""
    assert call.heard == ["Please tell us more after the beep.", "Thank you."]
    assert [p.kind for p in call.prompts] == ["say", "beep", "say"]

    (transcript,) = transcripts
    assert transcript["TranscriptionText"] == "The wait was too long"
    assert transcript["TranscriptionStatus"] == "completed"
    assert transcript["TranscriptionSid"].startswith("TR")
    assert transcript["RecordingSid"] == action["RecordingSid"]
    assert transcript["RecordingUrl"] == action["RecordingUrl"]
    assert (transcript["CallSid"], transcript["AccountSid"]) == (sid, ACCOUNT_SID)
    assert transcript["TranscriptionUrl"].endswith(transcript["TranscriptionSid"])

    audio = requests.get(action["RecordingUrl"], timeout=5)
    assert audio.status_code == 200
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getnframes() / wav.getframerate() == pytest.approx(6.0)


@pytest.mark.parametrize("persona", [Persona.silent(), Persona.answering(["#"])])
def test_an_empty_recording_skips_the_action(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, persona: Persona
) -> None:
    transcripts: list[dict[str, str]] = []
    _comment_app(webapp, transcripts)
    network.set_persona(TO, persona)

    sid = _dial(twilio_client, webapp, "/comment")
    network.run_until_idle()

    call = network.call(sid)
    assert [d.reason for d in call.documents] == ["answer"]
    assert call.heard == ["Please tell us more after the beep.", "We did not get a recording."]
    assert transcripts == []


def test_redirect_and_hangup(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering([]))
    first = VoiceResponse()
    first.say("one")
    first.redirect("two?step=2", method="GET")
    first.say("never heard")
    webapp.twiml("/flow/one", first)
    second = VoiceResponse()
    second.say("two")
    second.pause(length=3)
    second.hangup()
    second.say("never heard either")
    webapp.twiml("/flow/two", second)

    sid = _dial(twilio_client, webapp, "/flow/one")
    network.run_until_idle()

    call = network.call(sid)
    assert call.heard == ["one", "two"]
    redirect = call.documents[1]
    assert (redirect.reason, redirect.method) == ("redirect", "GET")
    assert redirect.url.startswith(webapp.url("/flow/two?step=2&"))
    (seen,) = webapp.requests_to("/flow/two")
    assert (seen.method, seen.params["step"], seen.params["CallSid"]) == ("GET", "2", sid)


def test_a_document_that_ends_without_hangup_ends_the_call(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering([]))
    response = VoiceResponse()
    response.say("Goodbye")
    webapp.twiml("/bye", response)

    sid = _dial(twilio_client, webapp, "/bye")
    network.run_until_idle()

    assert network.call(sid).status == "completed"
    assert network.call(sid).app_errors == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [("<html>oops</html>", 200, 12100), ("not xml", 200, 12100), ("<Response/>", 500, 11200)],
)
def test_a_broken_webhook_is_an_application_error(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    body: str,
    status: int,
    code: int,
) -> None:
    from flask import Response

    network.set_persona(TO, Persona.answering([]))
    webapp.handlers["/broken"] = lambda params: Response(body, status)

    sid = _dial(twilio_client, webapp, "/broken")
    network.run_until_idle()

    call = network.call(sid)
    assert [error.code for error in call.app_errors] == [code]
    assert call.heard == []
    assert [p.kind for p in call.prompts] == ["error"]
    assert call.status == "completed"


def test_unsigned_by_the_apps_token_is_rejected_and_recorded(
    clock: object, webapp: TwimlApp
) -> None:
    from core.telephony import RedirectingHttpClient
    from phonesim import SimClock

    with PhoneNetwork(ACCOUNT_SID, "another-token", clock=SimClock(START)) as network:
        network.set_persona(TO, Persona.answering([]))
        client = Client(
            ACCOUNT_SID, "another-token", http_client=RedirectingHttpClient(network.api_base)
        )
        webapp.twiml("/hello", VoiceResponse())
        sid = _dial(client, webapp, "/hello")
        network.run_until_idle()
        call = network.call(sid)

    assert [(e.code, e.url) for e in call.app_errors] == [(11200, webapp.url("/hello"))]
    assert call.documents[0].status == 403
    webapp.seen.clear()  # the rejected request is this test's point, not a failure


def test_a_persona_that_hangs_up(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    scores: dict[str, str] = {}
    _nps_app(webapp, scores)
    network.set_persona(TO, Persona.hangs_up_after(1, ["8"]))

    sid = _dial(twilio_client, webapp, "/nps")
    network.run_until_idle()

    call = network.call(sid)
    assert scores == {sid: "8"}
    assert call.status == "completed"
    assert call.prompts[-1].interrupted is True
    assert [d.reason for d in call.documents] == ["answer", "gather", "redirect"]


def test_opting_out_presses_star(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    scores: dict[str, str] = {}
    _nps_app(webapp, scores)
    network.set_persona(TO, Persona.opts_out(at_question=2, answers=["9"]))

    sid = _dial(twilio_client, webapp, "/nps")
    network.run_until_idle()

    assert scores == {sid: "9", f"{sid}:q2": "*"}


def test_invalid_first_then_valid(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    scores: dict[str, str] = {}
    _nps_app(webapp, scores)
    network.set_persona(TO, Persona.invalid_first(["3"], invalid="15"))

    sid = _dial(twilio_client, webapp, "/nps")
    network.run_until_idle()

    # "1" then "5" at the follow-up Gather: the app sees an out-of-range answer.
    follow_up = [d for d in network.call(sid).documents if d.url == webapp.url("/nps/second")]
    assert [d.params["Digits"] for d in follow_up] == ["5"]
    assert scores[f"{sid}:q2"] == "3"


def test_calls_interleave_on_one_clock(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/start", _question("/answer", action_on_empty_result=True))
    _say_what_was_pressed(webapp, "/answer")
    numbers = ["+15551230001", "+15551230002", "+15551230003"]
    for number, key in zip(numbers, "123", strict=True):
        network.set_persona(number, Persona.answering([key]))
    sids = [
        twilio_client.calls.create(to=n, from_=FROM, url=webapp.url("/start")).sid for n in numbers
    ]

    network.run_until_idle()

    calls = [network.call(sid) for sid in sids]
    assert [c.heard[-1] for c in calls] == ["You pressed 1", "You pressed 2", "You pressed 3"]
    # Simultaneous calls overlap in simulated time instead of running one after another.
    assert all(c.start_time == START for c in calls)
    assert max(c.end_time for c in calls) < START + (calls[0].end_time - START) * 2


def test_background_driver_runs_calls_as_they_arrive(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    network.set_persona(TO, Persona.answering(["4"]))
    webapp.twiml("/start", _question("/answer"))
    _say_what_was_pressed(webapp, "/answer")
    network.start_driver()

    sid = _dial(twilio_client, webapp, "/start")
    network.run_until_idle(timeout=5)

    assert network.call(sid).heard[-1] == "You pressed 4"
    assert twilio_client.calls(sid).fetch().date_updated > START
