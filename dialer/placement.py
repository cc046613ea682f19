"""Placing one survey call through Twilio for a request that is due.

The attempt row is committed before Twilio is asked to call, so every webhook of the
call finds it (the URLs carry the attempt id and are signed by Twilio); the CallSid
from Twilio's response is stored after. Each call asks for every status event and for
asynchronous answering machine detection, so a person hears the greeting at once while
Twilio decides, and a machine is steered away by the `amd` webhook.

Scheduling, pacing and retry rules live beside this module; this one only places.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from twilio.base.exceptions import TwilioRestException

from aftercall.db import utcnow
from aftercall.models import CallAttempt, RequestState, SurveyRequest
from aftercall.runtime import Runtime

log = logging.getLogger(__name__)

# Seconds to let the phone ring before Twilio gives up with no-answer (Twilio's
# default is 60; voicemail usually picks up after 20-30).
RING_TIMEOUT = 30
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
_PLACEABLE = frozenset(
    {
        RequestState.PENDING,
        RequestState.SCHEDULED,
        RequestState.NO_ANSWER,
        RequestState.BUSY,
        RequestState.FAILED,
        RequestState.VOICEMAIL,
    }
)


@dataclass(frozen=True)
class Placed:
    attempt_id: int
    call_sid: str | None
    error_code: int | None = None


def place_call(runtime: Runtime, request_id: int) -> Placed | None:
    """Call the customer of `request_id` now. None if the request may not be called."""
    settings = runtime.settings
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id, with_for_update=True)
        if request is None or request.state not in _PLACEABLE:
            return None
        number = (
            session.scalar(
                select(func.max(CallAttempt.number)).where(CallAttempt.request_id == request_id)
            )
            or 0
        ) + 1
        attempt = CallAttempt(request_id=request_id, number=number, status="queued")
        session.add(attempt)
        request.state = RequestState.CALLING
        session.flush()
        attempt_id, phone = attempt.id, request.phone

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
    except TwilioRestException as exc:
        log.warning("attempt %s: Twilio refused the call: %s %s", attempt_id, exc.status, exc.code)
        with runtime.db.session() as session:
            attempt = session.get(CallAttempt, attempt_id)
            attempt.status = "failed"
            attempt.error_code = str(exc.code)[:16]
            attempt.ended_at = utcnow()
            attempt.request.state = RequestState.FAILED
        return Placed(attempt_id, None, error_code=exc.code)

    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        if attempt.call_sid is None:
            attempt.call_sid = call.sid
    return Placed(attempt_id, call.sid)
