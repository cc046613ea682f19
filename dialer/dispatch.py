"""What a call job does when it runs, and what happens after each attempt.

`dial()` is run by the rq job at the request's due time. It re-checks everything that
may have changed since intake (an opt-out, the 30-day cap, the calling window, the
validity window, a paused dialer), waits for a pacing slot, then places the call if
the concurrency limit leaves room. It is safe to run twice: a duplicate delivery
finds the request no longer `scheduled` (or the attempt already made) and does nothing.

`after_attempt()` runs when an attempt ends without reaching anyone for the survey (the
status webhook queues it unless the request is done with; reconciliation when that
job was lost): it schedules the retry that the survey's rules allow, or, after the last
attempt, the SMS fallback when the survey enables it (`[sms] fallback`), or leaves the
outcome as final.

A request on a text channel (sms, or sms_fallback) runs the same job at its due time:
the same re-checks, with the messaging hours and without the call cap (a text is no
call), then a slot of the texts' own pacer, then the SMS channel opens the conversation
(core.events.text_due). Nobody is both called and texted for one support call, except
that fallback.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.events import text_due
from core.models import (
    CallAttempt,
    Channel,
    RequestState,
    Suppression,
    SurveyMode,
    SurveyRequest,
)
from core.pacing import MESSAGE_PACING_KEY, acquire_call_slot
from core.runtime import Runtime
from core.survey import DialingSettings, SurveyDefinition, UnknownSurvey
from core.survey_versions import definition_of
from dialer import in_call, rules, scheduling
from dialer.calling_hours import zones_for_number
from dialer.intake import can_take_texts
from dialer.placement import AtCapacity, PlacementFailure, place_call

log = logging.getLogger(__name__)

PAUSE_KEY = "aftercall:dialer:paused"
# How long a worker may sleep for a pacing slot before handing the job back.
MAX_PACING_WAIT = 2.0
CONCURRENCY_RETRY = timedelta(seconds=10)
# rq's scheduler releases jobs up to a few seconds early or late.
EARLY_TOLERANCE = timedelta(seconds=5)
PAUSED_RETRY = timedelta(minutes=1)
# Backoff after Twilio refused a request for a transient reason (429, 5xx, timeout).
TRANSIENT_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))


def pause(runtime: Runtime, reason: str) -> None:
    runtime.redis.set(PAUSE_KEY, reason)


def resume(runtime: Runtime) -> None:
    runtime.redis.delete(PAUSE_KEY)


def paused_reason(runtime: Runtime) -> str | None:
    value = runtime.redis.get(PAUSE_KEY)
    return value.decode() if isinstance(value, bytes) else value


def dial(runtime: Runtime, request_id: int, attempt_number: int) -> str:
    """Place attempt `attempt_number` of a request if it is still due. Returns what happened."""
    now = runtime.now()
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        if request is None:
            return "unknown request"
        if request.state is not RequestState.SCHEDULED:
            return f"skipped: request is {request.state.value}"
        if _placed_attempts(session, request_id) >= attempt_number:
            return "skipped: attempt already made"
        if request.due_at is not None and request.due_at > now + EARLY_TOLERANCE:
            # A job left over from before the call was rescheduled; the job for the new
            # time exists (or reconcile will make it).
            return f"skipped: not due until {request.due_at.isoformat()}"
        texts = request.channel.texts
        settings = _dialing_settings(runtime, session, request)
        if texts:
            suppression = (
                Suppression.OPTED_OUT if rules.is_opted_out(session, request.phone) else None
            )
        else:
            suppression = rules.call_time_suppression(session, request.phone, now)
        if suppression is not None:
            request.state = RequestState.SUPPRESSED
            request.suppression_reason = suppression.value
            return f"suppressed: {suppression.value}"
        zones = zones_for_number(request.phone, runtime.settings.fallback_time_zone)
        if now >= rules.valid_until(request.call_ended_at, settings):
            return _expire(request, Suppression.EXPIRED)
        if not rules.window_for(settings).allows(now, zones):
            opening = rules.next_call_time(now, request.call_ended_at, settings, zones)
            if isinstance(opening, Suppression):
                return _expire(request, opening)
            request.due_at = opening
            reschedule_at = opening
        elif (reason := paused_reason(runtime)) is not None:
            reschedule_at = now + PAUSED_RETRY
            request.due_at = reschedule_at
            log.error("dialer paused (%s): request %s held back", reason, request_id)
        else:
            reschedule_at = None
    if reschedule_at is not None:
        scheduling.enqueue_call(runtime, request_id, attempt_number, reschedule_at)
        return f"rescheduled to {reschedule_at.isoformat()}"
    if texts:
        return _text(runtime, request_id, attempt_number, now)

    slot = acquire_call_slot(runtime.redis, runtime.settings.calls_per_second, MAX_PACING_WAIT)
    if not slot.granted:
        later = now + timedelta(seconds=slot.retry_after)
        _set_due(runtime, request_id, later)
        scheduling.enqueue_call(runtime, request_id, attempt_number, later)
        return "rescheduled: pacing"

    placed = place_call(runtime, request_id)
    if placed is None:
        return "skipped: another worker placed it"
    if isinstance(placed, AtCapacity):
        later = now + CONCURRENCY_RETRY
        _set_due(runtime, request_id, later)
        scheduling.enqueue_call(runtime, request_id, attempt_number, later)
        return f"rescheduled: {placed.in_flight} calls in progress"
    if placed.failure is None:
        return f"placed {placed.call_sid}"
    if placed.failure is PlacementFailure.UNCERTAIN:
        return "uncertain: Twilio did not answer; the call's webhooks or reconciliation settle it"
    return _after_refusal(runtime, request_id, attempt_number, placed.failure, placed.error_code)


def _text(runtime: Runtime, request_id: int, attempt_number: int, now: datetime) -> str:
    """The request's survey goes out by text: a slot of the texts' pacer, then the SMS
    channel opens the conversation and sends the first text."""
    slot = acquire_call_slot(
        runtime.redis, runtime.settings.messages_per_second, MAX_PACING_WAIT, MESSAGE_PACING_KEY
    )
    if not slot.granted:
        later = now + timedelta(seconds=slot.retry_after)
        _set_due(runtime, request_id, later)
        scheduling.enqueue_call(runtime, request_id, attempt_number, later)
        return "rescheduled: pacing"
    return text_due(runtime, request_id)


def after_attempt(runtime: Runtime, request_id: int) -> str:
    """An attempt ended: schedule the retry the rules allow, or let the outcome stand."""
    now = runtime.now()
    if _hung_up_in_call(runtime, request_id):
        # An in-call survey whose end reconciliation learned from Twilio's Calls API
        # (dialer.settlement); the status webhook makes the same call itself.
        return in_call.callback_after_hang_up(runtime, request_id)
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        if request is None:
            return "unknown request"
        if request.state not in (
            RequestState.NO_ANSWER,
            RequestState.BUSY,
            RequestState.FAILED,
            RequestState.VOICEMAIL,
        ):
            return f"final: {request.state.value}"
        if request.channel.texts:
            request.due_at = None
            return f"final: {request.state.value} (by text)"
        settings = _dialing_settings(runtime, session, request)
        last = session.scalar(
            select(CallAttempt)
            .where(CallAttempt.request_id == request_id, CallAttempt.status != "rejected")
            .order_by(CallAttempt.number.desc())
            .limit(1)
        )
        placed = _placed_attempts(session, request_id)
        due: datetime | Suppression | None = None
        if request.is_test:
            # An admin waiting at the page for one call; an hour later it would surprise.
            verdict = f"final: {request.state.value} (a test call is not retried)"
        elif last is None or not rules.is_retryable(
            request.state, last.sip_response_code, settings
        ):
            verdict = f"final: {request.state.value}"
        elif placed >= settings.max_attempts:
            verdict = f"final: {request.state.value} after {placed} attempts"
        else:
            earliest = max(now, last.ended_at or now) + rules.retry_delay(settings, placed)
            zones = zones_for_number(request.phone, runtime.settings.fallback_time_zone)
            due = rules.next_call_time(earliest, request.call_ended_at, settings, zones)
            verdict = f"final: {request.state.value} (no time left to retry)"
        fell_back = False
        if not isinstance(due, datetime):
            # Decided: no due time left marks the outcome as settled for reconcile().
            request.due_at = None
            fallback = None if request.is_test else _sms_fallback(runtime, session, request, last)
            if fallback is None:
                return verdict
            # The calls went unanswered: the survey goes out by text instead, once.
            due, fell_back = fallback, True
            request.channel = Channel.SMS_FALLBACK
        request.state = RequestState.SCHEDULED
        request.due_at = due
    scheduling.enqueue_call(runtime, request_id, placed + 1, due)
    if fell_back:
        return f"{verdict}; texted instead at {due.isoformat()}"
    return f"retry {placed + 1} at {due.isoformat()}"


# Twilio's call errors that say the number takes no texts either (a text to it would
# fail the same way): the fallback is skipped.
_NOT_TEXTABLE_ERRORS = frozenset({"13224", "13225", "21211", "21214", "21215", "21217", "21614"})


def _sms_fallback(
    runtime: Runtime, session: Session, request: SurveyRequest, last: CallAttempt | None
) -> datetime | None:
    """When to text the survey after the last call went unanswered, or None: the survey
    does not enable the fallback, an in-call survey (the customer hung up on it), a
    number that cannot take texts (a fixed line where the numbering plan tells, or a
    number Twilio called invalid), or no messaging hours left in the validity window."""
    definition = _definition(runtime, session, request)
    if (
        definition is None
        or not definition.sms.fallback
        or request.mode is SurveyMode.IN_CALL
        or not can_take_texts(request.phone)
        or (last is not None and last.error_code in _NOT_TEXTABLE_ERRORS)
    ):
        return None
    zones = zones_for_number(request.phone, runtime.settings.fallback_time_zone)
    settings = rules.for_channel(definition, Channel.SMS_FALLBACK)
    due = rules.next_call_time(runtime.now(), request.call_ended_at, settings, zones)
    return due if isinstance(due, datetime) else None


def _hung_up_in_call(runtime: Runtime, request_id: int) -> bool:
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        return (
            request is not None
            and request.mode is SurveyMode.IN_CALL
            and request.state is RequestState.ABANDONED
        )


def _after_refusal(
    runtime: Runtime,
    request_id: int,
    attempt_number: int,
    failure: PlacementFailure,
    code: int | None,
) -> str:
    if failure is PlacementFailure.PERMANENT:
        return f"failed: Twilio error {code}"
    now = runtime.now()
    with runtime.db.session() as session:
        refusals = session.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.request_id == request_id, CallAttempt.status == "rejected"
            )
        )
        request = session.get(SurveyRequest, request_id)
        delay = TRANSIENT_BACKOFF[min(refusals - 1, len(TRANSIENT_BACKOFF) - 1)]
        if failure is PlacementFailure.AUTH:
            delay = PAUSED_RETRY
        due = now + delay
        request.due_at = due
    if failure is PlacementFailure.AUTH:
        pause(runtime, f"Twilio rejected the account credentials (error {code})")
        log.critical("Twilio rejected the credentials (error %s): dialing paused", code)
    scheduling.enqueue_call(runtime, request_id, attempt_number, due)
    return f"rescheduled after Twilio error {code}"


def _expire(request: SurveyRequest, reason: Suppression) -> str:
    request.state = RequestState.EXPIRED
    request.suppression_reason = reason.value
    return f"expired: {reason.value}"


def _set_due(runtime: Runtime, request_id: int, due: datetime) -> None:
    with runtime.db.session() as session:
        session.get(SurveyRequest, request_id).due_at = due


def _placed_attempts(session: Session, request_id: int) -> int:
    return session.scalar(
        select(func.count(CallAttempt.id)).where(
            CallAttempt.request_id == request_id,
            CallAttempt.status.not_in(rules.NOT_PLACED),
            CallAttempt.direction == "outbound",
        )
    )


def _dialing_settings(
    runtime: Runtime, session: Session, request: SurveyRequest
) -> DialingSettings:
    """The rules of the survey version the request was accepted under, for its channel."""
    definition = _definition(runtime, session, request)
    if definition is None:
        return DialingSettings()
    return rules.for_channel(definition, request.channel)


def _definition(
    runtime: Runtime, session: Session, request: SurveyRequest
) -> SurveyDefinition | None:
    if request.survey_version is not None:
        return definition_of(request.survey_version)
    try:
        return runtime.catalog.get(request.survey_name)
    except UnknownSurvey:
        return None
