"""In-call surveys at the survey number's webhooks: a customer transferred in with a
token (in the URL, or as DTMF digits), matched by number, or unattributed; the
do-not-call list, second transfers, late call-ended events, expired and forged tokens,
and the callback after a hang-up. Twilio's side is signed posts (tests.ivr.conftest);
whole calls through the simulator are in tests/e2e/test_in_call.py.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from core import transfer_token
from core.config import DEFAULT_SURVEYS_DIR
from core.models import (
    Answer,
    Attribution,
    CallAttempt,
    Channel,
    OptOut,
    RequestState,
    SmsConversation,
    SurveyMode,
    SurveyRequest,
)
from core.survey import SurveyCatalog
from dialer import in_call
from dialer.dispatch import dial
from dialer.intake import CallEnded, accept_calls
from dialer.jobs import expire_transfers
from dialer.scheduling import CALL_QUEUE
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE_URL
from tests.ivr.conftest import Reply, SignedCall

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
CUSTOMER = "+14155550123"
SURVEY_NUMBER = "+15005550006"
INBOUND = f"{PUBLIC_BASE_URL}/ivr/inbound"


@pytest.fixture
def runtime(runtime, redis_url):
    runtime.settings = runtime.settings.with_overrides(
        redis_url=redis_url, survey_number=SURVEY_NUMBER
    )
    runtime.now = lambda: NOW
    return runtime


class Transfer(SignedCall):
    """The customer's inbound call to the survey number, as Twilio posts it."""

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.to,
            "To": SURVEY_NUMBER,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def arrive(self, query: str = "") -> Reply:
        return self.post(INBOUND + query, self.params(CallStatus="ringing"))

    def hang_up(self, duration: int = 20) -> Reply:
        return self.post(
            f"{INBOUND}/status", self.params(CallStatus="completed", CallDuration=str(duration))
        )

    def answer(self, reply: Reply, *keys: str) -> Reply:
        for digits in keys:
            reply = self.press(reply, digits)
        return reply


def transfer(client, caller: str = CUSTOMER, call_sid: str = "CA" + "a" * 32) -> Transfer:
    return Transfer(client, 0, call_sid, caller)


def support_call(runtime, mode=SurveyMode.IN_CALL, **fields):
    values = dict(
        phone=CUSTOMER,
        source_call_id="crm-1",
        ended_at=NOW - timedelta(seconds=20),
        agent="alice",
        queue="billing",
        team="north",
        mode=mode,
    )
    (result,) = accept_calls(runtime, [CallEnded(**(values | fields))])
    assert result.accepted, result
    return result


def request_of(runtime, request_id: int) -> SurveyRequest:
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        session.expunge(request)
        return request


def only_request(runtime) -> SurveyRequest:
    with runtime.db.session() as session:
        (request,) = session.scalars(select(SurveyRequest)).all()
        session.expunge(request)
        return request


def answers(runtime) -> list[tuple[str, int | None, str | None, str | None]]:
    with runtime.db.session() as session:
        rows = session.execute(
            select(Answer.question_key, Answer.value, Answer.agent, Answer.mode).order_by(Answer.id)
        )
        return [tuple(row) for row in rows]


def is_question(reply: Reply, key: str) -> bool:
    gather = reply.root.find("./Gather")
    return gather is not None and f"/questions/{key}" in gather.get("action", "")


def test_intake_issues_a_token_and_the_transfer_target(runtime):
    result = support_call(runtime)
    assert result.due_at is None
    assert result.transfer is not None
    token = result.transfer.token
    assert token.isdigit()
    assert transfer_token.read(runtime.settings.secret_key, token) == result.request_id
    assert result.transfer.url == f"{INBOUND}?token={token}"
    assert result.transfer.phone == SURVEY_NUMBER
    assert result.transfer.digits == f"{token}#"
    assert result.transfer.expires_at == NOW + timedelta(minutes=15)
    request = request_of(runtime, result.request_id)
    assert request.state is RequestState.AWAITING_TRANSFER
    assert request.mode is SurveyMode.IN_CALL
    assert request.due_at is None


def test_a_token_in_the_url_surveys_the_support_call_it_names(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    reply = call.arrive(f"?token={result.transfer.token}")
    assert reply.status == 200
    assert "staying on the line" in " ".join(reply.says())
    assert is_question(reply, "nps")
    reply = call.answer(reply, "9", "5")
    assert "Thank you for your feedback" in " ".join(reply.says())
    call.hang_up()

    request = request_of(runtime, result.request_id)
    assert request.state is RequestState.COMPLETED
    assert request.attribution is Attribution.TOKEN
    assert request.calls_placed == 0
    assert answers(runtime) == [("nps", 9, "alice", "in_call"), ("csat", 5, "alice", "in_call")]
    with runtime.db.session() as session:
        (attempt,) = session.scalars(select(CallAttempt)).all()
        assert (attempt.direction, attempt.status) == ("inbound", "completed")
        assert attempt.call_sid == call.call_sid


def test_a_token_sent_as_dtmf_digits_is_heard_before_the_survey(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    listening = call.arrive()
    gather = listening.root.find("./Gather")
    assert gather is not None and listening.says() == []  # silence while it listens
    assert gather.get("finishOnKey") == "#"
    assert gather.get("actionOnEmptyResult") == "true"
    reply = call.press(listening, result.transfer.token)
    assert is_question(reply, "nps")
    assert request_of(runtime, result.request_id).attribution is Attribution.TOKEN


def test_without_a_token_the_callers_number_finds_the_waiting_request(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    reply = call.press(call.arrive(), "")  # nothing heard while listening
    assert is_question(reply, "nps")
    call.answer(reply, "3", "2")
    request = request_of(runtime, result.request_id)
    assert request.attribution is Attribution.NUMBER
    assert [a[:3] for a in answers(runtime)] == [("nps", 3, "alice"), ("csat", 2, "alice")]


def test_a_callback_not_yet_placed_becomes_the_in_call_survey(runtime, client):
    """The platform sent its usual call-ended event and transferred the customer too:
    they are surveyed now and never called back."""
    result = support_call(runtime, mode=SurveyMode.CALLBACK)
    assert request_of(runtime, result.request_id).state is RequestState.SCHEDULED
    call = transfer(client)
    reply = call.press(call.arrive(), "")
    call.answer(reply, "10", "4")
    request = request_of(runtime, result.request_id)
    assert (request.mode, request.attribution) == (SurveyMode.IN_CALL, Attribution.NUMBER)
    assert request.state is RequestState.COMPLETED
    assert request.due_at is None
    assert dial(runtime, result.request_id, 1) == "skipped: request is completed"


def test_a_survey_still_to_be_texted_is_taken_by_the_customer_on_the_line(runtime, client):
    """The customer is transferred before their survey text went out: surveyed now, by
    voice, and never texted."""
    result = support_call(runtime, mode=SurveyMode.CALLBACK, channel=Channel.SMS)
    call = transfer(client)
    call.answer(call.press(call.arrive(), ""), "9", "5")
    request = request_of(runtime, result.request_id)
    assert (request.mode, request.channel) == (SurveyMode.IN_CALL, Channel.VOICE)
    assert request.state is RequestState.COMPLETED
    assert dial(runtime, result.request_id, 1) == "skipped: request is completed"


def test_a_customer_texted_a_survey_is_not_surveyed_again_unattributed(runtime, client):
    """Fatigue counts a texted survey like a call: an unknown transfer from that number
    within the fatigue days is thanked and released."""
    result = support_call(runtime, mode=SurveyMode.CALLBACK, channel=Channel.SMS)
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, result.request_id)
        request.state = RequestState.COMPLETED
        session.add(
            SmsConversation(
                request_id=request.id,
                phone=CUSTOMER,
                sender="+15005550006",
                survey_version_id=request.survey_version_id,
                language="en",
                expires_at=NOW,
                closed_at=NOW,
                created_at=NOW - timedelta(hours=1),
            )
        )
    call = transfer(client)
    reply = call.press(call.arrive(), "")
    assert reply.root.find("./Gather") is None  # a goodbye, no question
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(SurveyRequest.id))) == 1


def test_nothing_known_runs_the_survey_unattributed(runtime, client):
    call = transfer(client, caller="+14155550199")
    reply = call.press(call.arrive(), "")
    call.answer(reply, "8", "4")
    request = only_request(runtime)
    assert (request.mode, request.attribution) == (SurveyMode.IN_CALL, Attribution.NONE)
    assert request.agent is None and request.phone == "+14155550199"
    assert request.state is RequestState.COMPLETED
    assert answers(runtime) == [("nps", 8, None, "in_call"), ("csat", 4, None, "in_call")]


@pytest.mark.parametrize("caller", ["anonymous", "+266696687", "", "+1415555\x00"])
def test_a_withheld_or_unusable_caller_id_is_surveyed_unattributed(runtime, client, caller):
    call = transfer(client, caller=caller)
    reply = call.press(call.arrive(), "")
    assert is_question(reply, "nps")
    request = only_request(runtime)
    assert (request.phone, request.attribution) == ("", Attribution.NONE)


def test_a_late_call_ended_event_claims_the_unattributed_survey(runtime, client):
    call = transfer(client)
    reply = call.press(call.arrive(), "")
    call.answer(reply, "9", "4")
    placeholder = only_request(runtime)

    # The platform's event arrives a few seconds later, as a callback request.
    late = support_call(runtime, mode=SurveyMode.CALLBACK, ended_at=NOW - timedelta(seconds=5))
    assert late.request_id == placeholder.id
    assert late.due_at is None and "in-call survey" in late.detail
    request = only_request(runtime)
    assert (request.source_call_id, request.agent, request.team) == ("crm-1", "alice", "north")
    assert request.attribution is Attribution.LATE_EVENT
    assert request.call_ended_at == NOW - timedelta(seconds=5)
    assert request.state is RequestState.COMPLETED  # never called back
    assert answers(runtime) == [("nps", 9, "alice", "in_call"), ("csat", 4, "alice", "in_call")]


def test_an_event_outside_the_window_is_a_support_call_of_its_own(runtime, client):
    call = transfer(client)
    call.answer(call.press(call.arrive(), ""), "7")
    call.hang_up()
    placeholder = only_request(runtime)
    (other,) = accept_calls(
        runtime,
        [CallEnded(phone=CUSTOMER, source_call_id="crm-old", ended_at=NOW - timedelta(hours=2))],
    )
    assert other.request_id not in (None, placeholder.id)
    assert other.reason == "surveyed_recently"  # the in-call survey just now counts
    assert request_of(runtime, placeholder.id).attribution is Attribution.NONE


def test_a_number_on_the_do_not_call_list_is_thanked_and_released(runtime, client):
    result = support_call(runtime)
    with runtime.db.session() as session:
        session.add(OptOut(phone=CUSTOMER, source="api"))
    call = transfer(client)
    reply = call.arrive(f"?token={result.transfer.token}")
    assert reply.verbs() == ["Say", "Hangup"]
    assert reply.says() == ["Thank you for calling Acme Support. Goodbye."]
    request = request_of(runtime, result.request_id)
    assert (request.state, request.suppression_reason) == (RequestState.SUPPRESSED, "opted_out")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(CallAttempt.id))) == 0


def test_the_opt_out_key_works_as_in_a_callback(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    reply = call.press(call.arrive(f"?token={result.transfer.token}"), "*")
    assert "will not receive survey calls" in " ".join(reply.says())
    assert request_of(runtime, result.request_id).state is RequestState.OPTED_OUT
    with runtime.db.session() as session:
        assert session.scalar(select(OptOut.phone)) == CUSTOMER


def test_a_second_transfer_of_the_same_support_call_stores_one_set_of_answers(runtime, client):
    result = support_call(runtime)
    first = transfer(client)
    first.answer(first.arrive(f"?token={result.transfer.token}"), "9", "5")
    first.hang_up()
    # The platform transfers again (a retry, a second hop), replaying the token.
    second = transfer(client, call_sid="CA" + "b" * 32)
    reply = second.arrive(f"?token={result.transfer.token}")
    assert reply.says() == ["Thank you, we already have your answers. Goodbye."]
    assert len(answers(runtime)) == 2
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(SurveyRequest.id))) == 1


def test_the_same_webhook_delivered_twice_resumes_one_attempt(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    query = f"?token={result.transfer.token}"
    assert is_question(call.arrive(query), "nps")
    assert is_question(call.arrive(query), "nps")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(CallAttempt.id))) == 1
        assert session.scalar(select(func.count(SurveyRequest.id))) == 1


@pytest.mark.parametrize(
    "token",
    [
        "123456789",  # forged: a MAC that is not ours
        "0" * 9,
        "9" * 40,
        "12a45678901",
        "١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits: isdigit() but not ours
        "%00",
    ],
)
def test_a_forged_or_malformed_token_counts_as_none(runtime, client, token):
    call = transfer(client, caller="+14155550199")
    reply = call.arrive(f"?token={quote(token)}")
    assert reply.status == 200
    assert is_question(reply, "nps")
    assert only_request(runtime).attribution is Attribution.NONE


def test_an_expired_token_counts_as_none_and_the_request_expires(runtime, client):
    result = support_call(runtime)
    runtime.now = lambda: NOW + timedelta(minutes=16)
    call = transfer(client)
    reply = call.arrive(f"?token={result.transfer.token}")
    assert is_question(reply, "nps")
    with runtime.db.session() as session:
        attributions = set(session.scalars(select(SurveyRequest.attribution)))
    assert attributions == {None, Attribution.NONE}  # the waiting one was not taken
    assert in_call.expire_unclaimed(runtime) == 1
    request = request_of(runtime, result.request_id)
    assert (request.state, request.suppression_reason) == (RequestState.EXPIRED, "validity_expired")


def test_expire_transfers_is_a_job_of_its_own(runtime, monkeypatch):
    support_call(runtime)
    runtime.now = lambda: NOW + timedelta(hours=1)
    monkeypatch.setattr("dialer.jobs.worker_runtime", lambda: runtime)
    assert expire_transfers() == 1
    assert expire_transfers() == 0


def test_a_hang_up_before_the_first_answer_is_abandoned_and_not_called_back(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    call.arrive(f"?token={result.transfer.token}")
    call.hang_up(duration=4)
    request = request_of(runtime, result.request_id)
    assert (request.state, request.mode, request.due_at) == (
        RequestState.ABANDONED,
        SurveyMode.IN_CALL,
        None,
    )


@pytest.fixture
def callback_after_hang_up(runtime, tmp_path: Path):
    """The shipped survey, set to call back a customer who hung up unanswered."""
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    assert "[dialing]\n" in source
    shutil.copy(DEFAULT_SURVEYS_DIR / "post-call.toml", tmp_path / "post-call.toml")
    (tmp_path / "post-call.toml").write_text(
        source.replace("[dialing]\n", "[dialing]\ncallback_after_in_call_hangup = true\n")
    )
    runtime.catalog = SurveyCatalog.from_directory(tmp_path)
    return runtime


def test_a_survey_may_call_back_after_an_in_call_hang_up(callback_after_hang_up, client):
    runtime = callback_after_hang_up
    result = support_call(runtime)
    call = transfer(client)
    call.arrive(f"?token={result.transfer.token}")
    call.hang_up(duration=4)
    request = request_of(runtime, result.request_id)
    assert (request.state, request.mode) == (RequestState.SCHEDULED, SurveyMode.CALLBACK)
    assert request.due_at is not None and request.due_at >= NOW
    queue = runtime.queue(CALL_QUEUE)
    assert len(queue.scheduled_job_registry) + queue.count == 1


def test_an_unattributed_hang_up_is_never_called_back(callback_after_hang_up, client):
    runtime = callback_after_hang_up
    call = transfer(client)
    call.press(call.arrive(), "")
    call.hang_up(duration=4)
    request = only_request(runtime)
    assert (request.state, request.due_at) == (RequestState.ABANDONED, None)


def test_a_partial_in_call_survey_is_not_called_back(callback_after_hang_up, client):
    runtime = callback_after_hang_up
    result = support_call(runtime)
    call = transfer(client)
    call.answer(call.arrive(f"?token={result.transfer.token}"), "6")
    call.hang_up()
    assert request_of(runtime, result.request_id).state is RequestState.PARTIAL


def test_in_call_surveys_count_for_fatigue_but_not_for_the_call_cap(runtime, client):
    result = support_call(runtime)
    call = transfer(client)
    call.answer(call.arrive(f"?token={result.transfer.token}"), "9", "5")
    call.hang_up()
    (again,) = accept_calls(
        runtime, [CallEnded(phone=CUSTOMER, source_call_id="crm-2", ended_at=NOW)]
    )
    # Outside the match window the new call would be its own; within it, the survey
    # that just ran is not unattributed, so the rules decide: surveyed recently.
    assert again.reason == "surveyed_recently"


def test_the_listening_can_be_switched_off(runtime, client):
    runtime.settings = runtime.settings.with_overrides(in_call_listen_seconds=0)
    support_call(runtime)
    call = transfer(client)
    reply = call.arrive()
    assert is_question(reply, "nps")
    assert only_request(runtime).attribution is Attribution.NUMBER


def test_the_number_may_name_its_survey_and_an_unknown_one_falls_back(runtime, client):
    call = transfer(client, caller="+14155550199")
    reply = call.arrive("?survey=no-such-survey&listened=1")
    assert is_question(reply, "nps")
    assert only_request(runtime).survey_name == "post-call"


def test_an_unsigned_transfer_is_refused(runtime, client):
    call = transfer(client)
    reply = call.post(INBOUND, call.params(), signature="forged")
    assert reply.status == 403
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(SurveyRequest.id))) == 0


def test_transfers_are_counted_on_the_metrics_page(runtime, client):
    result = support_call(runtime)
    transfer(client).arrive(f"?token={result.transfer.token}")
    transfer(client, caller="+14155550199", call_sid="CA" + "c" * 32).arrive("?listened=1")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'aftercall_in_call_transfers_total{outcome="token"}' in text
    assert 'aftercall_in_call_transfers_total{outcome="none"}' in text


def test_a_status_callback_for_an_unknown_call_is_acknowledged(runtime, client):
    reply = transfer(client).hang_up()
    assert reply.status == 200 and reply.verbs() == []


def test_a_call_redirected_from_an_outbound_call_is_the_customer_s_by_its_to(runtime, client):
    """A contact center that called the customer and redirects that call here: Twilio
    posts the call's own parameters, with the customer as `To`."""
    result = support_call(runtime)
    call = transfer(client)
    params = call.params(CallStatus="in-progress", Direction="outbound-api")
    params.update(From=SURVEY_NUMBER, To=CUSTOMER)
    reply = call.post(f"{INBOUND}?listened=1", params)
    assert is_question(reply, "nps")
    assert request_of(runtime, result.request_id).attribution is Attribution.NUMBER


def test_a_refused_in_call_request_reports_its_mode(runtime):
    with runtime.db.session() as session:
        session.add(OptOut(phone=CUSTOMER, source="api"))
    (result,) = accept_calls(
        runtime,
        [CallEnded(phone=CUSTOMER, source_call_id="crm-1", ended_at=NOW, mode=SurveyMode.IN_CALL)],
    )
    assert (result.reason, result.mode, result.transfer) == ("opted_out", SurveyMode.IN_CALL, None)


def test_a_callback_refused_for_calling_hours_is_surveyed_in_the_call(runtime, client):
    """The support call ended too late for a callback within the survey's validity (the
    rules stored it as suppressed), but the customer is on the line."""
    refused = support_call(runtime, mode=SurveyMode.CALLBACK)
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, refused.request_id)
        request.state, request.suppression_reason = RequestState.SUPPRESSED, "no_calling_window"
        request.due_at = None
    call = transfer(client)
    call.answer(call.arrive("?listened=1"), "9", "5")
    request = request_of(runtime, refused.request_id)
    assert (request.state, request.mode, request.suppression_reason) == (
        RequestState.COMPLETED,
        SurveyMode.IN_CALL,
        None,
    )
    assert [a[:3] for a in answers(runtime)] == [("nps", 9, "alice"), ("csat", 5, "alice")]


def test_a_support_call_the_rules_refused_is_not_surveyed_in_the_call(runtime, client):
    (refused,) = accept_calls(
        runtime,
        [CallEnded(phone=CUSTOMER, source_call_id="crm-1", ended_at=NOW, mode=SurveyMode.IN_CALL,
                   survey="post-call")],
    )  # fmt: skip
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, refused.request_id)
        request.state, request.suppression_reason = RequestState.SUPPRESSED, "not_sampled"
        request.transfer_expires_at = None
    reply = transfer(client).arrive("?listened=1")
    assert reply.says() == ["Thank you for calling Acme Support. Goodbye."]
    assert request_of(runtime, refused.request_id).state is RequestState.SUPPRESSED


def test_an_unattributed_transfer_within_the_fatigue_days_is_released(runtime, client):
    first = transfer(client, caller="+14155550199")
    first.answer(first.press(first.arrive(), ""), "9", "5")
    first.hang_up()
    runtime.now = lambda: NOW + timedelta(days=3)  # outside the window, inside 30 days
    second = transfer(client, caller="+14155550199", call_sid="CA" + "d" * 32)
    reply = second.arrive("?listened=1")
    assert reply.says() == ["Thank you for calling Acme Support. Goodbye."]
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(SurveyRequest.id))) == 1


def test_star_from_a_withheld_number_ends_the_survey_and_lists_nothing(runtime, client):
    call = transfer(client, caller="anonymous")
    reply = call.press(call.press(call.arrive(), ""), "*")
    assert "will not receive survey calls" in " ".join(reply.says())
    assert only_request(runtime).state is RequestState.OPTED_OUT
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(OptOut.id))) == 0


def test_the_token_s_own_number_on_the_do_not_call_list_is_released(runtime, client):
    """The caller ID is withheld (or the platform's own), but the support call the token
    names is of a number that opted out after intake."""
    result = support_call(runtime)
    with runtime.db.session() as session:
        session.add(OptOut(phone=CUSTOMER, source="api"))
    reply = transfer(client, caller="anonymous").arrive(f"?token={result.transfer.token}")
    assert reply.says() == ["Thank you for calling Acme Support. Goodbye."]
    assert request_of(runtime, result.request_id).state is RequestState.SUPPRESSED


def test_answers_stored_while_a_late_event_claimed_their_survey_are_realigned(runtime, client):
    """An answer webhook that read the request before the claim committed stores the
    unattributed fields; the realignment after intake's commit gives them the call's."""
    call = transfer(client)
    call.answer(call.press(call.arrive(), ""), "9")
    late = support_call(runtime, mode=SurveyMode.CALLBACK, ended_at=NOW - timedelta(seconds=5))
    with runtime.db.session() as session:  # as if the answer had raced the claim
        for answer in session.scalars(select(Answer)):
            answer.agent, answer.team = None, None
    in_call.realign_answers(runtime, late.request_id)
    assert [a[:3] for a in answers(runtime)] == [("nps", 9, "alice")]


def test_a_newer_refused_call_is_not_surveyed_as_an_older_waiting_one(runtime, client):
    """Alice's in-call request still waits (never transferred); ten minutes later Bob's
    call is refused (a survey already under way). The customer transferred after Bob's
    call is released, not surveyed about Alice's."""
    older = support_call(runtime, ended_at=NOW - timedelta(minutes=4))
    (refused,) = accept_calls(
        runtime,
        [CallEnded(phone=CUSTOMER, source_call_id="crm-2", ended_at=NOW - timedelta(seconds=10),
                   agent="bob", mode=SurveyMode.IN_CALL)],
    )  # fmt: skip
    assert refused.reason == "survey_under_way"
    reply = transfer(client).arrive("?listened=1")
    assert reply.says() == ["Thank you for calling Acme Support. Goodbye."]
    assert request_of(runtime, older.request_id).state is RequestState.AWAITING_TRANSFER
