"""The dialing rules: whether a finished support call may be surveyed, and when.

Checked at intake (to accept or suppress the request and plan its first call) and
again just before every call (an opt-out may have arrived, a window may have closed).
Each rule is configurable per survey (`[dialing]`), except the floors that protect the
customer whatever the configuration says:

- calling hours never wider than 08:00-21:00 local (dialer.calling_hours);
- at most `HARD_CAP_CALLS` calls to one number in any `HARD_CAP_DAYS` days, across all
  surveys (the US exemption for non-marketing survey calls assumes a low volume);
- a number on the do-not-call list is never called.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, String, any_, bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from core.models import (
    Attribution,
    CallAttempt,
    Channel,
    OptOut,
    RequestState,
    SmsConversation,
    Suppression,
    SurveyRequest,
)
from core.survey import DialingSettings, SurveyDefinition
from dialer.calling_hours import CallingWindow
from dialer.chunking import chunks

HARD_CAP_CALLS = 3
HARD_CAP_DAYS = 30
# The longest fatigue period a survey may set (core.survey validates it).
MAX_FATIGUE_DAYS = 365
# Attempt statuses that mean no call reached the network: Twilio refused the request
# (status "rejected" is aftercall's own marker for that). They count for nothing.
NOT_PLACED = frozenset({"rejected"})
# Requests that already have a survey on its way to the same number.
_UNDER_WAY = (
    RequestState.PENDING,
    RequestState.SCHEDULED,
    RequestState.CALLING,
    RequestState.IN_PROGRESS,
    RequestState.AWAITING_TRANSFER,
    RequestState.TEXTING,
)


def for_channel(definition: SurveyDefinition, channel: Channel) -> DialingSettings:
    """The survey's dialing rules for a request on `channel`: a text goes out inside the
    messaging hours (`[sms] hours`) instead of the calling hours; every other rule
    (sampling, fatigue, delay, validity, Sundays) is the same."""
    if channel is Channel.VOICE:
        return definition.dialing
    return replace(definition.dialing, calling_hours=definition.sms.hours)


def is_sampled(source_call_id: str, percent: float) -> bool:
    """Deterministic per source call: a re-sent call gets the same decision."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(source_call_id.encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000
    return bucket < percent * 100


def window_for(settings: DialingSettings) -> CallingWindow:
    opens, closes = settings.calling_hours
    return CallingWindow(opens=opens, closes=closes, allow_sundays=settings.allow_sundays)


def valid_until(call_ended_at: datetime, settings: DialingSettings) -> datetime:
    return call_ended_at + timedelta(hours=settings.valid_hours)


def is_opted_out(session: Session, phone: str) -> bool:
    return session.scalar(select(OptOut.id).where(OptOut.phone == phone)) is not None


def calls_placed_since(session: Session, phone: str, since: datetime) -> int:
    """Calls actually placed to `phone` since `since`, for any survey, whatever their outcome."""
    return session.scalar(
        select(func.count(CallAttempt.id))
        .join(CallAttempt.request)
        .where(
            SurveyRequest.phone == phone,
            CallAttempt.created_at >= since,
            CallAttempt.status.not_in(NOT_PLACED),
            # A customer transferred into an in-call survey was not called.
            CallAttempt.direction == "outbound",
        )
    )


@dataclass
class NumberHistory:
    """What intake needs to know about a set of numbers, loaded in three queries.

    Intake decides a whole batch against one snapshot and updates it as it accepts
    calls, so two calls in the same batch for the same number see each other.
    """

    opted_out: set[str] = field(default_factory=set)
    under_way: set[str] = field(default_factory=set)
    # When calls were placed to each number within the last HARD_CAP_DAYS days.
    placed: dict[str, list[datetime]] = field(default_factory=dict)
    # When each number was last surveyed in a support call (in-call surveys): fatigue
    # counts them, the call cap does not (nobody was called).
    transferred: dict[str, list[datetime]] = field(default_factory=dict)
    # When each number was texted a survey (sms/): fatigue counts them too.
    texted: dict[str, list[datetime]] = field(default_factory=dict)
    # Numbers with an in-call survey that knows no support call yet, which a call-ended
    # event may claim (dialer.in_call): only those need looking for one.
    unattributed: set[str] = field(default_factory=set)

    def accepted(self, phone: str) -> None:
        self.under_way.add(phone)


def among(session: Session, column: ColumnElement[str], values: list[str]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter instead
    of one per value, which psycopg would otherwise splice into the statement in Python
    (the costliest part of a bulk intake's queries)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String)))
    return column.in_(values)


def load_history(session: Session, phones: Iterable[str], now: datetime) -> NumberHistory:
    history = NumberHistory()
    wanted = sorted(set(phones))
    since = now - timedelta(days=max(HARD_CAP_DAYS, MAX_FATIGUE_DAYS))
    for chunk in chunks(wanted, 1000):
        history.opted_out.update(
            session.scalars(select(OptOut.phone).where(among(session, OptOut.phone, chunk)))
        )
        history.under_way.update(
            session.scalars(
                select(SurveyRequest.phone).where(
                    among(session, SurveyRequest.phone, chunk), SurveyRequest.state.in_(_UNDER_WAY)
                )
            )
        )
        rows = session.execute(
            select(SurveyRequest.phone, CallAttempt.created_at, CallAttempt.direction)
            .join(CallAttempt.request)
            .where(
                among(session, SurveyRequest.phone, chunk),
                CallAttempt.created_at >= since,
                CallAttempt.status.not_in(NOT_PLACED),
            )
        )
        history.unattributed.update(
            session.scalars(
                select(SurveyRequest.phone).where(
                    among(session, SurveyRequest.phone, chunk),
                    SurveyRequest.attribution == Attribution.NONE,
                )
            )
        )
        texts = session.execute(
            select(SmsConversation.phone, SmsConversation.created_at).where(
                among(session, SmsConversation.phone, chunk), SmsConversation.created_at >= since
            )
        )
        for phone, created_at in texts:
            history.texted.setdefault(phone, []).append(created_at)
        for phone, created_at, direction in rows:
            times = history.placed if direction == "outbound" else history.transferred
            times.setdefault(phone, []).append(created_at)
    return history


def intake_suppression(
    history: NumberHistory,
    phone: str,
    source_call_id: str,
    settings: DialingSettings,
    now: datetime,
) -> Suppression | None:
    """Why a new request for `phone` must not be surveyed, or None if it may be."""
    if phone in history.opted_out:
        return Suppression.OPTED_OUT
    if not is_sampled(source_call_id, settings.sample_percent):
        return Suppression.NOT_SAMPLED
    if phone in history.under_way:
        return Suppression.SURVEY_UNDER_WAY
    placed = history.placed.get(phone, [])
    surveyed = placed + history.transferred.get(phone, []) + history.texted.get(phone, [])
    fatigue_since = now - timedelta(days=settings.fatigue_days)
    if settings.fatigue_days and any(at >= fatigue_since for at in surveyed):
        return Suppression.SURVEYED_RECENTLY
    cap_since = now - timedelta(days=HARD_CAP_DAYS)
    if sum(1 for at in placed if at >= cap_since) >= HARD_CAP_CALLS:
        return Suppression.CALL_CAP
    return None


def call_time_suppression(session: Session, phone: str, now: datetime) -> Suppression | None:
    """The floors re-checked right before dialing (the request was accepted earlier)."""
    if is_opted_out(session, phone):
        return Suppression.OPTED_OUT
    if calls_placed_since(session, phone, now - timedelta(days=HARD_CAP_DAYS)) >= HARD_CAP_CALLS:
        return Suppression.CALL_CAP
    return None


def next_call_time(
    earliest: datetime,
    call_ended_at: datetime,
    settings: DialingSettings,
    zones: list[ZoneInfo],
) -> datetime | Suppression:
    """The first moment at or after `earliest` the customer may be called, or why never."""
    opening = window_for(settings).opens_at(earliest, zones)
    if opening is None:
        return Suppression.NO_CALLING_WINDOW
    if opening >= valid_until(call_ended_at, settings):
        return Suppression.EXPIRED
    return opening


def first_call_time(
    now: datetime, call_ended_at: datetime, settings: DialingSettings, zones: list[ZoneInfo]
) -> datetime | Suppression:
    earliest = max(now, call_ended_at + timedelta(minutes=settings.delay_minutes))
    return next_call_time(earliest, call_ended_at, settings, zones)


def retry_delay(settings: DialingSettings, attempts_made: int) -> timedelta:
    """Backoff before attempt `attempts_made + 1`."""
    minutes = settings.retry_minutes
    return timedelta(minutes=minutes[min(attempts_made - 1, len(minutes) - 1)])


# SIP responses that say the number itself is wrong: retrying cannot help.
PERMANENT_SIP_FAILURES = frozenset({404, 410, 484, 604})


def is_retryable(state: RequestState, sip_code: int | None, settings: DialingSettings) -> bool:
    if state in (RequestState.NO_ANSWER, RequestState.BUSY):
        return True
    if state is RequestState.VOICEMAIL:
        return settings.retry_voicemail
    if state is RequestState.FAILED:
        return sip_code not in PERMANENT_SIP_FAILURES
    return False
