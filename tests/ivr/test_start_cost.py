"""What the start webhook costs the database, and that its one statement keeps every rule.

The moment a person picks up, the start webhook's reply is what they wait for. On
PostgreSQL a request whose survey version is pinned (intake pins it) is read and started
in one statement (ivr.calls.start_call) instead of a transaction of three; these tests pin
that, and that the statement writes exactly what the transaction would, or nothing.
"""

from __future__ import annotations

from sqlalchemy import select, update

from core import survey_versions
from core.models import CallAttempt, RequestState, SurveyRequest
from tests.ivr.test_answer_cost import sql_statements


def _attempt_and_request(runtime, attempt_id: int) -> tuple[CallAttempt, SurveyRequest]:
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        session.expunge(attempt)
        request = session.get(SurveyRequest, attempt.request_id)
        session.expunge(request)
    return attempt, request


def _postgres(runtime) -> bool:
    return runtime.db.engine.dialect.name == "postgresql"


def test_a_pinned_call_starts_in_one_statement_on_postgresql(call, runtime):
    warm = call(pinned=True)  # this process meets the survey version
    warm.start()
    c = call(pinned=True)
    with sql_statements(runtime) as statements:
        reply = c.start(AnsweredBy="human")
    assert reply.root.find("./Gather").get("action").startswith(f"{c.base}/questions/nps?")
    if _postgres(runtime):
        assert len(statements) == 1, statements
        assert statements[0].startswith("autocommit: WITH the_call AS (SELECT")
        assert "UPDATE call_attempts SET" in statements[0]
        assert "UPDATE survey_requests SET state" in statements[0]
    else:
        # SQLite has no UPDATE in a CTE: the call read, then started, in a transaction.
        assert statements[0].startswith("SELECT call_attempts.call_sid")
        assert not any(statement.startswith("autocommit") for statement in statements)
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.status == "in-progress"
    assert attempt.answered_at is not None
    assert attempt.answered_by == "human"  # Twilio's verdict, kept
    assert request.state is RequestState.IN_PROGRESS


def test_a_start_before_the_dialer_stored_the_call_sid_claims_it(call, runtime):
    c = call(pinned=True)
    with runtime.db.session() as session:
        session.execute(
            update(CallAttempt).where(CallAttempt.id == c.attempt_id).values(call_sid=None)
        )
    reply = c.start()
    assert reply.root.find("./Gather") is not None
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.call_sid == c.call_sid
    assert attempt.status == "in-progress"
    assert request.state is RequestState.IN_PROGRESS


def test_a_start_with_another_calls_sid_is_refused_and_writes_nothing(call, runtime):
    c = call(pinned=True)
    reply = c.post(f"{c.base}/start", c.params(CallSid="CA" + "f" * 32))
    assert reply.status == 200
    assert reply.verbs() == ["Say", "Hangup"]  # the polite goodbye, no survey
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.call_sid == c.call_sid
    assert (attempt.status, attempt.answered_at) == ("queued", None)
    assert request.state is RequestState.CALLING


def test_a_start_for_no_such_attempt_gets_the_goodbye(call, runtime):
    c = call(pinned=True)
    reply = c.post(f"{c.base.rsplit('/', 1)[0]}/{c.attempt_id + 1000}/start", c.params())
    assert reply.verbs() == ["Say", "Hangup"]
    assert _attempt_and_request(runtime, c.attempt_id)[0].status == "queued"


def test_an_unpinned_request_is_pinned_and_started_in_a_transaction(call, runtime):
    c = call()  # a request from before intake pinned versions
    with sql_statements(runtime) as statements:
        reply = c.start()
    assert reply.root.find("./Gather") is not None
    if _postgres(runtime):
        # The one statement found no pinned version and wrote nothing; then the
        # transaction that pins it (reading the catalog) and starts the call.
        assert statements[0].startswith("autocommit: WITH the_call AS")
        assert not any(s.startswith("autocommit") for s in statements[1:])
    assert any("SET survey_version_id" in statement for statement in statements)
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert request.survey_version_id is not None
    assert request.state is RequestState.IN_PROGRESS
    assert attempt.status == "in-progress"


def test_a_version_this_process_has_not_read_is_read_after_the_start(call, runtime, monkeypatch):
    c = call(pinned=True)
    with runtime.db.session() as session:
        version_id = session.scalar(
            select(SurveyRequest.survey_version_id)
            .join(CallAttempt)
            .where(CallAttempt.id == c.attempt_id)
        )
    # A web process that has not met this version yet (a new deployment's first call).
    for key in [key for key in survey_versions._DEFINITIONS if key[0] == version_id]:
        monkeypatch.delitem(survey_versions._DEFINITIONS, key)
    with sql_statements(runtime) as statements:
        reply = c.start()
    if _postgres(runtime):
        # Started in the one statement, then read again in a transaction, which reads
        # the version (and starting again changes nothing).
        assert statements[0].startswith("autocommit: WITH the_call AS")
        assert statements[1].startswith("SELECT call_attempts.call_sid")
        assert any(s.startswith("SELECT survey_versions.") for s in statements[2:]), statements
    assert reply.root.find("./Gather").get("action").startswith(f"{c.base}/questions/nps?")
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert (attempt.status, request.state) == ("in-progress", RequestState.IN_PROGRESS)


def test_a_redelivered_start_changes_nothing(call, runtime):
    c = call(pinned=True)
    first = c.start()
    answered_at = _attempt_and_request(runtime, c.attempt_id)[0].answered_at
    again = c.start()
    assert again.body == first.body
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.answered_at == answered_at
    assert request.state is RequestState.IN_PROGRESS


def test_a_start_after_the_call_ended_keeps_the_final_status(call, runtime):
    c = call(pinned=True)
    with runtime.db.session() as session:
        session.execute(
            update(CallAttempt).where(CallAttempt.id == c.attempt_id).values(status="completed")
        )
        session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id == _attempt_and_request(runtime, c.attempt_id)[1].id)
            .values(state=RequestState.ABANDONED)
        )
    c.start()
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.status == "completed"  # never backwards
    assert request.state is RequestState.ABANDONED  # only a request not yet reached moves


def test_a_machine_takes_the_transaction_that_leaves_the_message(call, runtime):
    c = call(pinned=True)
    with sql_statements(runtime) as statements:
        c.start(AnsweredBy="machine_end_beep")
    assert not any(statement.startswith("autocommit") for statement in statements)
    attempt, request = _attempt_and_request(runtime, c.attempt_id)
    assert attempt.answered_by == "machine_end_beep"
    assert request.state is RequestState.VOICEMAIL
