"""Whole surveys answered by voice, in English, Spanish and Polish: simulated customers
speak at the survey's Gathers (phonesim posts SpeechResult and Confidence as Twilio
does), through the real app and the real twilio SDK; and the unhappy paths of speech: an
empty or unrecognised result, an unsure answer confirmed, an opt-out said aloud, an
answer on a keys-only survey."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.config import DEFAULT_SURVEYS_DIR
from core.models import OptOut, RequestState
from core.survey import SurveyCatalog
from phonesim import Comment, Persona, Speech

pytestmark = pytest.mark.e2e


def answers(request) -> dict:
    return {a.question_key: (a.value, a.input, a.transcript) for a in request.answers}


@pytest.mark.parametrize(
    ("language", "nps", "csat", "expected"),
    [
        ("en", "Nine out of ten", "very satisfied", (9, 5)),
        ("en", "I'd say a ten", "four", (10, 4)),
        ("es", "un nueve", "muy satisfecho", (9, 5)),
        ("es", "diez de diez", "satisfecha", (10, 4)),
        ("pl", "dziewięć", "bardzo zadowolony", (9, 5)),
        ("pl", "dziesięć na dziesięć", "cztery", (10, 4)),
    ],
)
def test_a_whole_survey_answered_by_voice(campaign, language, nps, csat, expected):
    phone = "+14155550161"
    campaign.network.set_persona(phone, Persona.answering([Speech(nps), Speech(csat, 0.88)]))
    request_id, call = campaign.survey(phone, language=language)
    assert call.app_errors == []
    assert call.said == [nps, csat]
    assert call.keys_sent == ""
    listening = call.listening[0]
    assert listening.language == {"en": "en-US", "es": "es-US", "pl": "pl-PL"}[language]
    assert "dtmf" in listening.input and "speech" in listening.input
    request = campaign.request(request_id)
    assert request.state is RequestState.COMPLETED
    assert answers(request) == {
        "nps": (expected[0], "speech", nps),
        "csat": (expected[1], "speech", csat),
    }
    assert [a.confidence for a in request.answers] == [pytest.approx(0.9), pytest.approx(0.88)]


def test_a_detractor_speaks_then_leaves_a_comment(campaign):
    phone = "+14155550162"
    campaign.network.set_persona(
        phone,
        Persona.answering(
            [Speech("three"), "2", Comment("Nobody called me back", seconds=5, finish_key="#")]
        ),
    )
    request_id, _ = campaign.survey(phone)
    request = campaign.request(request_id)
    assert request.state is RequestState.COMPLETED
    assert [(a.question_key, a.input) for a in request.answers] == [
        ("nps", "speech"), ("csat", "keys"), ("improve", None),
    ]  # fmt: skip


def test_an_unsure_answer_is_confirmed_by_voice(campaign):
    phone = "+14155550163"
    campaign.network.set_persona(
        phone, Persona.answering([Speech("nine", 0.45), Speech("yes"), Speech("five")])
    )
    request_id, call = campaign.survey(phone)
    assert "I heard 9. Is that right? Press 1 or say yes; press 2 or say no." in call.heard
    request = campaign.request(request_id)
    assert answers(request)["nps"] == (9, "speech", "nine")
    assert request.answers[0].confidence == pytest.approx(0.45)
    assert request.state is RequestState.COMPLETED


def test_a_misheard_answer_is_asked_again_and_keyed(campaign):
    phone = "+14155550164"
    campaign.network.set_persona(
        phone, Persona.answering([Speech("nine", 0.4), Speech("no"), "8", "4"])
    )
    request_id, call = campaign.survey(phone)
    assert "Sorry about that. Let's try again." in call.heard
    assert answers(campaign.request(request_id))["nps"] == (8, "keys", None)


@pytest.mark.parametrize(
    "unheard", [Speech(""), Speech.unrecognised()], ids=["empty result", "not recognised"]
)
def test_nothing_recognised_is_no_answer_and_asked_again(campaign, unheard):
    phone = "+14155550165"
    campaign.network.set_persona(phone, Persona.answering([unheard, Speech("seven"), "3"]))
    request_id, call = campaign.survey(phone)
    assert "Sorry, we did not get an answer." in call.heard
    assert answers(campaign.request(request_id))["nps"] == (7, "speech", "seven")


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("en", "stop calling me"), ("es", "no me llamen"), ("pl", "nie dzwońcie do mnie")],
)
def test_an_opt_out_said_aloud(campaign, language, phrase):
    phone = "+14155550166"
    campaign.network.set_persona(phone, Persona.answering([Speech(phrase)]))
    request_id, _ = campaign.survey(phone, language=language)
    assert campaign.request(request_id).state is RequestState.OPTED_OUT
    with campaign.runtime.db.session() as session:
        assert session.scalar(select(OptOut.source).where(OptOut.phone == phone)) == "speech"


def test_a_keys_only_survey_hears_no_speech(campaign, tmp_path):
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    (tmp_path / "post-call.toml").write_text(source.replace(
        'leave_voicemail = false\n', 'leave_voicemail = false\nkeys_only = true\n'
    ))  # fmt: skip
    campaign.runtime.catalog = SurveyCatalog.from_directory(tmp_path)
    phone = "+14155550167"
    campaign.network.set_persona(phone, Persona.answering([Speech("nine"), "9", "5"]))
    request_id, call = campaign.survey(phone)
    assert all(listening.input == ("dtmf",) for listening in call.listening)
    assert answers(campaign.request(request_id))["nps"] == (9, "keys", None)
