"""Spoken answers at the survey's webhooks: the Gather that takes keys and speech, what
a SpeechResult stores, the confirmation of a low-confidence answer, opting out by voice,
bad SpeechResults, and a keys-only question. Twilio's side is signed posts
(tests.ivr.conftest); whole calls answered by voice are in tests/e2e/test_spoken_calls.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.config import DEFAULT_SURVEYS_DIR
from core.models import Answer, OptOut, RequestState, SurveyRequest
from core.survey import SurveyCatalog
from tests.ivr.conftest import Reply


def answers(runtime) -> list[tuple]:
    with runtime.db.session() as session:
        rows = session.execute(
            select(
                Answer.question_key, Answer.value, Answer.input, Answer.transcript,
                Answer.confidence, Answer.keys,
            ).order_by(Answer.id)
        )  # fmt: skip
        return [tuple(row) for row in rows]


def state(runtime) -> RequestState:
    with runtime.db.session() as session:
        return session.scalar(select(SurveyRequest.state))


def say(call, reply: Reply, text: str | None, confidence: str | None = "0.93") -> Reply:
    """Answer the Gather in `reply` by voice, as Twilio posts a recognised utterance."""
    gather = reply.root.find("./Gather")
    assert gather is not None, reply.body
    params = call.params()
    if text is not None:
        params["SpeechResult"] = text
    if confidence is not None:
        params["Confidence"] = confidence
    return call.post(gather.get("action"), params)


def asks(reply: Reply, key: str) -> bool:
    gather = reply.root.find("./Gather")
    return gather is not None and f"/questions/{key}?" in gather.get("action", "")


@pytest.mark.parametrize(
    ("language", "bcp47", "word"), [("en", "en-US", "ten"), ("es", "es-US", "diez"),
                                    ("pl", "pl-PL", "dziesięć")]
)  # fmt: skip
def test_a_scale_question_gathers_keys_and_speech_in_the_call_s_language(
    call, language, bcp47, word
):
    reply = call(language=language).start()
    gather = reply.root.find("./Gather")
    assert gather.get("input") == "dtmf speech"
    assert gather.get("language") == bcp47
    assert word in gather.get("hints").split(", ")
    assert gather.get("speechModel") == "numbers_and_commands"
    assert gather.get("speechTimeout").isdigit()  # "auto" is refused with a speechModel


def test_a_spoken_answer_is_stored_with_its_transcript_and_confidence(runtime, call):
    survey = call()
    reply = say(survey, survey.start(), "Nine out of ten.", "0.9312")
    assert asks(reply, "csat")
    reply = say(survey, reply, "very satisfied")
    assert "Thank you for your feedback" in " ".join(reply.says())
    assert answers(runtime) == [
        ("nps", 9, "speech", "Nine out of ten.", pytest.approx(0.9312), ""),
        ("csat", 5, "speech", "very satisfied", pytest.approx(0.93), ""),
    ]
    assert state(runtime) is RequestState.COMPLETED


def test_keys_and_speech_mix_in_one_survey(runtime, call):
    survey = call()
    reply = survey.press(survey.start(), "7")
    say(survey, reply, "four")
    assert [(key, value, how) for key, value, how, *_ in answers(runtime)] == [
        ("nps", 7, "keys"),
        ("csat", 4, "speech"),
    ]


def test_a_spoken_answer_without_confidence_is_taken(runtime, call):
    survey = call()
    say(survey, survey.start(), "ten", confidence=None)
    assert answers(runtime)[0][:3] == ("nps", 10, "speech")
    assert answers(runtime)[0][4] is None


@pytest.mark.parametrize(
    ("speech", "confidence", "phrase"),
    [
        ("", "0.9", "we did not get an answer"),
        ("   ", "0.9", "we did not get an answer"),
        ("eleven", "0.9", "not a valid answer"),
        ("seven or eight", "0.9", "not a valid answer"),
        ("pizza", "0.9", "not a valid answer"),
        ("nine", "0.05", "not a valid answer"),
        ("x" * 100_000, "0.9", "not a valid answer"),
        ("\U0001f600\u202e", "NaN", "not a valid answer"),
    ],
    ids=["empty", "blank", "out of range", "ambiguous", "nonsense", "too unsure", "huge",
         "emoji"],
)  # fmt: skip
def test_what_cannot_be_taken_is_asked_again_like_a_wrong_key(
    runtime, call, speech, confidence, phrase
):
    survey = call()
    reply = say(survey, survey.start(), speech, confidence)
    assert reply.status == 200
    assert phrase in " ".join(reply.says()).lower() or phrase in " ".join(reply.says())
    assert "press or say a number from 0 to 10" in " ".join(reply.says()).lower()
    assert asks(reply, "nps")
    assert answers(runtime) == []


def test_the_retry_limit_is_shared_by_keys_and_speech(runtime, call):
    survey = call()
    reply = say(survey, survey.start(), "pizza")
    reply = survey.press(reply, "")
    reply = say(survey, reply, "banana")  # the third and last try
    assert asks(reply, "csat")  # moved on
    assert answers(runtime) == []


def test_a_low_confidence_answer_is_confirmed_before_it_is_stored(runtime, call):
    survey = call()
    reply = say(survey, survey.start(), "nine", "0.45")
    assert answers(runtime) == []
    gather = reply.root.find("./Gather")
    assert "/questions/nps/confirm?" in gather.get("action")
    assert reply.says() == ["I heard 9. Is that right? Press 1 or say yes; press 2 or say no."]
    reply = say(survey, reply, "yes")
    assert asks(reply, "csat")
    assert answers(runtime) == [("nps", 9, "speech", "nine", pytest.approx(0.45), "")]


def test_a_confirmation_by_key_counts_too(runtime, call):
    survey = call()
    reply = survey.press(say(survey, survey.start(), "nine", "0.45"), "1")
    assert asks(reply, "csat")
    assert answers(runtime)[0][:3] == ("nps", 9, "speech")


@pytest.mark.parametrize("reply_with", [("speech", "no"), ("keys", "2"), ("speech", "hmm")])
def test_a_misheard_answer_is_asked_again(runtime, call, reply_with):
    survey = call()
    confirm = say(survey, survey.start(), "nine", "0.45")
    how, what = reply_with
    reply = say(survey, confirm, what) if how == "speech" else survey.press(confirm, what)
    assert asks(reply, "nps")
    assert "Let's try again" in " ".join(reply.says())
    assert answers(runtime) == []


def test_a_confirmation_url_naming_a_value_off_the_scale_ends_politely(runtime, call):
    survey = call()
    confirm = say(survey, survey.start(), "nine", "0.45")
    action = confirm.root.find("./Gather").get("action").replace("value=9", "value=42")
    reply = survey.post(action, survey.params(SpeechResult="yes", Confidence="0.9"))
    assert reply.status == 200 and "Hangup" in reply.verbs()
    assert answers(runtime) == []


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("en", "Please stop calling me"), ("es", "no me llamen más"), ("pl", "nie dzwońcie")],
)
def test_an_opt_out_phrase_opts_out_like_the_star_key(runtime, call, language, phrase):
    survey = call(language=language)
    reply = say(survey, survey.start(), phrase)
    assert reply.verbs() == ["Say", "Hangup"]
    assert state(runtime) is RequestState.OPTED_OUT
    with runtime.db.session() as session:
        assert session.scalar(select(OptOut.source)) == "speech"


def test_a_speech_answer_and_a_key_answer_racing_store_one_answer(runtime, call):
    survey = call()
    start = survey.start()
    spoken = say(survey, start, "nine")
    keyed = survey.press(start, "3")  # the same question, delivered after
    assert spoken.status == keyed.status == 200
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(Answer.id))) == 1
    assert answers(runtime)[0][:3] == ("nps", 9, "speech")


KEYS_ONLY_SURVEY = """
name = "keys-only"
keys_only = true
[[questions]]
key = "nps"
kind = "nps"
prompt.en = "Press a number from 0 to 10."
"""


@pytest.fixture
def keys_only(runtime, tmp_path):
    (tmp_path / "post-call.toml").write_text((DEFAULT_SURVEYS_DIR / "post-call.toml").read_text())
    (tmp_path / "keys-only.toml").write_text(KEYS_ONLY_SURVEY)
    runtime.catalog = SurveyCatalog.from_directory(tmp_path)
    return runtime


def test_a_keys_only_question_gathers_keys_and_ignores_speech(keys_only, call):
    survey = call(survey="keys-only")
    reply = survey.start()
    gather = reply.root.find("./Gather")
    assert gather.get("input") == "dtmf" and gather.get("hints") is None
    reply = say(survey, reply, "nine")
    assert "Please press a number from 0 to 10" in " ".join(reply.says())
    assert answers(keys_only) == []
