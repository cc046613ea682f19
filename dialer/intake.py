"""Intake: a support call ended; record it as a survey request, or say why not.

Checks that hold for every source (API, CLI, CSV): the phone number is a real, callable
number (parsed and normalised to E.164 with phonenumbers), the survey exists, the
number is not on the do-not-call list, and the same source call is never surveyed
twice. A rejected call writes nothing. Scheduling rules (sampling, fatigue, calling
hours, delay) are the dialer's next step, not intake's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aftercall.models import OptOut, RequestState, SurveyRequest
from aftercall.survey import SurveyCatalog, UnknownSurvey
from aftercall.survey_versions import version_for

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
    OPTED_OUT = "opted_out"
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


def register_call(
    session: Session,
    catalog: SurveyCatalog,
    ended: CallEnded,
    *,
    default_survey: str,
    default_region: str | None = None,
) -> SurveyRequest:
    if not ended.source_call_id or len(ended.source_call_id) > 200:
        raise IntakeRejected(Rejection.INVALID_FIELD, "source_call_id must be 1-200 characters")
    if ended.ended_at.tzinfo is None:
        raise IntakeRejected(Rejection.INVALID_FIELD, "ended_at needs a UTC offset")
    phone = normalise_phone(ended.phone, default_region)
    survey_name = ended.survey or default_survey
    try:
        definition = catalog.get(survey_name)
    except UnknownSurvey:
        raise IntakeRejected(Rejection.UNKNOWN_SURVEY, f"no survey named {survey_name!r}") from None
    if session.scalar(select(OptOut.id).where(OptOut.phone == phone)) is not None:
        raise IntakeRejected(Rejection.OPTED_OUT, "the number is on the do-not-call list")
    if session.scalar(
        select(SurveyRequest.id).where(SurveyRequest.source_call_id == ended.source_call_id)
    ):
        raise IntakeRejected(Rejection.DUPLICATE, f"call {ended.source_call_id!r} was already sent")

    request = SurveyRequest(
        phone=phone,
        source_call_id=ended.source_call_id,
        agent=ended.agent,
        queue=ended.queue,
        team=ended.team,
        language=(ended.language or "en")[:16],
        call_ended_at=ended.ended_at,
        extra=dict(ended.metadata),
        survey_name=survey_name,
        survey_version_id=version_for(session, definition).id,
        state=RequestState.PENDING,
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        raise IntakeRejected(
            Rejection.DUPLICATE, f"call {ended.source_call_id!r} was already sent"
        ) from None
    return request
