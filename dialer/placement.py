"""Placing one survey call through Twilio for a request that is due.

A request moves `scheduled -> calling` with a conditional UPDATE, so of two workers
(or one job delivered twice) only one gets to dial. The attempt row is committed before
Twilio is asked, so every webhook of the call finds it (the URLs carry the attempt id
and are signed by Twilio), and a worker that dies mid-call leaves a visible `calling`
request with an attempt lacking its CallSid rather than a silent redial. The CallSid
is stored right after Twilio answers.

Each call asks for every status event and for asynchronous answering machine
detection, so a person hears the greeting at once while Twilio decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from requests.exceptions import RequestException
from sqlalchemy import func, select, update
from twilio.base.exceptions import TwilioException, TwilioRestException

from aftercall.db import utcnow
from aftercall.models import CallAttempt, RequestState, SurveyRequest
from aftercall.runtime import Runtime

log = logging.getLogger(__name__)

# Seconds to let the phone ring before Twilio gives up with no-answer (Twilio's default
# is 60; voicemail usually picks up after 20-30).
RING_TIMEOUT = 30
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
IN_FLIGHT = ("queued", "initiated", "ringing", "in-progress")
IN_FLIGHT_HORIZON = timedelta(hours=2)
PLACEMENT_LOCK_KEY = 0x61667465  # "afte": one advisory lock for all placements


class PlacementFailure(StrEnum):
    PERMANENT = "permanent"  # the number can't be called: fail the request
    TRANSIENT = "transient"  # rate limit, Twilio 5xx, timeout: try again later
    AUTH = "auth"  # credentials rejected: stop dialing until someone fixes it


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
    return PlacementFailure.TRANSIENT, None


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
            in_flight = session.scalar(
                select(func.count(CallAttempt.id)).where(
                    CallAttempt.status.in_(IN_FLIGHT),
                    CallAttempt.created_at >= runtime.now() - IN_FLIGHT_HORIZON,
                )
            )
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
        )
    except (TwilioException, RequestException) as exc:
        failure, code = classify(exc)
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


# A claimed attempt that after this long has no CallSid and no word from Twilio was
# never placed (Twilio posts the initiated event, and the first webhook stores the
# CallSid, within seconds of accepting a call): its worker died before asking.
STALE_CLAIM = timedelta(minutes=15)


def release_stale_claims(runtime: Runtime) -> list[int]:
    """Give back requests stuck in `calling` by a worker that died mid-placement.

    The stuck attempt is marked `lost` and still counts toward the request's attempt
    limits (if Twilio did place it after all, the customer was called); the request
    becomes `failed` with its due time kept, so the dialer's follow-up decides about a
    retry like after any failed call. Returns the request ids released.
    """
    cutoff = runtime.now() - STALE_CLAIM
    released = []
    with runtime.db.session() as session:
        stale = session.scalars(
            select(CallAttempt)
            .join(CallAttempt.request)
            .where(
                SurveyRequest.state == RequestState.CALLING,
                CallAttempt.call_sid.is_(None),
                CallAttempt.status == "queued",
                CallAttempt.created_at < cutoff,
            )
        ).all()
        for attempt in stale:
            latest = max(a.number for a in attempt.request.attempts)
            if attempt.number != latest:
                continue
            log.warning("attempt %s: no word from Twilio since %s; released", attempt.id,
                        attempt.created_at.isoformat())  # fmt: skip
            attempt.status = "lost"
            attempt.ended_at = runtime.now()
            attempt.request.state = RequestState.FAILED
            if attempt.request.due_at is None:
                attempt.request.due_at = attempt.created_at
            released.append(attempt.request_id)
    return released
