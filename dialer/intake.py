"""Intake: a support call ended; record it as a survey request, or say why not.

The same path for every source (API, CLI, CSV): the phone number must be a real,
callable number (parsed and normalised to E.164 with phonenumbers), the survey must
exist, and the same source call is never surveyed twice; invalid input writes nothing.
Then the dialing rules (dialer.rules) either plan the first call or suppress the
request, which is stored with its reason so that every suppressed call is counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings
from core.models import Channel, RequestState, Suppression, SurveyMode, SurveyRequest
from core.runtime import Runtime
from core.survey import SurveyCatalog, UnknownSurvey
from core.survey_versions import version_for
from dialer import in_call, rules, scheduling
from dialer.calling_hours import zones_for_number

# Number types a survey can reach by voice; premium-rate, shared-cost, pagers and the
# like are rejected at intake.
CALLABLE_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.VOIP,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    }
)


class Rejection(StrEnum):
    INVALID_PHONE = "invalid_phone"
    UNCALLABLE_PHONE = "uncallable_phone"
    UNKNOWN_SURVEY = "unknown_survey"
    DUPLICATE = "duplicate_source_call_id"
    INVALID_FIELD = "invalid_field"


class IntakeRejected(Exception):
    def __init__(self, reason: Rejection, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


@dataclass(frozen=True)
class CallEnded:
    """What the contact center tells aftercall about a finished support call."""

    phone: str
    source_call_id: str
    ended_at: datetime
    agent: str | None = None
    queue: str | None = None
    team: str | None = None
    language: str = "en"
    survey: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    api_key_id: int | None = None  # the API key that sent it, if one did
    # Callback (called later), or in-call (transferred to the survey as the agent hangs
    # up: dialer.in_call).
    mode: SurveyMode = SurveyMode.CALLBACK
    # Voice or SMS (None: the survey's own `channel`). SMS_FALLBACK is the dialer's to
    # decide, after unanswered calls, never intake's.
    channel: Channel | None = None


# Every intake path (API, CSV, CLI, platform events) checks its fields with the
# functions below. A support call that "ended" outside these years is a typo or a unit mix-up; the
# bounds also keep date arithmetic downstream (first call time, validity) in range.
EARLIEST_ENDED_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_ENDED_AT = datetime(2100, 1, 1, tzinfo=UTC)


def check_text(value: str, name: str) -> str:
    """`value`, if the database can store it as text; IntakeRejected naming `name` if not.

    PostgreSQL refuses NUL characters in text, and nothing can encode a lone surrogate
    (which JSON escapes and undecodable command-line bytes can produce): either would
    fail the whole transaction, so it is refused here as one invalid field.
    """
    if "\x00" in value:
        raise IntakeRejected(Rejection.INVALID_FIELD, f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise IntakeRejected(Rejection.INVALID_FIELD, f"{name} is not valid Unicode text") from None
    return value


def parse_ended_at(text: str) -> datetime:
    """An ISO 8601 time with a UTC offset ("2026-11-23T14:05:00+01:00", "...Z")."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise IntakeRejected(
            Rejection.INVALID_FIELD, f"ended_at {text!r} is not an ISO 8601 time"
        ) from None
    if value.tzinfo is None:
        raise IntakeRejected(
            Rejection.INVALID_FIELD,
            f"ended_at {text!r} needs a UTC offset (e.g. +01:00 or Z): "
            "a time without one could be any of 24 hours",
        )
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_ENDED_AT <= in_utc < LATEST_ENDED_AT:
        raise IntakeRejected(
            Rejection.INVALID_FIELD, f"ended_at {text!r} is not between 2000 and 2100"
        )
    return value


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164, or IntakeRejected saying why it cannot be called."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IntakeRejected(
            Rejection.INVALID_PHONE, f"{raw!r} is not a phone number ({exc})"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise IntakeRejected(Rejection.INVALID_PHONE, f"{raw!r} is not a valid phone number")
    if phonenumbers.number_type(number) not in CALLABLE_TYPES:
        raise IntakeRejected(
            Rejection.UNCALLABLE_PHONE, f"{raw!r} is not a number a survey can call"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class IntakeResult:
    """One call's fate at intake: accepted with its planned call time, or why not."""

    source_call_id: str
    request_id: int | None = None
    due_at: datetime | None = None
    reason: str | None = None  # machine-readable: a Rejection or a Suppression value
    detail: str | None = None
    mode: SurveyMode = SurveyMode.CALLBACK
    channel: Channel = Channel.VOICE
    # An accepted in-call request: where to transfer the customer, with its token.
    transfer: in_call.Transfer | None = None
    # The call claimed an in-call survey that began before its event (dialer.in_call).
    attached: bool = False

    @property
    def accepted(self) -> bool:
        return self.reason is None


def register_call(
    session: Session,
    catalog: SurveyCatalog,
    ended: CallEnded,
    *,
    now: datetime,
    settings: Settings,
    history: rules.NumberHistory | None = None,
) -> IntakeResult:
    """Validate, apply the dialing rules, and store the request in one savepoint.

    Invalid input raises nothing and writes nothing (the result says why). A call the
    rules suppress is stored as a `suppressed` request with its reason, so reports can
    count it; an accepted callback is `scheduled` with its first call time, an accepted
    in-call request `awaiting_transfer` with its transfer token. A call whose customer
    is already answering an in-call survey that did not know the call (the event came
    late) is attached to that survey instead: it is never called back.
    """
    try:
        request = _new_request(
            session, catalog, ended, settings.default_survey, settings.default_region or None
        )
    except IntakeRejected as exc:
        return IntakeResult(
            ended.source_call_id,
            reason=exc.reason.value,
            detail=exc.detail,
            mode=ended.mode,
            channel=ended.channel or Channel.VOICE,
        )
    request.mode = ended.mode
    if history is None:
        history = rules.load_history(session, [request.phone], now)
    if request.phone in history.unattributed:
        window = timedelta(seconds=settings.in_call_match_seconds)
        surveyed = in_call.unattributed_survey(
            session, request.phone, request.call_ended_at, window
        )
        if surveyed is not None:
            return _attach(session, surveyed, request)

    dialing = rules.for_channel(catalog.get(request.survey_name), request.channel)
    outcome: datetime | Suppression | None = rules.intake_suppression(
        history, request.phone, request.source_call_id, dialing, now
    )
    if outcome is None and request.mode is SurveyMode.IN_CALL:
        # The customer is still on the line: calling hours and the delay do not apply.
        in_call.await_transfer(request, settings, now)
    elif outcome is None:
        outcome = rules.first_call_time(
            now,
            request.call_ended_at,
            dialing,
            zones_for_number(request.phone, settings.fallback_time_zone),
        )
    if isinstance(outcome, Suppression):
        request.state = RequestState.SUPPRESSED
        request.suppression_reason = outcome.value
    elif isinstance(outcome, datetime):
        request.state = RequestState.SCHEDULED
        request.due_at = outcome
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        detail = f"call {ended.source_call_id!r} was already sent"
        return IntakeResult(
            ended.source_call_id,
            reason=Rejection.DUPLICATE.value,
            detail=detail,
            mode=ended.mode,
            channel=request.channel,
        )
    if request.state is RequestState.SUPPRESSED:
        return IntakeResult(
            ended.source_call_id,
            request_id=request.id,
            reason=request.suppression_reason,
            detail=_SUPPRESSION_DETAILS[outcome],
            mode=request.mode,
            channel=request.channel,
        )
    history.accepted(request.phone)
    return IntakeResult(
        ended.source_call_id,
        request_id=request.id,
        due_at=request.due_at,
        mode=request.mode,
        channel=request.channel,
        transfer=in_call.Transfer.of(settings, request),
    )


def _attach(session: Session, surveyed: SurveyRequest, request: SurveyRequest) -> IntakeResult:
    """The call's customer is in (or has finished) an in-call survey that began before
    this event arrived: the survey takes the call's fields, in a savepoint."""
    try:
        with session.begin_nested():
            in_call.claim_survey(session, surveyed, request)
    except IntegrityError:
        session.expire(surveyed)
        detail = f"call {request.source_call_id!r} was already sent"
        return IntakeResult(
            request.source_call_id,
            reason=Rejection.DUPLICATE.value,
            detail=detail,
            mode=request.mode,
        )
    return IntakeResult(
        request.source_call_id,
        request_id=surveyed.id,
        mode=SurveyMode.IN_CALL,
        detail="attached to the customer's in-call survey, which began before this event",
        attached=True,
    )


_SUPPRESSION_DETAILS = {
    Suppression.NOT_SAMPLED: "not selected by the survey's sampling rate",
    Suppression.OPTED_OUT: "the number is on the do-not-call list",
    Suppression.SURVEYED_RECENTLY: "the number was called for a survey recently",
    Suppression.SURVEY_UNDER_WAY: "a survey for this number is already scheduled",
    Suppression.CALL_CAP: "the number reached the limit of calls in 30 days",
    Suppression.NO_CALLING_WINDOW: "no time inside the customer's calling hours",
    Suppression.EXPIRED: "calling hours open only after the survey's validity window",
}


def accept_calls(runtime: Runtime, calls: Iterable[CallEnded]) -> list[IntakeResult]:
    """Intake for a batch: every call decided on its own, all stored in one commit,
    then the accepted ones queued for their call time.

    A failure to reach Redis after the commit loses nothing: the requests are stored
    as scheduled, and reconciliation queues them (dialer.scheduling.reconcile).
    """
    settings = runtime.settings
    default_region = settings.default_region or None
    now = runtime.now()
    calls = list(calls)
    with runtime.db.session() as session:
        # One snapshot of the numbers' history for the whole batch, not queries per call.
        history = rules.load_history(session, _phones_of(calls, default_region), now)
        results = [
            register_call(
                session, runtime.catalog, ended, now=now, settings=settings, history=history
            )
            for ended in calls
        ]
    scheduling.enqueue_first_calls(
        runtime, [(r.request_id, r.due_at) for r in results if r.accepted and r.due_at]
    )
    for result in results:
        if result.attached and result.request_id is not None:
            in_call.realign_answers(runtime, result.request_id)
    return results


def _phones_of(calls: list[CallEnded], default_region: str | None) -> list[str]:
    phones = []
    for ended in calls:
        try:
            phones.append(normalise_phone(ended.phone, default_region))
        except IntakeRejected:
            continue
    return phones


def _new_request(
    session: Session,
    catalog: SurveyCatalog,
    ended: CallEnded,
    default_survey: str,
    default_region: str | None,
) -> SurveyRequest:
    if not ended.source_call_id or len(ended.source_call_id) > 200:
        raise IntakeRejected(Rejection.INVALID_FIELD, "source_call_id must be 1-200 characters")
    if ended.ended_at.tzinfo is None:
        raise IntakeRejected(Rejection.INVALID_FIELD, "ended_at needs a UTC offset")
    if ended.language and not _LANGUAGE.match(ended.language):
        raise IntakeRejected(Rejection.INVALID_FIELD, "language must look like 'en' or 'es-MX'")
    for name in ("agent", "queue", "team"):
        value = getattr(ended, name)
        if value is not None and len(value) > 200:
            raise IntakeRejected(Rejection.INVALID_FIELD, f"{name} is longer than 200 characters")
    phone = normalise_phone(ended.phone, default_region)
    survey_name = ended.survey or default_survey
    try:
        definition = catalog.get(survey_name)
    except UnknownSurvey:
        raise IntakeRejected(Rejection.UNKNOWN_SURVEY, f"no survey named {survey_name!r}") from None
    channel = ended.channel or Channel(definition.channel)
    if channel is Channel.SMS_FALLBACK:
        raise IntakeRejected(
            Rejection.INVALID_FIELD,
            "channel must be voice or sms (the SMS fallback follows unanswered calls by itself)",
        )
    if channel.texts and ended.mode is SurveyMode.IN_CALL:
        raise IntakeRejected(
            Rejection.INVALID_FIELD, "an in-call survey is a voice survey: channel must be voice"
        )
    if channel.texts and not can_take_texts(phone):
        raise IntakeRejected(
            Rejection.UNCALLABLE_PHONE, f"{phone} is a landline: it cannot take texts"
        )
    # A source call sent before is caught by the unique constraint when the request is
    # inserted (register_call), which also covers two intakes racing with the same call.
    return SurveyRequest(
        phone=phone,
        source_call_id=ended.source_call_id,
        api_key_id=ended.api_key_id,
        agent=ended.agent,
        queue=ended.queue,
        team=ended.team,
        language=(ended.language or "en").lower(),
        call_ended_at=ended.ended_at,
        extra=dict(ended.metadata),
        survey_name=survey_name,
        survey_version_id=version_for(session, definition).id,
        channel=channel,
    )


def can_take_texts(phone: str) -> bool:
    """Whether a number may take a text, as far as the numbering plan tells: not a
    fixed line. Many plans (the US, Canada) cannot tell mobiles from landlines by the
    number; those may take texts, and Twilio's landline error ends the survey if not."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.FIXED_LINE


_LANGUAGE = re.compile(r"^[A-Za-z]{2}([-_][A-Za-z]{2})?$")
