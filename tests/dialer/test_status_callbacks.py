"""Status callbacks of a call not yet over (initiated, ringing, in-progress): three of a
call's four, about half of the webhooks a survey call makes. What they write, what they
leave alone, and what they cost the database (pinned: a change that adds a query here
should fail and be a decision)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import Connection, insert, select, update

from core.models import CallAttempt, CallEvent, RequestState, SurveyRequest
from dialer import attempts
from dialer.status import take_status
from tests.ivr.test_answer_cost import sql_statements

T = TypeVar("T")


def _attempt(runtime, attempt_id: int) -> tuple[CallAttempt, list[CallEvent]]:
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        events = session.scalars(
            select(CallEvent).where(CallEvent.attempt_id == attempt_id).order_by(CallEvent.id)
        ).all()
        session.expunge_all()
    return attempt, list(events)


def test_a_progress_callback_is_one_statement_on_postgresql(call, runtime):
    c = call()
    with sql_statements(runtime) as statements:
        reply = c.status("ringing", 1, Timestamp="Mon, 23 Nov 2026 10:05:01 +0000")
    assert reply.status == 200 and reply.verbs() == []
    if runtime.db.engine.dialect.name == "postgresql":
        # The event's INSERT in a CTE, the attempt's UPDATE after it; no transaction.
        assert len(statements) == 1, statements
        assert statements[0].startswith("autocommit: WITH recorded AS (INSERT INTO call_events")
        assert "ON CONFLICT" in statements[0] and "UPDATE call_attempts" in statements[0]
    else:
        # The event, then the attempt, in one transaction.
        assert [s.split()[:3] for s in statements] == [
            ["INSERT", "INTO", "call_events"],
            ["UPDATE", "call_attempts", "SET"],
        ]
    attempt, events = _attempt(runtime, c.attempt_id)
    assert attempt.status == "ringing"
    assert [(e.status, e.sequence_number) for e in events] == [("ringing", 1)]
    assert events[0].occurred_at.isoformat() == "2026-11-23T10:05:01+00:00"
    assert events[0].params["CallStatus"] == "ringing"


def test_the_final_callback_stays_one_transaction_with_the_requests_outcome(call, runtime):
    c = call()
    c.status("ringing", 1)
    with sql_statements(runtime) as statements:
        c.status("busy", 2, SipResponseCode="486")
    assert statements and not any(s.startswith("autocommit") for s in statements)
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, c.attempt_id)
        assert (attempt.status, attempt.request.state) == ("busy", RequestState.BUSY)


def test_a_repeated_progress_callback_changes_nothing(call, runtime):
    c = call()
    c.status("in-progress", 2, Timestamp="Mon, 23 Nov 2026 10:05:07 +0000")
    before, _ = _attempt(runtime, c.attempt_id)
    assert c.status("in-progress", 2, Timestamp="Mon, 23 Nov 2026 10:09:00 +0000").status == 200
    after, events = _attempt(runtime, c.attempt_id)
    assert [e.status for e in events] == ["in-progress"]
    assert after.answered_at == before.answered_at
    assert after.answered_at.isoformat() == "2026-11-23T10:05:07+00:00"


def test_a_late_progress_callback_never_moves_the_attempt_back(call, runtime):
    c = call()
    c.status("in-progress", 2)
    c.status("ringing", 1)
    c.status("initiated", 0, Timestamp="Mon, 23 Nov 2026 10:05:00 +0000")
    attempt, events = _attempt(runtime, c.attempt_id)
    assert attempt.status == "in-progress"
    assert sorted(e.status for e in events) == ["in-progress", "initiated", "ringing"]
    # History that came late is still history.
    assert attempt.started_at.isoformat() == "2026-11-23T10:05:00+00:00"


def test_a_progress_callback_for_another_calls_sid_writes_nothing(call, runtime):
    c, other = call(), call(phone="+14155550199")
    c.call_sid = other.call_sid  # signed, but not this attempt's call
    assert c.status("ringing", 1).status == 200
    attempt, events = _attempt(runtime, c.attempt_id)
    assert (attempt.status, events) == ("queued", [])
    assert _attempt(runtime, other.attempt_id)[1] == []


def test_a_progress_callback_for_an_unknown_attempt_writes_nothing(call, runtime):
    c = call()
    c.attempt_id += 1000
    assert c.status("ringing", 1).status == 200
    with runtime.db.session() as session:
        assert session.scalars(select(CallEvent)).all() == []


def test_a_progress_callback_before_the_dialer_stored_the_call_sid_claims_it(call, runtime):
    # Twilio can post "initiated" before the dialer has stored the CallSid that the
    # create-call response carried.
    c = call()
    with runtime.db.session() as session:
        session.execute(
            update(CallAttempt).where(CallAttempt.id == c.attempt_id).values(call_sid=None)
        )
    c.status("initiated", 0)
    attempt, events = _attempt(runtime, c.attempt_id)
    assert (attempt.call_sid, attempt.status) == (c.call_sid, "initiated")
    assert attempt.started_at is not None
    assert [e.status for e in events] == ["initiated"]


def test_answered_by_on_a_progress_callback_is_kept(call, runtime):
    c = call()
    c.status("in-progress", 2, AnsweredBy="human")
    assert _attempt(runtime, c.attempt_id)[0].answered_by == "human"
    c.status("ringing", 1)  # no AnsweredBy: the verdict stays
    assert _attempt(runtime, c.attempt_id)[0].answered_by == "human"


@pytest.mark.parametrize("status", ["", "ringing-ish", "in progress", "<b>"])
def test_an_unknown_status_is_ignored(call, runtime, status):
    c = call()
    assert c.status(status, 1).status == 200
    attempt, events = _attempt(runtime, c.attempt_id)
    assert (attempt.status, events) == ("queued", [])


def test_a_progress_callback_after_the_attempt_was_lost_leaves_it_lost(make_attempt, runtime):
    made = make_attempt()
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, made.id)
        assert attempts.record_lost(session, attempt, attempt.created_at)
    with runtime.db.single_statement() as connection:
        params = {"CallSid": made.call_sid, "CallStatus": "ringing"}
        assert attempts.record_progress(connection, made.id, made.call_sid, params)
    attempt, events = _attempt(runtime, made.id)
    assert attempt.status == "lost"
    assert [e.status for e in events] == ["ringing"]


def test_a_final_callback_for_an_earlier_attempt_leaves_the_request_alone(call, runtime):
    c = call()
    with runtime.db.session() as session:
        first = session.get(CallAttempt, c.attempt_id)
        session.add(CallAttempt(request_id=first.request_id, number=2, call_sid="CA" + "2" * 32))
    c.status("busy", 2, SipResponseCode="486")  # attempt 1's, late
    with runtime.db.session() as session:
        first = session.get(CallAttempt, c.attempt_id)
        assert first.status == "busy"
        assert first.request.state is RequestState.CALLING


def test_a_final_callback_waits_for_a_survey_finishing_at_the_same_moment(call, runtime):
    # The last answer's webhook has finished the survey but not yet committed when the
    # call's completed callback comes: the callback must see "completed", not overwrite
    # it with "partial" (the request's row is locked while the outcome is decided).
    if runtime.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite writes one transaction at a time anyway")
    c = call()
    c.start()
    with runtime.db.session() as session:
        request_id = session.get(CallAttempt, c.attempt_id).request_id
    finishing = _moving_uncommitted(runtime, request_id, RequestState.COMPLETED)
    ended = _final_callback_waiting_for(finishing, runtime, c.attempt_id, c.call_sid, "completed")
    assert ended is not None and ended.request_state is RequestState.COMPLETED
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, request_id).state is RequestState.COMPLETED


def test_a_late_final_callback_waits_for_the_dialer_claiming_the_next_attempt(
    make_attempt, runtime
):
    # Attempt 1 was taken for lost and its retry is being claimed (the request back to
    # calling, attempt 2 inserted, not yet committed) when attempt 1's own final status
    # comes after all: it must see attempt 2 and leave the request to it.
    if runtime.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite writes one transaction at a time anyway")
    made = make_attempt()
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, made.id)
        assert attempts.record_lost(session, attempt, attempt.created_at)
        attempt.request.state = RequestState.SCHEDULED
        request_id = attempt.request_id
    placing = _moving_uncommitted(runtime, request_id, RequestState.CALLING)
    placing.execute(insert(CallAttempt).values(request_id=request_id, number=2, status="queued"))
    ended = _final_callback_waiting_for(placing, runtime, made.id, made.call_sid, "busy")
    assert ended is not None and ended.request_state is RequestState.CALLING
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, request_id).state is RequestState.CALLING
        assert session.get(CallAttempt, made.id).status == "busy"


def _moving_uncommitted(runtime, request_id: int, state: RequestState) -> Connection:
    """A connection whose open transaction has moved the request to `state` (what
    another webhook or the dialer is doing at this moment), not yet committed."""
    other = runtime.db.engine.connect()
    other.begin()
    other.execute(update(SurveyRequest).where(SurveyRequest.id == request_id).values(state=state))
    return other


def _final_callback_waiting_for(
    other: Connection, runtime, attempt_id: int, call_sid: str, status: str
) -> attempts.AttemptEnded | None:
    """Apply a final status while `other`, a connection in a transaction that changed
    the attempt's request, has not committed: the callback must wait for it (the
    request's row lock), then decide on what it committed. Commits and closes `other`."""

    def final_callback() -> attempts.AttemptEnded | None:
        with runtime.db.session() as session:
            params = {"CallSid": call_sid, "CallStatus": status}
            return attempts.record_status(session.connection(), attempt_id, call_sid, params)

    return _waiting_for(other, final_callback)


def _waiting_for(other: Connection, work: Callable[[], T]) -> T:
    """Run `work` in a thread while `other`'s transaction holds the request's row: it
    must wait for it. Commits and closes `other`, then returns what `work` returned."""
    done: list[T] = []
    thread = threading.Thread(target=lambda: done.append(work()))
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the request's row
    other.commit()
    other.close()
    thread.join(10)
    assert not thread.is_alive()
    return done[0]


def _completed_survey(call):
    """A call whose customer answered every question: the request is completed."""
    c = call()
    reply = c.press(c.press(c.start(), "9"), "5")
    assert reply.verbs() == ["Say", "Hangup"]
    return c


def test_an_answered_calls_end_after_the_survey_is_one_statement_on_postgresql(call, runtime):
    c = _completed_survey(call)
    with sql_statements(runtime) as statements:
        c.status("completed", 3, CallDuration="40", SipResponseCode="200")
    if runtime.db.engine.dialect.name == "postgresql":
        # The request is settled: nothing the call's end changes, so no transaction and
        # no lock on it; the event and the attempt's end in one statement.
        assert len(statements) == 1, statements
        assert statements[0].startswith("autocommit: WITH recorded AS (INSERT INTO call_events")
        assert "survey_requests.state IN ('completed', 'opted_out')" in statements[0]
    else:
        assert not any(s.startswith("autocommit") for s in statements)
    attempt, events = _attempt(runtime, c.attempt_id)
    assert (attempt.status, attempt.duration_seconds, attempt.sip_response_code) == (
        "completed", 40, 200,
    )  # fmt: skip
    assert attempt.ended_at is not None
    assert [e.status for e in events] == ["completed"]
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, attempt.request_id).state is RequestState.COMPLETED

    # Delivered again: nothing changes (the one statement writes nothing, nor does the
    # transaction after it).
    c.status("completed", 3, CallDuration="99")
    again, events = _attempt(runtime, c.attempt_id)
    assert (again.duration_seconds, again.ended_at) == (40, attempt.ended_at)
    assert [e.status for e in events] == ["completed"]


def test_the_end_of_a_call_whose_customer_opted_out_is_one_statement(call, runtime):
    c = call()
    reply = c.press(c.start(), "*")
    assert reply.verbs() == ["Say", "Hangup"]
    with sql_statements(runtime) as statements:
        c.status("completed", 3, CallDuration="12")
    if runtime.db.engine.dialect.name == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("autocommit: "), statements
    attempt, _ = _attempt(runtime, c.attempt_id)
    assert attempt.status == "completed"
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, attempt.request_id).state is RequestState.OPTED_OUT


def test_a_hang_up_during_the_survey_is_decided_in_the_transaction(call, runtime):
    c = call()
    c.press(c.start(), "9")  # then the customer hangs up
    with sql_statements(runtime) as statements:
        c.status("completed", 3, CallDuration="20")
    if runtime.db.engine.dialect.name == "postgresql":
        # The request was in progress: the one statement wrote nothing, and the
        # transaction (the request locked, its outcome decided) took the callback.
        assert statements[0].startswith("autocommit: WITH recorded AS")
        assert statements[1:] and not any(s.startswith("autocommit") for s in statements[1:])
    attempt, events = _attempt(runtime, c.attempt_id)
    assert attempt.status == "completed"
    assert [e.status for e in events] == ["completed"]
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, attempt.request_id).state is RequestState.PARTIAL


def test_an_answered_calls_end_waits_for_a_survey_finishing_at_the_same_moment(call, runtime):
    # As test_a_final_callback_waits_for_a_survey_finishing_at_the_same_moment, through
    # the webhook's own path: the uncommitted finish is not "settled" to the one
    # statement, which writes nothing; the transaction waits for the request's row.
    if runtime.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite writes one transaction at a time anyway")
    c = call()
    c.press(c.start(), "9")
    with runtime.db.session() as session:
        request_id = session.get(CallAttempt, c.attempt_id).request_id
    finishing = _moving_uncommitted(runtime, request_id, RequestState.COMPLETED)
    params = {"CallSid": c.call_sid, "CallStatus": "completed", "CallDuration": "30"}
    _waiting_for(finishing, lambda: take_status(runtime, c.attempt_id, params))
    attempt, events = _attempt(runtime, c.attempt_id)
    assert attempt.status == "completed" and [e.status for e in events] == ["completed"]
    with runtime.db.session() as session:
        assert session.get(SurveyRequest, request_id).state is RequestState.COMPLETED
