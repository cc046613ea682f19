"""Placing one survey call through Twilio for a request that is due.

A request moves `scheduled -> calling` with a conditional UPDATE, so of two workers
(or one job delivered twice) only one gets to dial. The attempt row is committed before
Twilio is asked, so every webhook of the call finds it (the URLs carry the attempt id
and are signed by Twilio), and a worker that dies mid-call leaves a visible `calling`
request with an attempt lacking its CallSid rather than a silent redial. The CallSid
is stored right after Twilio answers.

Each call asks for every status event and for asynchronous answering machine
detection, so a person hears the greeting at once while Twilio decides, and carries a
time limit, so that how long a call can last is known (dialer.settlement relies on it).

When the create request times out after it was sent, nobody knows whether Twilio placed
the call. The claim then stays: the request remains `calling` with an attempt lacking
its CallSid. If the call was placed, its first webhook stores the CallSid and the call
runs its course; if not, reconciliation resolves the attempt once any call it might
have started would be over. Dialing again at once could ring a customer twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout, RequestException
from sqlalchemy import Select, func, select, update
from twilio.base.exceptions import TwilioException, TwilioRestException
from urllib3.exceptions import ProtocolError

from core.db import utcnow
from core.models import IN_FLIGHT_STATUSES, CallAttempt, RequestState, SurveyRequest
from core.runtime import Runtime

log = logging.getLogger(__name__)

# Seconds to let the phone ring before Twilio gives up with no-answer (Twilio's default
# is 60; voicemail usually picks up after 20-30).
RING_TIMEOUT = 30
# Twilio hangs up an answered call after this many seconds (TimeLimit; its default is 4
# hours). The shipped survey takes 2-5 minutes even when every question is asked three
# times and a full comment is recorded; 15 minutes leaves room for longer surveys.
CALL_TIME_LIMIT = 15 * 60
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# Twilio error codes that mean this number can never be called from this account.
PERMANENT_ERRORS = frozenset(
    {
        21211,  # invalid 'To' number
        21214,  # 'To' number cannot be reached
        21215,  # geo permissions: account not authorized to call the number
        21216,  # call blocked by Twilio
        21217,  # phone number does not appear to be valid
        21610,  # the number has unsubscribed (STOP)
        13224,  # invalid phone number for the country
    }
)
AUTH_ERRORS = frozenset({20003, 20005, 20006})
# Statuses of attempts still using a line; older ones are taken as lost, not in flight.
IN_FLIGHT = IN_FLIGHT_STATUSES
IN_FLIGHT_HORIZON = timedelta(hours=2)
PLACEMENT_LOCK_KEY = 0x61667465  # "afte": one advisory lock for all placements


class PlacementFailure(StrEnum):
    PERMANENT = "permanent"  # the number can't be called: fail the request
    TRANSIENT = "transient"  # rate limit, Twilio 5xx, timeout: try again later
    AUTH = "auth"  # credentials rejected: stop dialing until someone fixes it
    # The request reached Twilio but no answer came back: the call may have been placed.
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class AtCapacity:
    """MAX_CONCURRENT_CALLS calls are still ringing or in progress: try again shortly."""

    in_flight: int


class _Full(Exception):
    def __init__(self, in_flight: int) -> None:
        self.in_flight = in_flight


@dataclass(frozen=True)
class Placed:
    attempt_id: int
    call_sid: str | None
    failure: PlacementFailure | None = None
    error_code: int | None = None


def classify(exc: Exception) -> tuple[PlacementFailure, int | None]:
    if isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        if exc.status == 401 or code in AUTH_ERRORS:
            return PlacementFailure.AUTH, code
        if exc.status == 429 or exc.status >= 500:
            return PlacementFailure.TRANSIENT, code
        if code in PERMANENT_ERRORS or exc.status in (400, 404):
            return PlacementFailure.PERMANENT, code
        return PlacementFailure.TRANSIENT, code
    if _may_have_reached_twilio(exc):
        return PlacementFailure.UNCERTAIN, None
    return PlacementFailure.TRANSIENT, None


def _may_have_reached_twilio(exc: Exception) -> bool:
    """A read timeout, or a connection dropped after the request was sent; a refused
    or timed-out connection never carried the request."""
    if isinstance(exc, ReadTimeout):
        return True
    if isinstance(exc, RequestsConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", exc.args[0])
        return isinstance(reason, ProtocolError)
    return False


def calls_in_flight(now: datetime) -> Select[tuple[int]]:
    """The calls still ringing or in progress (read through the partial index of them)."""
    return select(func.count(CallAttempt.id)).where(
        CallAttempt.status.in_(IN_FLIGHT),
        CallAttempt.created_at >= now - IN_FLIGHT_HORIZON,
        # Customers transferred into in-call surveys take no outbound line.
        CallAttempt.direction == "outbound",
    )


def place_call(runtime: Runtime, request_id: int) -> Placed | AtCapacity | None:
    """Dial the customer of a `scheduled` request now; None if another worker has it."""
    settings = runtime.settings
    try:
        with runtime.db.session() as session:
            # The concurrency check and the claim must be one step, or two workers
            # could each see room for one more call. PostgreSQL: a transaction-scoped
            # advisory lock serialises placements (a few milliseconds each). SQLite:
            # the UPDATE below takes the database's single write lock before counting.
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(PLACEMENT_LOCK_KEY)))
            claimed = session.execute(
                update(SurveyRequest)
                .where(
                    SurveyRequest.id == request_id,
                    SurveyRequest.state == RequestState.SCHEDULED,
                )
                .values(
                    state=RequestState.CALLING,
                    calls_placed=SurveyRequest.calls_placed + 1,
                    updated_at=utcnow(),
                )
            ).rowcount
            if claimed != 1:
                return None
            in_flight = session.scalar(calls_in_flight(runtime.now()))
            if in_flight >= settings.max_concurrent_calls:
                raise _Full(in_flight)  # rolls the claim back
            number = 1 + (
                session.scalar(
                    select(func.max(CallAttempt.number)).where(CallAttempt.request_id == request_id)
                )
                or 0
            )
            attempt = CallAttempt(
                request_id=request_id, number=number, status="queued", created_at=runtime.now()
            )
            session.add(attempt)
            session.flush()
            attempt_id = attempt.id
            phone = session.get(SurveyRequest, request_id).phone
    except _Full as full:
        return AtCapacity(full.in_flight)

    base = f"{settings.public_base_url}/voice/attempts/{attempt_id}"
    try:
        call = runtime.twilio.calls.create(
            to=phone,
            from_=settings.twilio_from_number,
            url=f"{base}/start",
            method="POST",
            status_callback=f"{base}/status",
            status_callback_method="POST",
            status_callback_event=STATUS_EVENTS,
            machine_detection="DetectMessageEnd",
            async_amd="true",
            async_amd_status_callback=f"{base}/amd",
            async_amd_status_callback_method="POST",
            timeout=RING_TIMEOUT,
            time_limit=CALL_TIME_LIMIT,
        )
    except (TwilioException, RequestException) as exc:
        failure, code = classify(exc)
        if failure is PlacementFailure.UNCERTAIN:
            log.warning("attempt %s: no answer from Twilio (%s); the claim stays until "
                        "the call is heard of or reconciled", attempt_id, exc)  # fmt: skip
            return Placed(attempt_id, None, failure)
        log.warning("attempt %s: Twilio did not place the call (%s, %s)", attempt_id, failure, code)
        _record_refusal(runtime, attempt_id, failure, code)
        return Placed(attempt_id, None, failure, code)

    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        if attempt.call_sid is None:
            attempt.call_sid = call.sid
    return Placed(attempt_id, call.sid)


def _record_refusal(
    runtime: Runtime, attempt_id: int, failure: PlacementFailure, code: int | None
) -> None:
    """Twilio refused the request: no call happened. The attempt is marked `rejected`
    (it counts toward no limit); a permanent refusal fails the request, anything else
    hands it back to the dialer to schedule again."""
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        attempt.status = "rejected"
        attempt.error_code = str(code)[:16] if code is not None else None
        attempt.ended_at = utcnow()
        request = attempt.request
        request.calls_placed = max(request.calls_placed - 1, 0)  # no call happened
        if request.state is RequestState.CALLING:
            permanent = failure is PlacementFailure.PERMANENT
            request.state = RequestState.FAILED if permanent else RequestState.SCHEDULED
            if permanent:
                request.due_at = None  # settled: nothing left to decide
