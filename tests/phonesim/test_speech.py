"""Spoken answers: personas speaking at `<Gather input="speech">`, and what the simulator
posts to the app for them, as Twilio documents it (twilio.com/docs/voice/twiml/gather)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from phonesim import Comment, Persona, PhoneNetwork, SimCall, Speech
from phonesim.twiml import prompt_seconds
from tests.phonesim.conftest import FROM
from tests.phonesim.twiml_app import TwimlApp

TO = "+15551230001"
QUESTION = "Would you recommend us? Say yes or no, or press one or two."
NO_ANSWER = "We did not get an answer."
SPEECH_TIMEOUT = 2


def _question(
    action: str, *, input: str = "dtmf speech", timeout: int = 5, **options: object
) -> VoiceResponse:
    """One question, then a line the caller hears only if the Gather falls through."""
    response = VoiceResponse()
    if "speech" in input:
        options.setdefault("speech_timeout", SPEECH_TIMEOUT)
    gather = Gather(input=input, action=action, num_digits=1, timeout=timeout, **options)
    gather.say(QUESTION)
    response.append(gather)
    response.say(NO_ANSWER)
    return response


def _thank(webapp: TwimlApp, path: str) -> None:
    response = VoiceResponse()
    response.say("Thank you.")
    response.hangup()
    webapp.twiml(path, response)


def _call(
    network: PhoneNetwork, client: Client, webapp: TwimlApp, persona: Persona, path: str
) -> SimCall:
    network.set_persona(TO, persona)
    sid = client.calls.create(to=TO, from_=FROM, url=webapp.url(path)).sid
    network.run_until_idle()
    return network.call(sid)


def _action(webapp: TwimlApp, path: str) -> dict[str, str]:
    (seen,) = webapp.requests_to(path)
    return seen.params


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _question_seconds(call: SimCall) -> float:
    """How long the first question's prompt plays, uninterrupted."""
    return prompt_seconds(ET.fromstring(call.documents[0].xml).find("./Gather/Say"))


def test_a_spoken_answer_posts_speech_result_and_confidence_and_no_digits(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml(
        "/ask",
        _question(
            "/answer",
            language="es-MX",
            hints="sí, no, tal vez",
            speech_model="numbers_and_commands",
            enhanced=True,
            action_on_empty_result=True,
        ),
    )
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("sí", confidence=0.87, seconds=1.0)])

    call = _call(network, twilio_client, webapp, persona, "/ask")

    action = _action(webapp, "/answer")
    assert (action["SpeechResult"], action["Confidence"]) == ("sí", "0.87")
    assert "Digits" not in action and "FinishedOnKey" not in action
    assert action["CallSid"] == call.sid
    assert call.heard == [QUESTION, "Thank you."]
    assert call.prompts[0].interrupted is False
    assert call.said == ["sí"]
    (spoken,) = call.speech
    assert (spoken.confidence, spoken.seconds, spoken.recognised) == (0.87, 1.0, True)
    assert call.keys_sent == ""
    # The words ran for a second; `speechTimeout` seconds of silence later, Twilio posted.
    posted = call.documents[1]
    assert posted.reason == "gather"
    assert _seconds(posted.at, spoken.at) == pytest.approx(1.0 + SPEECH_TIMEOUT)
    (listening,) = call.listening
    assert listening.input == ("dtmf", "speech")
    assert (listening.language, listening.hints) == ("es-MX", ("sí", "no", "tal vez"))
    assert (listening.speech_model, listening.speech_timeout) == ("numbers_and_commands", "2")
    assert (listening.enhanced, listening.barge_in, listening.timeout) == (True, True, 5.0)
    assert network.journal.speech == call.speech
    assert network.journal.listening == call.listening
    assert call.app_errors == []


def test_keys_at_a_dtmf_speech_gather_post_digits_and_no_speech_result(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer"))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering(["1"]), "/ask")

    action = _action(webapp, "/answer")
    assert (action["Digits"], action["FinishedOnKey"]) == ("1", "")
    assert "SpeechResult" not in action and "Confidence" not in action
    assert call.speech == []


def test_confidence_is_left_out_when_the_recogniser_gives_none(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", input="speech"))
    _thank(webapp, "/answer")

    _call(network, twilio_client, webapp, Persona.answering([Speech("yes", None)]), "/ask")

    action = _action(webapp, "/answer")
    assert action["SpeechResult"] == "yes"
    assert "Confidence" not in action


@pytest.mark.parametrize(
    "speech", [Speech(""), Speech.unrecognised("mmh, hard to say")], ids=["empty", "unrecognised"]
)
def test_an_empty_result_is_no_input_and_falls_through(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, speech: Speech
) -> None:
    webapp.twiml("/ask", _question("/answer"))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([speech]), "/ask")

    assert webapp.requests_to("/answer") == []
    assert [d.reason for d in call.documents] == ["answer"]
    assert call.heard == [QUESTION, NO_ANSWER]
    assert call.said == [speech.text]
    assert call.speech[0].recognised is False
    # The caller did speak: the Gather ended after the words and speechTimeout, not
    # after `timeout`, and then fell through.
    fell_through = call.prompts[1].at
    assert _seconds(fell_through, call.speech[0].at) == pytest.approx(1.5 + SPEECH_TIMEOUT)


@pytest.mark.parametrize(
    "speech", [Speech(""), Speech.unrecognised()], ids=["empty", "unrecognised"]
)
def test_an_empty_result_with_action_on_empty_result_posts_neither_speech_nor_digits(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, speech: Speech
) -> None:
    webapp.twiml("/ask", _question("/answer", action_on_empty_result=True))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([speech]), "/ask")

    action = _action(webapp, "/answer")
    assert not {"SpeechResult", "Confidence", "Digits", "FinishedOnKey"} & set(action)
    assert call.heard == [QUESTION, "Thank you."]


def test_silence_at_a_speech_gather_with_action_on_empty_result_posts_no_input(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", action_on_empty_result=True))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.silent(), "/ask")

    action = _action(webapp, "/answer")
    assert not {"SpeechResult", "Confidence", "Digits"} & set(action)
    assert call.speech == []
    # Nobody spoke: Twilio waited `timeout` (5 s) after the prompt.
    waited = _seconds(call.documents[1].at, call.listening[0].at)
    assert waited == pytest.approx(_question_seconds(call) + 5)


def test_speech_at_a_keys_only_gather_is_silence(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", input="dtmf", action_on_empty_result=True))
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("yes")], barge_in_after=1.0)

    call = _call(network, twilio_client, webapp, persona, "/ask")

    action = _action(webapp, "/answer")
    assert (action["Digits"], action["FinishedOnKey"]) == ("", "")
    assert "SpeechResult" not in action
    # The customer said it over the question, which played on: nobody was listening.
    assert call.prompts[0].interrupted is False
    (spoken,) = call.speech
    assert (spoken.text, spoken.recognised) == ("yes", False)
    assert _seconds(spoken.at, call.listening[0].at) == pytest.approx(1.0)
    waited = _seconds(call.documents[1].at, call.listening[0].at)
    assert waited == pytest.approx(_question_seconds(call) + 5)
    assert call.keys_sent == ""


def test_speech_after_the_prompt_at_a_keys_only_gather_does_not_restart_its_timeout(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", input="dtmf", action_on_empty_result=True))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([Speech("yes")]), "/ask")

    # Spoken one second (think time) after the prompt; the 5 s timeout ran from the
    # prompt's end, so the Gather gave up four seconds after the words began.
    assert _seconds(call.documents[1].at, call.speech[0].at) == pytest.approx(4.0)
    assert call.speech[0].recognised is False


def test_keys_at_a_speech_only_gather_are_ignored_and_not_kept(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/next", input="speech", action_on_empty_result=True))
    webapp.twiml("/next", _question("/answer", input="dtmf"))
    _thank(webapp, "/answer")
    persona = Persona.answering(["7", "3"], barge_in_after=1.0)

    call = _call(network, twilio_client, webapp, persona, "/ask")

    first = _action(webapp, "/next")
    assert not {"SpeechResult", "Digits"} & set(first)
    assert call.prompts[0].interrupted is False  # keys do not stop a speech-only prompt
    # The "7" went nowhere; the next (keys-only) question got the persona's "3".
    assert _action(webapp, "/answer")["Digits"] == "3"
    assert call.keys_sent == "73"


def test_speech_barges_in_on_the_prompt(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer"))
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("yes", seconds=1.0)], barge_in_after=1.0)

    call = _call(network, twilio_client, webapp, persona, "/ask")

    assert call.prompts[0].interrupted is True
    (spoken,) = call.speech
    assert _seconds(spoken.at, call.listening[0].at) == pytest.approx(1.0)
    assert _seconds(call.documents[1].at, spoken.at) == pytest.approx(1.0 + SPEECH_TIMEOUT)
    assert _action(webapp, "/answer")["SpeechResult"] == "yes"


def test_barge_in_false_lets_the_prompt_finish_and_still_hears_the_words(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", barge_in=False))
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("yes", seconds=1.0)], barge_in_after=1.0)

    call = _call(network, twilio_client, webapp, persona, "/ask")

    assert call.prompts[0].interrupted is False
    assert call.listening[0].barge_in is False
    assert _action(webapp, "/answer")["SpeechResult"] == "yes"
    # The words and the silence after them ended before the prompt did (1 + 1 + 2 s);
    # Twilio posted when the prompt ended.
    prompt = _question_seconds(call)
    assert prompt > 1.0 + 1.0 + SPEECH_TIMEOUT
    assert _seconds(call.documents[1].at, call.listening[0].at) == pytest.approx(prompt)


def test_words_that_come_after_the_timeout_are_not_heard(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", timeout=2))
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("yes")], think_seconds=3.0)

    call = _call(network, twilio_client, webapp, persona, "/ask")

    assert webapp.requests_to("/answer") == []
    assert call.heard == [QUESTION, NO_ANSWER]
    assert call.speech[0].recognised is False


def test_speech_timeout_auto_ends_at_the_first_pause(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", speech_timeout="auto"))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([Speech("yes")]), "/ask")

    wait = _seconds(call.documents[1].at, call.speech[0].at) - 1.5
    assert 0 < wait < SPEECH_TIMEOUT
    assert call.app_errors == []


@pytest.mark.parametrize(
    ("options", "code", "after_words"),
    [
        # Twilio does not take "auto" together with a speechModel (warning 13335).
        ({"speech_timeout": "auto", "speech_model": "phone_call"}, 13335, None),
        # Not a positive integer (warning 13327): the Gather waits `timeout` instead.
        ({"speech_timeout": "soon"}, 13327, 5.0),
    ],
)
def test_questionable_speech_timeouts_are_debugger_warnings(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    options: dict[str, str],
    code: int,
    after_words: float | None,
) -> None:
    webapp.twiml("/ask", _question("/answer", **options))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([Speech("yes")]), "/ask")

    assert [(e.code, e.url) for e in call.app_errors] == [(code, webapp.url("/ask"))]
    assert _action(webapp, "/answer")["SpeechResult"] == "yes"
    if after_words is not None:
        waited = _seconds(call.documents[1].at, call.speech[0].at) - 1.5
        assert waited == pytest.approx(after_words)


def test_speech_is_gathered_for_a_minute_at_most(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer", input="speech"))
    _thank(webapp, "/answer")
    persona = Persona.answering([Speech("and another thing", seconds=90)])

    call = _call(network, twilio_client, webapp, persona, "/ask")

    assert _seconds(call.documents[1].at, call.speech[0].at) == pytest.approx(60.0)
    assert _action(webapp, "/answer")["SpeechResult"] == "and another thing"


def test_keys_and_speech_mix_across_questions(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/q1", _question("/q2", input="dtmf"))
    webapp.twiml("/q2", _question("/q3", hints="yes, no"))
    webapp.twiml("/q3", _question("/q4", input="speech", language="en-GB"))
    webapp.twiml("/q4", _question("/done"))
    _thank(webapp, "/done")
    persona = Persona.answering(
        ["9", Speech("no", confidence=0.5), Speech("the wait", seconds=3), "2"]
    )

    call = _call(network, twilio_client, webapp, persona, "/q1")

    posted = [d.params for d in call.documents if d.reason == "gather"]
    assert [(p.get("Digits"), p.get("SpeechResult"), p.get("Confidence")) for p in posted] == [
        ("9", None, None),
        (None, "no", "0.5"),
        (None, "the wait", "0.9"),
        ("2", None, None),
    ]
    assert call.keys_sent == "92"
    assert call.said == ["no", "the wait"]
    assert [(w.input, w.language, w.hints) for w in call.listening] == [
        (("dtmf",), "en-US", ()),
        (("dtmf", "speech"), "en-US", ("yes", "no")),
        (("speech",), "en-GB", ()),
        (("dtmf", "speech"), "en-US", ()),
    ]


def test_speech_at_a_record_is_recorded_like_a_comment(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    response = VoiceResponse()
    response.say("Tell us more after the beep.")
    response.record(action="/recorded", timeout=3)
    webapp.twiml("/comment", response)
    _thank(webapp, "/recorded")
    persona = Persona.answering([Speech("It was fine", seconds=4)])

    call = _call(network, twilio_client, webapp, persona, "/comment")

    assert _action(webapp, "/recorded")["RecordingDuration"] == "4"
    assert call.recordings[0]["text"] == "It was fine"
    assert call.speech == []  # a recording, not an answer at a Gather


def test_a_comment_at_a_speech_gather_is_not_an_answer(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp
) -> None:
    webapp.twiml("/ask", _question("/answer"))
    _thank(webapp, "/answer")

    call = _call(network, twilio_client, webapp, Persona.answering([Comment("Fine")]), "/ask")

    assert call.heard == [QUESTION, NO_ANSWER]
    assert call.speech == []


@pytest.mark.parametrize("options", [{"confidence": 1.5}, {"confidence": -0.1}, {"seconds": 0}])
def test_speech_refuses_impossible_values(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Speech("yes", **options)  # type: ignore[arg-type]
