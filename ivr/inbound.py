"""A customer transferred into an in-call survey: which support call they come from,
and the inbound attempt their survey runs on.

The survey number's voice webhook (aftercall.web.inbound) parses Twilio's form and calls
`arrive()`. From there the survey is the callback's, turn for turn (ivr.survey_call,
under the same /voice/attempts/<id> webhooks): only how the call is found differs.

How the support call is found, first match wins:
1. the transfer token intake issued (core.transfer_token), if its request still waits
   for a transfer: an expired, forged or already used token counts as none;
2. the caller's number: an in-call request of that number waiting for its transfer, else
   a callback of that number whose support call ended within IN_CALL_MATCH_SECONDS and
   that was not called yet, or that the rules refused only for want of calling hours
   or calls left (it becomes in-call: never called back);
3. neither: the survey runs unattributed, and a call-ended event that arrives later
   claims it (dialer.in_call.claim_survey()).

Thanked and released without a survey, as the dialing rules would have it: a number on
the do-not-call list; a second transfer of a customer surveyed within the window (two
transfers of one support call store one set of answers); a customer whose support call
the rules refused (not sampled, surveyed recently); and, without a support call to go
by, a customer surveyed within the survey's fatigue days. Sampling needs a support call,
so an unattributed transfer is never sampled out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from prometheus_client import Counter
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import transfer_token
from core.models import (
    Attribution,
    CallAttempt,
    Channel,
    OptOut,
    RequestState,
    SmsConversation,
    Suppression,
    SurveyMode,
    SurveyRequest,
)
from core.runtime import Runtime
from core.survey import SurveyDefinition, UnknownSurvey
from core.survey_versions import version_for
from ivr import survey_call

log = logging.getLogger(__name__)

# States a survey of the caller may be in that mean it was (or is being) surveyed.
_SURVEYED = (
    RequestState.CALLING,
    RequestState.IN_PROGRESS,
    RequestState.COMPLETED,
    RequestState.PARTIAL,
    RequestState.ABANDONED,
    RequestState.OPTED_OUT,
)
# A callback not yet placed, which a transfer of its customer turns into an in-call one.
_NOT_CALLED_YET = (RequestState.PENDING, RequestState.SCHEDULED)
# Refusals of the dialing rules that concern calling the customer back only.
_CALLBACK_ONLY_SUPPRESSIONS = (
    Suppression.NO_CALLING_WINDOW.value,
    Suppression.EXPIRED.value,
    Suppression.CALL_CAP.value,
)
# Source call ids of unattributed surveys: "in-call:" and Twilio's CallSid.
UNATTRIBUTED_PREFIX = "in-call:"

# How transfers were found: an admin sees at a glance how many surveys the platform's
# token or the caller's number attributed, and how many ran unattributed. registry=None:
# each app's /metrics registry registers it (aftercall.observability).
TRANSFERS = Counter(
    "aftercall_in_call_transfers",
    "Customers transferred to the survey number, by how their support call was found "
    "(token, number, none) or why they were released (do_not_call, already_surveyed).",
    ["outcome"],
    registry=None,
)


@dataclass(frozen=True)
class Transferred:
    """The survey number's voice webhook, as Twilio posted it."""

    call_sid: str
    caller: str  # `From` as Twilio wrote it: E.164, or "anonymous", or worse
    token: str | None  # from the URL (a <Redirect>) or the DTMF digits after answering
    survey: str | None  # the survey the number's voice URL names (?survey=), if any


@dataclass(frozen=True)
class Released:
    """The caller is thanked and the call ends without a survey."""

    phrase: str  # "released" (do-not-call list) or "already_surveyed"
    language: str
    survey: str


Arrival = survey_call.Turn | Released


def arrive(runtime: Runtime, transferred: Transferred) -> Arrival:
    """Find the support call, open the inbound attempt, and start the survey.

    Safe to repeat: a webhook Twilio delivers again for the same CallSid resumes the
    attempt it opened the first time.
    """
    if not transferred.call_sid:
        return survey_call.NO_SUCH_CALL
    phone = _e164(transferred.caller)
    try:
        # Found, opened and started in one transaction: one commit for the transfer.
        with runtime.db.session() as session:
            attempt_id = _attempt_of(session, transferred.call_sid)
            if attempt_id is None:
                claimed = _claim(session, runtime, transferred, phone)
                if isinstance(claimed, Released):
                    # The same transfer delivered twice at once: the other delivery took
                    # the request and opened the attempt while this one waited for it.
                    attempt_id = _attempt_of(session, transferred.call_sid)
                    if attempt_id is None:
                        return claimed
                else:
                    attempt_id = _open_attempt(
                        session, claimed, transferred.call_sid, runtime.now()
                    )
            return survey_call.start_in(runtime, session, attempt_id, transferred.call_sid, None)
    except IntegrityError:
        # The same transfer delivered twice at once: the other delivery opened it.
        with runtime.db.session() as session:
            attempt_id = _attempt_of(session, transferred.call_sid)
        if attempt_id is None:
            raise
    return survey_call.start(runtime, attempt_id, transferred.call_sid, None)


def _claim(
    session: Session, runtime: Runtime, transferred: Transferred, phone: str | None
) -> int | Released:
    """The request the transfer surveys, moved to `calling` and attributed."""
    now = runtime.now()
    window = timedelta(seconds=runtime.settings.in_call_match_seconds)
    token_request = transfer_token.read(runtime.settings.secret_key, transferred.token)
    if transferred.token and token_request is None:
        log.warning("in-call transfer %s carried a token that is not ours", transferred.call_sid)
    # The do-not-call list, for the caller's number and for the number of the support
    # call the token names (a withheld caller ID, a platform that shows its own number).
    listed = [number for number in (phone, _phone_of(session, token_request)) if number]
    if listed and session.scalar(select(exists().where(OptOut.phone.in_(listed)))):
        if token_request is not None:
            _suppress_opted_out(session, token_request)
        TRANSFERS.labels("do_not_call").inc()
        return _released(runtime, transferred, "released")
    if token_request is not None and _take(
        session,
        token_request,
        Attribution.TOKEN,
        (SurveyRequest.state == RequestState.AWAITING_TRANSFER,),
        now,
    ):
        TRANSFERS.labels(Attribution.TOKEN.value).inc()
        return token_request
    if phone is not None:
        if _surveyed_since(session, phone, now - window):
            TRANSFERS.labels("already_surveyed").inc()
            return _released(runtime, transferred, "already_surveyed")
        refused = _latest_refusal(session, phone, now - window)
        for candidate, conditions in _number_matches(session, phone, now, window, refused):
            if _take(session, candidate, Attribution.NUMBER, conditions, now):
                TRANSFERS.labels(Attribution.NUMBER.value).inc()
                return candidate
        if refused is not None:
            # The dialing rules said no to this support call (not sampled, surveyed
            # recently, ...): the platform transferred the customer all the same.
            TRANSFERS.labels("suppressed").inc()
            return _released(runtime, transferred, "released")
        fatigue = _survey(runtime, transferred.survey).dialing.fatigue_days
        if fatigue and _surveyed_since(session, phone, now - timedelta(days=fatigue)):
            TRANSFERS.labels("surveyed_recently").inc()
            return _released(runtime, transferred, "released")
    TRANSFERS.labels(Attribution.NONE.value).inc()
    return _unattributed(session, runtime, transferred, phone, now)


def _number_matches(
    session: Session, phone: str, now: datetime, window: timedelta, refused: datetime | None
) -> list[tuple[int, tuple]]:
    """Requests of the caller's number a transfer may take, best first, each with the
    conditions that must still hold when it is taken. None whose support call ended
    before `refused`, the end of a newer support call the dialing rules refused: the
    transfer is that call's, not an older one's."""
    waiting = (
        SurveyRequest.state == RequestState.AWAITING_TRANSFER,
        SurveyRequest.transfer_expires_at > now,
    )
    not_called = (
        SurveyRequest.mode == SurveyMode.CALLBACK,
        SurveyRequest.state.in_(_NOT_CALLED_YET),
        SurveyRequest.calls_placed == 0,
        SurveyRequest.call_ended_at >= now - window,
        SurveyRequest.is_test.is_(False),
    )
    # A callback the rules refused only for want of calling hours or calls left: a
    # customer on the line needs neither.
    callback_only_refusal = (
        SurveyRequest.state == RequestState.SUPPRESSED,
        SurveyRequest.suppression_reason.in_(_CALLBACK_ONLY_SUPPRESSIONS),
        SurveyRequest.call_ended_at >= now - window,
        SurveyRequest.is_test.is_(False),
    )
    newer = () if refused is None else (SurveyRequest.call_ended_at >= refused,)
    found = []
    for conditions in (waiting, not_called, callback_only_refusal):
        conditions = (*conditions, *newer)
        request_id = session.scalar(
            select(SurveyRequest.id)
            .where(SurveyRequest.phone == phone, *conditions)
            .order_by(SurveyRequest.call_ended_at.desc())
            .limit(1)
        )
        if request_id is not None:
            found.append((request_id, conditions))
    return found


def _take(
    session: Session,
    request_id: int,
    attribution: Attribution,
    conditions: tuple,
    now: datetime,
) -> bool:
    """Move the request to `calling` as an in-call survey, if it still meets `conditions`
    (a token's request must still wait, before its deadline): one guarded UPDATE, so two
    transfers racing for one request cannot both take it."""
    taken = session.execute(
        update(SurveyRequest)
        .where(
            SurveyRequest.id == request_id,
            *conditions,
            SurveyRequest.transfer_expires_at.is_(None) | (SurveyRequest.transfer_expires_at > now),
        )
        .values(
            state=RequestState.CALLING,
            mode=SurveyMode.IN_CALL,
            # A request that was to be texted, taken by the customer on the line: a
            # voice survey now (its text had not gone out: not_called's states).
            channel=Channel.VOICE,
            attribution=attribution,
            transfer_expires_at=None,
            due_at=None,
            suppression_reason=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def _surveyed_since(session: Session, phone: str, since: datetime) -> bool:
    """Whether the caller was surveyed since `since`: transferred into a survey (within
    the match window: a second transfer of the same support call), or called or
    transferred for one, or texted one (within the survey's fatigue days)."""
    called = exists().where(
        CallAttempt.request_id == SurveyRequest.id,
        CallAttempt.created_at >= since,
        CallAttempt.status != "rejected",
        SurveyRequest.phone == phone,
        SurveyRequest.state.in_(_SURVEYED),
    )
    texted = exists().where(SmsConversation.phone == phone, SmsConversation.created_at >= since)
    return bool(session.scalar(select(called | texted)))


def _latest_refusal(session: Session, phone: str, since: datetime) -> datetime | None:
    """When the newest support call of the caller that the dialing rules refused, for a
    reason that holds in the call too (not sampled, surveyed recently, a survey under
    way), ended, if one ended since `since`."""
    return session.scalar(
        select(func.max(SurveyRequest.call_ended_at)).where(
            SurveyRequest.phone == phone,
            SurveyRequest.state == RequestState.SUPPRESSED,
            SurveyRequest.suppression_reason.not_in(_CALLBACK_ONLY_SUPPRESSIONS),
            SurveyRequest.call_ended_at >= since,
        )
    )


def _unattributed(
    session: Session,
    runtime: Runtime,
    transferred: Transferred,
    phone: str | None,
    now: datetime,
) -> int:
    """A survey that knows no support call yet: its answers count, as unattributed."""
    definition = _survey(runtime, transferred.survey)
    request = SurveyRequest(
        phone=phone or "",
        source_call_id=f"{UNATTRIBUTED_PREFIX}{transferred.call_sid}"[:200],
        language=definition.default_language,
        call_ended_at=now,
        extra={},
        survey_name=definition.name,
        survey_version_id=version_for(session, definition).id,
        state=RequestState.CALLING,
        mode=SurveyMode.IN_CALL,
        attribution=Attribution.NONE,
    )
    session.add(request)
    session.flush()
    return request.id


def _open_attempt(session: Session, request_id: int, call_sid: str, now: datetime) -> int:
    # The next number in the INSERT itself: a callback's refused attempts came first.
    number = (
        select(func.coalesce(func.max(CallAttempt.number), 0) + 1)
        .where(CallAttempt.request_id == request_id)
        .scalar_subquery()
    )
    attempt = CallAttempt(
        request_id=request_id,
        number=number,
        call_sid=call_sid,
        direction="inbound",
        status="in-progress",
        created_at=now,
        started_at=now,
    )
    session.add(attempt)
    session.flush()
    return attempt.id


def _phone_of(session: Session, request_id: int | None) -> str | None:
    if request_id is None:
        return None
    return session.scalar(select(SurveyRequest.phone).where(SurveyRequest.id == request_id))


def _attempt_of(session: Session, call_sid: str) -> int | None:
    return session.scalar(select(CallAttempt.id).where(CallAttempt.call_sid == call_sid))


def _suppress_opted_out(session: Session, request_id: int) -> None:
    session.execute(
        update(SurveyRequest)
        .where(
            SurveyRequest.id == request_id,
            SurveyRequest.state == RequestState.AWAITING_TRANSFER,
        )
        .values(
            state=RequestState.SUPPRESSED,
            suppression_reason=Suppression.OPTED_OUT.value,
            transfer_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _survey(runtime: Runtime, name: str | None) -> SurveyDefinition:
    """The survey the number's URL names, else the default one."""
    if name:
        try:
            return runtime.catalog.get(name)
        except UnknownSurvey:
            log.warning("survey number's URL names unknown survey %r; using the default", name)
    return runtime.catalog.get(runtime.settings.default_survey)


def _released(runtime: Runtime, transferred: Transferred, phrase: str) -> Released:
    definition = _survey(runtime, transferred.survey)
    return Released(phrase, definition.default_language, definition.name)


def _e164(caller: str) -> str | None:
    """The caller's number in E.164, or None for a withheld or unusable caller ID."""
    try:
        number = phonenumbers.parse(caller[:64], None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def attempt_for_call(runtime: Runtime, call_sid: str) -> int | None:
    """The inbound attempt a status callback of the survey number is about."""
    if not call_sid:
        return None
    with runtime.db.session() as session:
        return session.scalar(
            select(CallAttempt.id).where(
                CallAttempt.call_sid == call_sid, CallAttempt.direction == "inbound"
            )
        )
