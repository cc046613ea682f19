"""Whole survey calls as the customer experiences them, and what the database holds."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import OptOut, RequestState
from phonesim import Comment, Persona

pytestmark = pytest.mark.e2e

GREETING = "Hello, this is Acme Support. To stop these calls, press star at any time."
THANKS = "Thank you for your feedback. Goodbye."


def answers(request) -> dict:
    return {a.question_key: a.value if a.value is not None else a for a in request.answers}


def no_errors(call) -> None:
    assert call.app_errors == [], call.app_errors


def test_promoter_answers_nps_ten_and_csat(campaign):
    campaign.network.set_persona("+14155550101", Persona.answering(["10", "5"]))
    request_id, call = campaign.survey("+14155550101")
    no_errors(call)
    assert call.heard[0].startswith(GREETING)
    assert "recommend" in call.heard[1]
    assert "satisfied" in call.heard[2]
    assert call.heard[-1] == THANKS
    assert call.keys_sent == "105"
    assert call.status == "completed"

    request = campaign.request(request_id)
    assert request.state is RequestState.COMPLETED
    assert answers(request) == {"nps": 10, "csat": 5}
    assert request.answers[0].keys == "10"
    (attempt,) = request.attempts
    assert attempt.call_sid == call.sid
    assert attempt.status == "completed"
    assert [e.status for e in attempt.events] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert attempt.answered_by == "human"
    assert attempt.duration_seconds == call.duration


def test_detractor_leaves_a_recorded_comment_with_transcript(campaign):
    campaign.network.set_persona(
        "+14155550102",
        Persona.answering(
            ["3", "2", Comment("The wait was far too long", seconds=6, finish_key="#")]
        ),
    )
    request_id, call = campaign.survey("+14155550102")
    no_errors(call)
    assert "improve" in call.heard[3]
    assert call.heard[-1] == THANKS
    request = campaign.request(request_id)
    assert request.state is RequestState.COMPLETED
    got = answers(request)
    assert (got["nps"], got["csat"]) == (3, 2)
    comment = got["improve"]
    assert comment.recording_url.startswith(campaign.network.api_base)
    assert comment.recording_seconds == 6
    assert comment.transcript == "The wait was far too long"


def test_nps_one_then_silence_is_one(campaign):
    campaign.network.set_persona("+14155550103", Persona.answering(["1", "4"]))
    request_id, call = campaign.survey("+14155550103")
    no_errors(call)
    got = answers(campaign.request(request_id))
    assert (got["nps"], got["csat"]) == (1, 4)


def test_invalid_keys_then_valid(campaign):
    campaign.network.set_persona("+14155550104", Persona.invalid_first(["8", "4"]))
    request_id, call = campaign.survey("+14155550104")
    no_errors(call)
    assert any("not a valid answer" in text for text in call.heard)
    assert answers(campaign.request(request_id)) == {"nps": 8, "csat": 4}
    assert campaign.request(request_id).state is RequestState.COMPLETED


def test_silence_skips_each_question_after_three_tries(campaign):
    campaign.network.set_persona("+14155550105", Persona.silent())
    request_id, call = campaign.survey("+14155550105")
    no_errors(call)
    assert sum("did not get an answer" in text for text in call.heard) == 4  # 2 per question
    assert call.heard.count("Let's move on.") == 2
    request = campaign.request(request_id)
    assert answers(request) == {}
    assert request.state is RequestState.ABANDONED


def test_hang_up_mid_survey_keeps_the_answers(campaign):
    campaign.network.set_persona("+14155550106", Persona.hangs_up_after(1, ["6", "5"]))
    request_id, call = campaign.survey("+14155550106")
    no_errors(call)
    assert THANKS not in call.heard
    request = campaign.request(request_id)
    assert answers(request) == {"nps": 6}
    assert request.state is RequestState.PARTIAL


def test_opt_out_with_star(campaign):
    campaign.network.set_persona("+14155550107", Persona.opts_out(at_question=2, answers=["9"]))
    request_id, call = campaign.survey("+14155550107")
    no_errors(call)
    assert "will not receive survey calls" in call.heard[-1]
    request = campaign.request(request_id)
    assert request.state is RequestState.OPTED_OUT
    assert answers(request) == {"nps": 9}
    with campaign.runtime.db.session() as session:
        assert session.scalars(select(OptOut.phone)).all() == ["+14155550107"]


def test_answering_machine_is_hung_up_on_after_detection(campaign):
    campaign.network.set_persona("+14155550108", Persona.machine())
    request_id, call = campaign.survey("+14155550108")
    no_errors(call)
    # Asynchronous detection: the greeting had started; the app then ended the call.
    assert call.answered_by == "machine_end_beep"
    assert THANKS not in call.heard
    request = campaign.request(request_id)
    assert request.state is RequestState.VOICEMAIL
    assert request.attempts[0].answered_by == "machine_end_beep"
    assert answers(request) == {}


def test_answering_machine_gets_a_message_when_the_survey_asks_for_it(campaign, tmp_path):
    from dataclasses import replace

    from core.survey import SurveyCatalog

    definition = replace(campaign.runtime.catalog.get("post-call"), leave_voicemail=True)
    campaign.runtime.catalog = SurveyCatalog({"post-call": definition})
    campaign.network.set_persona("+14155550109", Persona.machine())
    request_id, call = campaign.survey("+14155550109")
    no_errors(call)
    assert "To stop these calls, call" in call.heard[-1]
    assert "Acme Support" in call.heard[-1]
    assert campaign.request(request_id).state is RequestState.VOICEMAIL


@pytest.mark.parametrize(
    ("persona", "status", "state"),
    [
        (Persona.busy(), "busy", RequestState.BUSY),
        (Persona.no_answer(), "no-answer", RequestState.NO_ANSWER),
        (Persona.failing(), "failed", RequestState.FAILED),
    ],
)
def test_unreached_callers(campaign, persona, status, state):
    campaign.network.set_persona("+14155550110", persona)
    request_id, call = campaign.survey("+14155550110")
    assert call.status == status
    assert call.heard == []
    request = campaign.request(request_id)
    assert request.state is state
    assert request.attempts[0].status == status
    assert answers(request) == {}


def test_twilio_refusing_the_number_fails_the_attempt(campaign):
    campaign.network.block("+1415555")
    request_id, placed = campaign.place("+14155550111")
    assert placed.call_sid is None
    assert placed.error_code == 21215
    request = campaign.request(request_id)
    assert request.state is RequestState.FAILED
    assert request.attempts[0].error_code == "21215"


def test_spanish_caller_hears_spanish(campaign):
    campaign.network.set_persona("+14155550112", Persona.answering(["9", "5"]))
    _, call = campaign.survey("+14155550112", language="es")
    no_errors(call)
    assert call.heard[0].startswith("Hola, le llama Acme Support.")
    assert call.prompts[0].language == "es-US"
    assert call.heard[-1] == "Gracias por su opinión. Adiós."


def test_many_interleaved_calls_each_keep_their_own_answers(campaign):
    scripts = {f"+1415555020{i}": Persona.answering([str(i), str(1 + i % 5)]) for i in range(10)}
    for phone, persona in scripts.items():
        campaign.network.set_persona(phone, persona)
    placed = {phone: campaign.place(phone)[0] for phone in scripts}
    campaign.network.run_until_idle(timeout=60)
    for i, (_phone, request_id) in enumerate(placed.items()):
        got = answers(campaign.request(request_id))
        assert (got["nps"], got["csat"]) == (i, 1 + i % 5)
