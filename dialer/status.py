"""A call's status callback as the dialer takes it: recorded on the attempt
(dialer.attempts), then, when it ended an attempt that reached nobody, handed to the
dialer's follow-up, which decides about a retry (dialer.dispatch.after_attempt).

The voice webhook (aftercall.web.voice) parses Twilio's form and calls `take_status()`;
it knows nothing of what a status means.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.exceptions import RedisError

from core.models import RequestState
from core.runtime import Runtime
from dialer import attempts, in_call
from dialer.scheduling import AFTER_ATTEMPT, CALL_QUEUE

log = logging.getLogger(__name__)


def take_status(runtime: Runtime, attempt_id: int, params: Mapping[str, str]) -> None:
    """Record one of Twilio's status callbacks for the attempt (safe to repeat)."""
    call_sid = params.get("CallSid", "")
    if attempts.is_progress(params.get("CallStatus", "")):
        with runtime.db.single_statement() as connection:
            attempts.record_progress(connection, attempt_id, call_sid, params)
        return
    if params.get("CallStatus") == "completed":
        # An answered call's end: its survey is usually done by now (completed, or opted
        # out), which leaves the dialer nothing to decide: one statement.
        with runtime.db.single_statement() as connection:
            if attempts.record_settled_end(connection, attempt_id, call_sid, params):
                return
    with runtime.db.session() as session:
        ended = attempts.record_status(session.connection(), attempt_id, call_sid, params)
    # A request done with (answered, opted out) leaves the dialer nothing to decide,
    # but for an in-call survey hung up unanswered, which its survey may call back.
    if ended is not None and not ended.request_state.is_final_for_survey:
        _hand_back(runtime, ended.request_id, attempt_id)
    elif ended is not None and ended.request_state is RequestState.ABANDONED:
        in_call.callback_after_hang_up(runtime, ended.request_id)


def _hand_back(runtime: Runtime, request_id: int, attempt_id: int) -> None:
    """The dialer decides about retries; Redis carries the work to it. If Redis is
    down, the dialer's reconciliation finds the ended attempt later."""
    try:
        runtime.queue(CALL_QUEUE).enqueue(
            AFTER_ATTEMPT, request_id, job_id=f"after-attempt-{attempt_id}"
        )
    except RedisError as exc:
        log.warning("attempt %s ended; could not queue the follow-up: %s", attempt_id, exc)
