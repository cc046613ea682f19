"""The dialer's side of in-call surveys: the customer is transferred to the survey
number when the agent hangs up, instead of being called back (ivr.inbound takes the
transfer).

What is here: planning an in-call request at intake (it waits for its transfer, with a
token to attach to it), a call-ended event that arrives after its customer's in-call
survey began (it claims that survey's unattributed answers), expiring requests whose
transfer never came, and the survey's optional callback after an in-call survey hung up
before its first answer. The dialing rules are the callback's (dialer.rules), but for
calling hours and the delay, which a customer already on the line makes moot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import transfer_token
from core.config import Settings
from core.models import (
    Answer,
    Attribution,
    RequestState,
    Suppression,
    SurveyMode,
    SurveyRequest,
)
from core.request_state import has_answers
from core.runtime import Runtime
from core.survey import UnknownSurvey
from core.survey_versions import definition_of
from dialer import rules, scheduling
from dialer.calling_hours import zones_for_number

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """Where the platform sends the customer, and the token that names the support call."""

    token: str
    expires_at: datetime
    url: str  # for Twilio: <Redirect> (or a Studio "TwiML Redirect") to it
    phone: str  # for PSTN platforms: the survey number ...
    digits: str  # ... and the DTMF digits to send once it answers

    @classmethod
    def of(cls, settings: Settings, request: SurveyRequest) -> Transfer | None:
        """The transfer of a request still waiting for one; None for any other."""
        if request.state is not RequestState.AWAITING_TRANSFER or not request.transfer_expires_at:
            return None
        token = transfer_token.issue(settings.secret_key, request.id)
        return cls(
            token=token,
            expires_at=request.transfer_expires_at,
            url=f"{settings.public_base_url}/ivr/inbound?token={token}",
            phone=settings.survey_number,
            digits=f"{token}#",
        )


def await_transfer(request: SurveyRequest, settings: Settings, now: datetime) -> None:
    """An in-call request the rules accepted: it waits for its customer's transfer."""
    request.state = RequestState.AWAITING_TRANSFER
    request.due_at = None
    request.transfer_expires_at = now + timedelta(minutes=settings.in_call_token_minutes)


def unattributed_survey(
    session: Session, phone: str, ended_at: datetime, window: timedelta
) -> SurveyRequest | None:
    """The in-call survey of `phone` that began, without knowing its support call, within
    `window` of the call's end: the customer was transferred before the event arrived."""
    return session.scalar(
        select(SurveyRequest)
        .where(
            SurveyRequest.phone == phone,
            SurveyRequest.mode == SurveyMode.IN_CALL,
            SurveyRequest.attribution == Attribution.NONE,
            SurveyRequest.call_ended_at >= ended_at - window,
            SurveyRequest.call_ended_at <= ended_at + window,
        )
        .order_by(SurveyRequest.call_ended_at.desc())
        .limit(1)
        .with_for_update()
    )


def claim_survey(session: Session, survey: SurveyRequest, call: SurveyRequest) -> None:
    """The late event names the support call of an unattributed in-call survey: the
    survey's request, and the answers it already has, take the call's source call id,
    agent, queue, team, end time, metadata and API key from `call` (the request intake
    built from the event, never stored). The rollup's triggers move the figures along."""
    survey.source_call_id = call.source_call_id
    survey.call_ended_at = call.call_ended_at
    survey.agent, survey.queue, survey.team = call.agent, call.queue, call.team
    survey.extra = {**call.extra, **(survey.extra or {})}
    survey.api_key_id = call.api_key_id
    survey.attribution = Attribution.LATE_EVENT
    session.flush()
    session.execute(
        update(Answer)
        .where(Answer.request_id == survey.id)
        .values(call_ended_at=call.call_ended_at, agent=call.agent, queue=call.queue,
                team=call.team)
    )  # fmt: skip


def realign_answers(runtime: Runtime, request_id: int) -> None:
    """After a late event's claim committed: give the claimed survey's answers the
    request's fields once more. An answer webhook that read the request before the claim
    and stored its answer just after it (the claim's UPDATE of answers could not see a
    row not yet committed) would otherwise keep the unattributed fields."""
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        if request is None:
            return
        session.execute(
            update(Answer)
            .where(Answer.request_id == request_id)
            .values(call_ended_at=request.call_ended_at, agent=request.agent,
                    queue=request.queue, team=request.team)
        )  # fmt: skip


def expire_unclaimed(runtime: Runtime) -> int:
    """Requests whose transfer never came before their deadline expire (rq cron)."""
    with runtime.db.session() as session:
        return session.execute(
            update(SurveyRequest)
            .where(
                SurveyRequest.state == RequestState.AWAITING_TRANSFER,
                SurveyRequest.transfer_expires_at <= runtime.now(),
            )
            .values(
                state=RequestState.EXPIRED,
                suppression_reason=Suppression.EXPIRED.value,
                transfer_expires_at=None,
            )
        ).rowcount


def callback_after_hang_up(runtime: Runtime, request_id: int) -> str:
    """An in-call survey ended before its first answer. If its survey says so, and the
    support call is known (an unattributed survey has no one to call back about), the
    request falls back to a callback, under every dialing rule of the callback."""
    now = runtime.now()
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id, with_for_update=True)
        if (
            request is None
            or request.mode is not SurveyMode.IN_CALL
            or request.state is not RequestState.ABANDONED
            or request.attribution in (None, Attribution.NONE)
            or request.is_test
            or not request.phone
            # An answer committed just after the hang-up marked it abandoned.
            or has_answers(session.connection(), request_id)
        ):
            return "no callback: not an attributed in-call survey that was hung up"
        if request.survey_version is not None:
            settings = definition_of(request.survey_version).dialing
        else:
            try:
                settings = runtime.catalog.get(request.survey_name).dialing
            except UnknownSurvey:
                return f"no callback: survey {request.survey_name!r} is gone"
        if not settings.callback_after_in_call_hangup:
            return "no callback: the survey does not call back after an in-call hang-up"
        if rules.call_time_suppression(session, request.phone, now) is not None:
            return "no callback: a dialing rule forbids calling the number"
        due = rules.first_call_time(
            now,
            request.call_ended_at,
            settings,
            zones_for_number(request.phone, runtime.settings.fallback_time_zone),
        )
        if not isinstance(due, datetime):
            return f"no callback: {due.value}"
        request.mode = SurveyMode.CALLBACK
        request.state = RequestState.SCHEDULED
        request.due_at = due
    scheduling.enqueue_call(runtime, request_id, 1, due)
    log.info("in-call survey of request %s hung up unanswered: callback at %s", request_id, due)
    return f"callback at {due.isoformat()}"
