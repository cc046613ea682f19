"""Whole in-call surveys: a simulated customer transferred to the survey number, with the
real twilio SDK, the real app on a live server, and phonesim placing the inbound call.

Each path the survey number knows: the token in a <Redirect>'s URL, the token as DTMF
digits sent by a PSTN platform, the caller's number, a call-ended event that arrives
after the survey began, an unattributed caller, the do-not-call list, and a hang-up
before the first answer (with and without the survey's callback).
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.config import DEFAULT_SURVEYS_DIR
from core.models import (
    Answer,
    Attribution,
    CallAttempt,
    OptOut,
    RequestState,
    SurveyMode,
    SurveyRequest,
)
from core.survey import SurveyCatalog
from dialer import scheduling
from dialer.intake import CallEnded, accept_calls
from phonesim import Persona

pytestmark = pytest.mark.e2e

SURVEY_NUMBER = "+14155550100"  # owned by the simulated account
CUSTOMER = "+14155550123"


@pytest.fixture
def survey_number(campaign):
    """The account's survey number, wired as docs/in-call.md says."""
    base = campaign.runtime.settings.public_base_url
    campaign.network.configure_number(
        SURVEY_NUMBER,
        voice_url=f"{base}/ivr/inbound",
        status_callback=f"{base}/ivr/inbound/status",
    )
    campaign.runtime.settings = campaign.runtime.settings.with_overrides(
        survey_number=SURVEY_NUMBER
    )
    return campaign


def support_call_ended(campaign, mode=SurveyMode.IN_CALL, **fields):
    values = dict(
        phone=CUSTOMER,
        source_call_id="crm-1",
        ended_at=campaign.runtime.now() - timedelta(seconds=10),
        agent="alice",
        queue="billing",
        team="north",
        mode=mode,
    )
    (result,) = accept_calls(campaign.runtime, [CallEnded(**(values | fields))])
    assert result.accepted, result
    return result


def transfer(campaign, persona: Persona, caller: str = CUSTOMER, **how):
    call = campaign.network.dial_in(caller, SURVEY_NUMBER, persona=persona, **how)
    campaign.network.run_until_idle(timeout=30)
    return campaign.network.call(call.sid)


def the_request(campaign, request_id: int | None = None) -> SurveyRequest:
    with campaign.runtime.db.session() as session:
        if request_id is None:
            (request,) = session.scalars(select(SurveyRequest)).all()
        else:
            request = session.get(SurveyRequest, request_id)
        request.answers, request.attempts  # noqa: B018 - load before the session ends
        session.expunge_all()
        return request


def scores(request: SurveyRequest) -> dict[str, int | None]:
    return {answer.question_key: answer.value for answer in request.answers}


def test_token_in_a_redirect_url(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    call = transfer(
        campaign,
        Persona.answering(["9", "5"]),
        url_query=f"?token={result.transfer.token}",
    )
    assert call.status == "completed"
    assert any("staying on the line" in said for said in call.heard)
    request = the_request(campaign, result.request_id)
    assert request.state is RequestState.COMPLETED
    assert (request.mode, request.attribution) == (SurveyMode.IN_CALL, Attribution.TOKEN)
    assert scores(request) == {"nps": 9, "csat": 5}
    assert {answer.agent for answer in request.answers} == {"alice"}
    (attempt,) = request.attempts
    assert (attempt.direction, attempt.status, attempt.call_sid) == (
        "inbound",
        "completed",
        call.sid,
    )
    assert attempt.duration_seconds == call.duration  # the number's status callback came
    assert request.calls_placed == 0
    assert [c for c in campaign.network.calls if c.direction != "inbound"] == []


def test_token_sent_as_dtmf_digits(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    call = transfer(
        campaign, Persona.answering(["10", "4"]), send_digits=f"ww{result.transfer.digits}"
    )
    request = the_request(campaign, result.request_id)
    assert request.attribution is Attribution.TOKEN
    assert scores(request) == {"nps": 10, "csat": 4}
    assert call.status == "completed"


def test_number_match_without_a_token(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    transfer(campaign, Persona.answering(["7", "3"]))
    request = the_request(campaign, result.request_id)
    assert request.attribution is Attribution.NUMBER
    assert request.state is RequestState.COMPLETED
    assert scores(request) == {"nps": 7, "csat": 3}


def test_a_late_call_ended_event_claims_the_answers(survey_number):
    campaign = survey_number
    transfer(campaign, Persona.answering(["8", "4"]))
    placeholder = the_request(campaign)
    assert placeholder.attribution is Attribution.NONE and placeholder.agent is None

    late = support_call_ended(campaign, mode=SurveyMode.CALLBACK)  # the usual event, late
    assert late.request_id == placeholder.id and late.due_at is None
    request = the_request(campaign)
    assert (request.attribution, request.agent, request.source_call_id) == (
        Attribution.LATE_EVENT,
        "alice",
        "crm-1",
    )
    assert {answer.agent for answer in request.answers} == {"alice"}
    assert request.state is RequestState.COMPLETED  # and never called back


def test_an_unattributed_survey_keeps_its_answers(survey_number):
    campaign = survey_number
    transfer(campaign, Persona.answering(["3", "2", ""]), caller="anonymous")
    request = the_request(campaign)
    assert (request.attribution, request.phone, request.agent) == (Attribution.NONE, "", None)
    assert scores(request) == {"nps": 3, "csat": 2}
    assert request.state in (RequestState.COMPLETED, RequestState.PARTIAL)


def test_a_number_on_the_do_not_call_list_is_released(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    with campaign.runtime.db.session() as session:
        session.add(OptOut(phone=CUSTOMER, source="api"))
    call = transfer(
        campaign, Persona.answering(["9", "5"]), url_query=f"?token={result.transfer.token}"
    )
    assert call.heard == ["Thank you for calling Acme Support. Goodbye."]
    assert call.keys_sent == ""
    request = the_request(campaign, result.request_id)
    assert (request.state, request.suppression_reason) == (RequestState.SUPPRESSED, "opted_out")
    assert request.attempts == []


def test_a_hang_up_before_the_first_answer(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    transfer(campaign, Persona.hangs_up_after(0), url_query=f"?token={result.transfer.token}")
    request = the_request(campaign, result.request_id)
    assert (request.state, request.mode, request.due_at) == (
        RequestState.ABANDONED,
        SurveyMode.IN_CALL,
        None,
    )


def test_a_hang_up_falls_back_to_the_callback_when_the_survey_says_so(
    survey_number, tmp_path, dialer
):
    campaign = survey_number
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    shutil.copy(DEFAULT_SURVEYS_DIR / "post-call.toml", tmp_path / "post-call.toml")
    (tmp_path / "post-call.toml").write_text(
        source.replace("[dialing]\n", "[dialing]\ncallback_after_in_call_hangup = true\n")
    )
    campaign.runtime.catalog = SurveyCatalog.from_directory(tmp_path)
    result = support_call_ended(campaign)
    transfer(campaign, Persona.hangs_up_after(0), url_query=f"?token={result.transfer.token}")
    request = the_request(campaign, result.request_id)
    assert (request.state, request.mode) == (RequestState.SCHEDULED, SurveyMode.CALLBACK)

    # The callback is an ordinary one: the dialer places it when due and it is answered.
    campaign.network.set_persona(CUSTOMER, Persona.answering(["6", "3", ""]))
    dialer.run_to_completion()
    request = the_request(campaign, result.request_id)
    directions = [attempt.direction for attempt in request.attempts]
    assert directions == ["inbound", "outbound"]
    assert scores(request)["nps"] == 6
    assert {answer.mode for answer in request.answers} == {"callback"}


def test_two_transfers_of_one_support_call_store_one_set_of_answers(survey_number):
    campaign = survey_number
    result = support_call_ended(campaign)
    query = f"?token={result.transfer.token}"
    transfer(campaign, Persona.answering(["9", "5"]), url_query=query)
    second = transfer(campaign, Persona.answering(["1", "1"]), url_query=query)
    assert second.heard == ["Thank you, we already have your answers. Goodbye."]
    with campaign.runtime.db.session() as session:
        assert session.scalar(select(func.count(Answer.id))) == 2
        assert session.scalar(select(func.count(CallAttempt.id))) == 1


def test_a_transfer_whose_end_is_never_posted_is_settled_from_twilio(campaign, dialer):
    """A customer redirected into the survey keeps the contact center's own status
    callback: aftercall asks Twilio's Calls API a few minutes after the transfer, and
    the survey's callback after a hang-up follows as if the callback had come."""
    base = campaign.runtime.settings.public_base_url
    campaign.network.configure_number(SURVEY_NUMBER, voice_url=f"{base}/ivr/inbound")
    result = support_call_ended(campaign)
    call = transfer(
        campaign, Persona.hangs_up_after(1, ["8"]), url_query=f"?token={result.transfer.token}"
    )
    assert call.status == "completed"
    assert the_request(campaign, result.request_id).state is RequestState.IN_PROGRESS

    dialer.advance_to(dialer.now() + timedelta(minutes=4))
    scheduling.reconcile(campaign.runtime)
    request = the_request(campaign, result.request_id)
    assert request.state is RequestState.PARTIAL
    (attempt,) = request.attempts
    assert (attempt.status, attempt.duration_seconds) == ("completed", call.duration)


def test_a_hang_up_learned_from_twilio_still_falls_back_to_the_callback(campaign, dialer, tmp_path):
    base = campaign.runtime.settings.public_base_url
    campaign.network.configure_number(SURVEY_NUMBER, voice_url=f"{base}/ivr/inbound")
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    (tmp_path / "post-call.toml").write_text(
        source.replace("[dialing]\n", "[dialing]\ncallback_after_in_call_hangup = true\n")
    )
    campaign.runtime.catalog = SurveyCatalog.from_directory(tmp_path)
    result = support_call_ended(campaign)
    transfer(campaign, Persona.hangs_up_after(0), url_query=f"?token={result.transfer.token}")

    dialer.advance_to(dialer.now() + timedelta(minutes=4))
    scheduling.reconcile(campaign.runtime)  # settles the attempt, queues its follow-up
    dialer.worker.work(burst=True)
    request = the_request(campaign, result.request_id)
    assert (request.state, request.mode) == (RequestState.SCHEDULED, SurveyMode.CALLBACK)
