"""dialer.attempts.record_lost: an attempt nobody can tell the end of (dialer.settlement)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import CallAttempt, RequestState
from dialer import attempts
from ivr import calls

AT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "answered", "expected"),
    [
        (RequestState.CALLING, False, RequestState.FAILED),
        (RequestState.IN_PROGRESS, True, RequestState.PARTIAL),
        (RequestState.IN_PROGRESS, False, RequestState.ABANDONED),
        (RequestState.COMPLETED, True, RequestState.COMPLETED),
        (RequestState.OPTED_OUT, False, RequestState.OPTED_OUT),
    ],
)
def test_a_lost_attempt_ends_its_request_like_a_hang_up(
    runtime, make_attempt, state, answered, expected
):
    made = make_attempt()
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, made.id)
        attempt.request.state, attempt.status = state, "in-progress"
        if answered:
            session.flush()
            call = calls.find_call(session, attempt.id, attempt.call_sid, runtime.catalog)
            calls.record_answer(session, call, call.definition.question("nps"), value=9)
        assert attempts.record_lost(session, attempt, AT)
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, made.id)
        assert (attempt.status, attempt.ended_at) == ("lost", AT)
        assert attempt.request.state is expected
        if expected is RequestState.FAILED:
            assert attempt.request.due_at is not None  # the dialer's follow-up decides


def test_a_lost_attempt_stays_lost_under_late_progress_callbacks(runtime, make_attempt):
    made = make_attempt()
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, made.id)
        assert attempts.record_lost(session, attempt, AT)
        assert not attempts.record_lost(session, attempt, AT)  # already ended
        session.flush()
        attempts.record_progress(
            session.connection(), attempt.id, attempt.call_sid,
            {"CallSid": attempt.call_sid, "CallStatus": "ringing"},
        )  # fmt: skip
        session.refresh(attempt)
        assert attempt.status == "lost"
        # Twilio's own final word still counts.
        ended = attempts.record_status(
            session.connection(), attempt.id, attempt.call_sid,
            {"CallSid": attempt.call_sid, "CallStatus": "busy"},
        )  # fmt: skip
        assert ended is not None and ended.request_id == attempt.request_id
        session.refresh(attempt)
        assert attempt.status == "busy"
