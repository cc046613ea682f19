"""Test calls: an admin has a survey call placed to a number of their choice, to hear
what customers will hear, through the dialer's normal path.

A test call is a survey request like any other: stored `scheduled` with its due time,
queued on the call queue, then dialled by the same job as every survey call
(`dialer.dispatch.dial`: re-checks, pacing, the concurrency limit, placement through
Twilio), and answered through the same webhooks. It differs from intake
(`dialer.intake.register_call`) only where a test call has to:

- no sampling and no re-survey fatigue: an admin asked for this one call;
- no delay after the support call, since there was none: it is due at once;
- never to a number on the do-not-call list, never past the hard cap of calls per number
  (dialer.rules), never while another survey call to the number is under way: those are
  refused with the reason, nothing is stored;
- only inside the survey's calling hours in the called number's local time, like any
  call: the compliance floor (08:00-21:00 local, 47 CFR 64.1200(c)(1)) protects whoever
  owns the number, and `dispatch.dial` re-checks the window before dialling anyway.
  Outside the hours the call is scheduled for the next opening and the admin is told;
- marked as a test call by `SurveyRequest.is_test`, the one thing that makes it one
  (only `schedule_test_call` sets it: intake cannot make a customer's call one,
  whatever source call id or metadata it sends): no report figure counts it (scoring.report, the rollup), it sends no
  detractor alert (scoring.alerts) and is never retried (dialer.dispatch). For people
  reading the tables it also has metadata `{"test_call": true, "requested_by":
  <username>}`, a source call id starting with `TEST_CALL_PREFIX` (unique, and
  recognisable in logs), and no agent, queue or team.

It does not decide who may place a test call (the dashboard allows admins only).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

from core.models import Answer, CallAttempt, RequestState, Suppression, SurveyRequest
from core.runtime import Runtime
from core.survey import UnknownSurvey
from core.survey_versions import version_for
from dialer import rules, scheduling
from dialer.calling_hours import zones_for_number
from dialer.intake import IntakeRejected, Rejection, normalise_phone

log = logging.getLogger(__name__)

TEST_CALL_PREFIX = "aftercall-test-call:"
TEST_CALL_FLAG = "test_call"

_REFUSALS = {
    Suppression.OPTED_OUT: "the number is on the do-not-call list; aftercall never calls it",
    Suppression.SURVEY_UNDER_WAY: (
        "a survey call to this number is already scheduled or in progress; wait for it to end"
    ),
    Suppression.CALL_CAP: (
        f"the number was called {rules.HARD_CAP_CALLS} times in the last "
        f"{rules.HARD_CAP_DAYS} days, the most aftercall calls any number"
    ),
    Suppression.NO_CALLING_WINDOW: "the survey's calling hours never open for this number",
    Suppression.EXPIRED: (
        "the survey's calling hours for this number open only after its validity "
        "window (valid_hours)"
    ),
}
# States in which the dialer may still place (another) call for a request.
_WAITING = (RequestState.SCHEDULED, RequestState.CALLING, RequestState.IN_PROGRESS)


class TestCallRefused(ValueError):
    """The test call cannot be placed; `field` is the form field at fault (or "")."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class ScheduledTestCall:
    request_id: int
    phone: str  # E.164
    due_at: datetime
    now: datetime

    @property
    def waits_for_calling_hours(self) -> bool:
        return self.due_at > self.now


def schedule_test_call(
    runtime: Runtime, survey: str, phone: str, language: str, requested_by: str
) -> ScheduledTestCall:
    """Store a test call request and queue its call; TestCallRefused says why not."""
    try:
        definition = runtime.catalog.get(survey)
    except UnknownSurvey:
        raise TestCallRefused("survey", f"no survey named {survey!r}") from None
    if language not in definition.languages:
        have = ", ".join(sorted(definition.languages))
        raise TestCallRefused("language", f"the survey speaks {have}, not {language!r}")
    e164 = dialable_number(phone, runtime.settings.default_region or None)

    now = runtime.now()
    settings = definition.dialing
    with runtime.db.session() as session:
        history = rules.load_history(session, [e164], now)
        source_call_id = f"{TEST_CALL_PREFIX}{uuid.uuid4().hex}"
        # The intake rules with sampling and fatigue switched off; the rest hold.
        suppression = rules.intake_suppression(
            history,
            e164,
            source_call_id,
            replace(settings, sample_percent=100, fatigue_days=0),
            now,
        )
        due: datetime | Suppression | None = suppression
        if suppression is None:
            zones = zones_for_number(e164, runtime.settings.fallback_time_zone)
            due = rules.first_call_time(now, now, replace(settings, delay_minutes=0), zones)
        if not isinstance(due, datetime):
            raise TestCallRefused("phone", _REFUSALS.get(due, f"refused ({due})"))
        request = SurveyRequest(
            phone=e164,
            source_call_id=source_call_id,
            language=language,
            call_ended_at=now,
            extra={TEST_CALL_FLAG: True, "requested_by": requested_by},
            is_test=True,
            survey_name=definition.name,
            survey_version_id=version_for(session, definition).id,
            state=RequestState.SCHEDULED,
            due_at=due,
        )
        session.add(request)
        session.flush()
        request_id = request.id
    # After the commit, as intake does; if Redis is down, reconciliation queues it.
    scheduling.enqueue_first_calls(runtime, [(request_id, due)])
    log.info("test call %s (%s) by %s due at %s", request_id, survey, requested_by, due)
    return ScheduledTestCall(request_id, e164, due, now)


def dialable_number(raw: str, default_region: str | None) -> str:
    """The number in E.164, or TestCallRefused saying, in words, what is wrong with it."""
    text = raw.strip()
    if not text:
        raise TestCallRefused("phone", "enter the number to call")
    try:
        return normalise_phone(text, default_region)
    except IntakeRejected as exc:
        if exc.reason is Rejection.UNCALLABLE_PHONE:
            message = (
                f"{text!r} is a number a survey cannot call (premium-rate, shared-cost, "
                "pager and the like); use a mobile or landline number"
            )
        elif default_region is None and not text.startswith("+"):
            message = (
                f"{text!r} is not a phone number aftercall can read; write it with its "
                "country code, like +1 415 555 0123"
            )
        else:
            message = f"{text!r} is not a valid phone number; check the digits"
        raise TestCallRefused("phone", message) from None


@dataclass(frozen=True)
class AttemptStatus:
    number: int
    status: str
    call_sid: str | None
    created_at: datetime
    answered_by: str | None
    duration_seconds: int | None


@dataclass(frozen=True)
class TestCallStatus:
    """Where a test call is: the request, its attempts, what was answered."""

    __test__ = False  # not a pytest test class, whatever its name

    request_id: int
    survey: str
    survey_version: int | None
    phone: str
    language: str
    requested_by: str
    state: RequestState
    due_at: datetime | None
    suppression_reason: str | None
    created_at: datetime
    attempts: tuple[AttemptStatus, ...]
    answers: tuple[tuple[str, str], ...]  # (question key, what was answered)

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it on its own (a retry may still be scheduled)."""
        return self.state not in _WAITING


def status_of(runtime: Runtime, request_id: int) -> TestCallStatus | None:
    """The test call `request_id`, or None if there is none (or it is a customer's)."""
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        if request is None or not request.is_test:
            return None
        attempts = session.scalars(
            select(CallAttempt)
            .where(CallAttempt.request_id == request_id)
            .order_by(CallAttempt.number)
        ).all()
        answers = session.scalars(
            select(Answer).where(Answer.request_id == request_id).order_by(Answer.id)
        ).all()
        return TestCallStatus(
            request_id=request.id,
            survey=request.survey_name,
            survey_version=request.survey_version.version if request.survey_version else None,
            phone=request.phone,
            language=request.language,
            requested_by=str(request.extra.get("requested_by", "")),
            state=request.state,
            due_at=request.due_at,
            suppression_reason=request.suppression_reason,
            created_at=request.created_at,
            attempts=tuple(
                AttemptStatus(
                    a.number, a.status, a.call_sid, a.created_at, a.answered_by, a.duration_seconds
                )
                for a in attempts
            ),
            answers=tuple((a.question_key, _answer_text(a)) for a in answers),
        )


def _answer_text(answer: Answer) -> str:
    if answer.value is not None:
        return f"{answer.value} (keys {answer.keys})" if answer.keys else str(answer.value)
    seconds = f"{answer.recording_seconds} s recording" if answer.recording_seconds else "recording"
    return f"{seconds}: {answer.transcript}" if answer.transcript else seconds
