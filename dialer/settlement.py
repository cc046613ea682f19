"""Settling call attempts whose end never reached aftercall.

An attempt learns how its call ended from Twilio's final status callback. When that
callback is lost (Twilio gave up on the web tier, the database was down when it came,
the worker died before Twilio placed the call), the attempt would stay in flight, its
request `calling` or `in_progress`, forever, and hold a line of the concurrency limit.

Once an attempt is overdue (any call it started must be over by now) reconciliation
asks Twilio's Calls API about it:
- Twilio tells a final status: it is applied through the very function the status
  webhook uses (dialer.attempts.record_status), as if the callback had arrived;
- the call is still live: it is left alone, and asked about again next time;
- Twilio has no such call (20404), or the attempt never got a CallSid: the attempt is
  `lost` (dialer.attempts.record_lost), which counts toward the request's limits.
A Twilio API error leaves the attempt for the next run. The retry decision that follows
an ended attempt is not made here: reconciliation queues the dialer's follow-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from requests.exceptions import RequestException
from sqlalchemy import or_, select
from twilio.base.exceptions import TwilioException, TwilioRestException

from core.models import CallAttempt
from core.runtime import Runtime
from dialer import attempts
from dialer.placement import CALL_TIME_LIMIT, IN_FLIGHT, RING_TIMEOUT

log = logging.getLogger(__name__)

# Twilio queues calls briefly, retries an undelivered callback, and clocks differ by a
# little: room for all of it after the longest a call can ring and then last.
CALLBACK_MARGIN = timedelta(minutes=5)
# When the final status of an attempt is overdue, counted from the attempt's creation:
# the longest a call can ring, plus the longest it can last once answered, plus margin.
FINAL_STATUS_OVERDUE = (
    timedelta(seconds=RING_TIMEOUT) + timedelta(seconds=CALL_TIME_LIMIT) + CALLBACK_MARGIN
)
# An in-call survey (an inbound attempt) is over in a few minutes, and its end may never
# be posted: a customer redirected into the survey keeps the contact center's own status
# callback. Twilio is asked about it this long after the transfer, then every run.
IN_CALL_SURVEY_OVERDUE = timedelta(minutes=3)
# Twilio's Calls API is asked about at most this many attempts per run.
MAX_CHECKS_PER_RUN = 200
NOT_FOUND = 20404


@dataclass(frozen=True)
class Verdict:
    attempt_id: int
    request_id: int
    outcome: str  # ended (Twilio's final status), lost, live, unknown (API error)


def settle_overdue_attempts(
    runtime: Runtime,
    overdue: timedelta = FINAL_STATUS_OVERDUE,
    without_call_sid: timedelta = FINAL_STATUS_OVERDUE,
) -> list[Verdict]:
    """Ask Twilio about every attempt whose final status is `overdue`, and settle those
    that ended; an attempt without a CallSid is taken for lost after `without_call_sid`.
    Returns what was found for each attempt looked at.

    Asking Twilio early is harmless (a live call is left alone); calling an attempt
    without a CallSid lost is not, while a call it might have placed could still ring:
    the retry that follows could reach the customer twice.
    """
    now = runtime.now()
    with runtime.db.session() as session:
        pending = session.execute(
            select(CallAttempt.id, CallAttempt.request_id, CallAttempt.call_sid)
            .where(
                CallAttempt.status.in_(IN_FLIGHT),
                or_(
                    CallAttempt.call_sid.is_not(None) & (CallAttempt.created_at < now - overdue),
                    (CallAttempt.direction == "inbound")
                    & (CallAttempt.created_at < now - min(overdue, IN_CALL_SURVEY_OVERDUE)),
                    CallAttempt.call_sid.is_(None)
                    & (CallAttempt.created_at < now - without_call_sid),
                ),
            )
            .order_by(CallAttempt.created_at)
            .limit(MAX_CHECKS_PER_RUN)
        ).all()
    verdicts = []
    for attempt_id, request_id, call_sid in pending:
        outcome = _settle(runtime, attempt_id, call_sid, now)
        verdicts.append(Verdict(attempt_id, request_id, outcome))
    return verdicts


def _settle(runtime: Runtime, attempt_id: int, call_sid: str | None, now: datetime) -> str:
    if call_sid is None:
        return _record_lost(runtime, attempt_id, now, "it never got a CallSid")
    try:
        call = runtime.twilio.calls(call_sid).fetch()
    except TwilioRestException as exc:
        if exc.code == NOT_FOUND:
            return _record_lost(runtime, attempt_id, now, f"Twilio has no call {call_sid}")
        log.warning("attempt %s: could not ask Twilio about %s: %s", attempt_id, call_sid, exc)
        return "unknown"
    except (TwilioException, RequestException) as exc:
        log.warning("attempt %s: could not ask Twilio about %s: %s", attempt_id, call_sid, exc)
        return "unknown"
    if call.status not in attempts.FINAL_STATUSES:
        return "live"
    params = {"CallSid": call_sid, "CallStatus": call.status, "CallbackSource": "calls-api"}
    if call.end_time is not None:
        params["Timestamp"] = format_datetime(call.end_time)
    if call.duration is not None:
        params["CallDuration"] = str(call.duration)
    if call.answered_by:
        params["AnsweredBy"] = call.answered_by
    with runtime.db.session() as session:
        if attempts.record_status(session.connection(), attempt_id, call_sid, params) is None:
            return "settled meanwhile"
    log.warning("attempt %s: final status callback never came; Twilio says %s",
                attempt_id, call.status)  # fmt: skip
    return "ended"


def _record_lost(runtime: Runtime, attempt_id: int, now: datetime, why: str) -> str:
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        if attempt is None or not attempts.record_lost(session, attempt, now):
            return "settled meanwhile"
    log.warning("attempt %s: lost (%s)", attempt_id, why)
    return "lost"
