"""Intake: a support call ended; record it as a survey request, or say why not.

The same path for every source (API, CLI, CSV): the phone number must be a real,
callable number (parsed and normalised to E.164 with phonenumbers), the survey must
exist, and the same source call is never surveyed twice; invalid input writes nothing.
Then the dialing rules (dialer.rules) either plan the first call or suppress the
request, which is stored with its reason so that every suppressed call is counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import phonenumbers
from sqlalchemy import Row, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import utcnow
from core.models import Channel, RequestState, Suppression, SurveyMode, SurveyRequest
from core.runtime import Runtime
from core.survey import SurveyCatalog, SurveyDefinition, UnknownSurvey
from core.survey_versions import version_for
from dialer import in_call, rules, scheduling
from dialer.calling_hours import zones_for_parsed
from dialer.chunking import chunks

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


def parse_phone(
    raw: str, default_region: str | None = None
) -> tuple[str, phonenumbers.PhoneNumber, phonenumbers.PhoneNumberType]:
    """The number in E.164, parsed, with its type; or IntakeRejected saying why it cannot be called.

    A number is valid exactly when the numbering plan gives it a type (phonenumbers'
    is_valid_number matches the same patterns again), so the type is looked up once.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IntakeRejected(
            Rejection.INVALID_PHONE, f"{raw!r} is not a phone number ({exc})"
        ) from None
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise IntakeRejected(Rejection.INVALID_PHONE, f"{raw!r} is not a valid phone number")
    if kind not in CALLABLE_TYPES:
        raise IntakeRejected(
            Rejection.UNCALLABLE_PHONE, f"{raw!r} is not a number a survey can call"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number, kind


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164, or IntakeRejected saying why it cannot be called."""
    e164, _, _ = parse_phone(raw, default_region)
    return e164


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


@dataclass(frozen=True)
class CheckedCall:
    """A call that passed every check that needs no database: what intake stores."""

    ended: CallEnded
    phone: str  # E.164
    number: phonenumbers.PhoneNumber
    kind: phonenumbers.PhoneNumberType
    definition: SurveyDefinition
    channel: Channel


def check_call(catalog: SurveyCatalog, ended: CallEnded, settings: Settings) -> CheckedCall:
    """The call's fields checked and normalised, or IntakeRejected saying why not."""
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
    phone, number, kind = parse_phone(ended.phone, settings.default_region or None)
    survey_name = ended.survey or settings.default_survey
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
    if channel.texts and kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        raise IntakeRejected(
            Rejection.UNCALLABLE_PHONE, f"{phone} is a landline: it cannot take texts"
        )
    return CheckedCall(ended, phone, number, kind, definition, channel)


def register_call(
    session: Session,
    catalog: SurveyCatalog,
    ended: CallEnded,
    *,
    now: datetime,
    settings: Settings,
    history: rules.NumberHistory | None = None,
) -> IntakeResult:
    """One call, validated, decided and stored in one savepoint: accept_calls for a
    single call inside the caller's transaction (dialer.trial_call's sibling)."""
    try:
        checked = check_call(catalog, ended, settings)
    except IntakeRejected as exc:
        return _rejected(ended, exc)
    if history is None:
        history = rules.load_history(session, [checked.phone], now)
    return _register_one(session, checked, now=now, settings=settings, history=history)


def _register_one(
    session: Session,
    checked: CheckedCall,
    *,
    now: datetime,
    settings: Settings,
    history: rules.NumberHistory,
) -> IntakeResult:
    """The row-at-a-time path, for the calls the set-based one leaves to it: in-call
    requests (they get a transfer token, which needs their id) and calls whose customer
    may be answering an in-call survey already (which the call then joins).

    A call the rules suppress is stored as a `suppressed` request with its reason, so
    reports can count it; an accepted in-call request is `awaiting_transfer` with its
    transfer token. A call whose customer is already answering an in-call survey that
    did not know the call (the event came late) is attached to that survey instead: it
    is never called back.
    """
    request = _request_for(session, checked)
    if request.phone in history.unattributed:
        window = timedelta(seconds=settings.in_call_match_seconds)
        surveyed = in_call.unattributed_survey(
            session, request.phone, request.call_ended_at, window
        )
        if surveyed is not None:
            return _attach(session, surveyed, request)
    outcome = _decide(checked, history, now, settings)
    if outcome is None:
        in_call.await_transfer(request, settings, now)
    elif isinstance(outcome, Suppression):
        request.state = RequestState.SUPPRESSED
        request.suppression_reason = outcome.value
    else:
        request.state = RequestState.SCHEDULED
        request.due_at = outcome
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        return _duplicate(checked)
    if isinstance(outcome, Suppression):
        return _suppressed(checked, request.id, outcome)
    history.accepted(request.phone)
    return IntakeResult(
        checked.ended.source_call_id,
        request_id=request.id,
        due_at=request.due_at,
        mode=request.mode,
        channel=request.channel,
        transfer=in_call.Transfer.of(settings, request),
    )


def _decide(
    checked: CheckedCall, history: rules.NumberHistory, now: datetime, settings: Settings
) -> datetime | Suppression | None:
    """The dialing rules' verdict: the first call time, why not, or None for an
    accepted in-call request (the customer is still on the line: calling hours and the
    delay do not apply)."""
    dialing = rules.for_channel(checked.definition, checked.channel)
    suppression = rules.intake_suppression(
        history, checked.phone, checked.ended.source_call_id, dialing, now
    )
    if suppression is not None:
        return suppression
    if checked.ended.mode is SurveyMode.IN_CALL:
        return None
    return rules.first_call_time(
        now,
        checked.ended.ended_at,
        dialing,
        zones_for_parsed(checked.number, checked.kind, settings.fallback_time_zone),
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
    """Intake for a batch, set-based: one result per call, in order, all stored in one
    transaction, then the accepted callbacks queued for their call time.

    Each call is checked and normalised in Python (no database), the batch's numbers'
    history and already-stored source calls are read in a few queries, every dialing
    rule is decided against that snapshot (updated as calls are accepted, so two calls
    for one number in the batch see each other), and the decided requests are stored
    with one `INSERT ... ON CONFLICT DO NOTHING RETURNING` per thousand. A bad row is
    decided and reported on its own and spoils nothing; a source call another intake
    stored meanwhile comes back as a duplicate. Only in-call requests and calls that may
    join an in-call survey take the row-at-a-time path (`_register_one`).

    A failure to reach Redis after the commit loses nothing: the requests are stored
    as scheduled, and reconciliation queues them (dialer.scheduling.reconcile).
    """
    settings = runtime.settings
    now = runtime.now()
    calls = list(calls)
    results: list[IntakeResult | None] = [None] * len(calls)
    checked: list[tuple[int, CheckedCall]] = []
    for index, ended in enumerate(calls):
        try:
            checked.append((index, check_call(runtime.catalog, ended, settings)))
        except IntakeRejected as exc:
            results[index] = _rejected(ended, exc)
    with runtime.db.session() as session:
        history = rules.load_history(session, [call.phone for _, call in checked], now)
        sent_before = _stored_source_calls(session, [c.ended.source_call_id for _, c in checked])
        pending: list[tuple[int, CheckedCall, datetime | Suppression]] = []
        for index, call in checked:
            source_call_id = call.ended.source_call_id
            if source_call_id in sent_before:
                results[index] = _duplicate(call)
                continue
            sent_before.add(source_call_id)
            if call.ended.mode is SurveyMode.IN_CALL or call.phone in history.unattributed:
                results[index] = _register_one(
                    session, call, now=now, settings=settings, history=history
                )
                continue
            outcome = _decide(call, history, now, settings)
            assert outcome is not None  # only an in-call request is accepted without a time
            if not isinstance(outcome, Suppression):
                history.accepted(call.phone)
            pending.append((index, call, outcome))
        # One creation time for the batch's rows, as one statement would give them.
        stamp = utcnow()
        stored = _insert_requests(
            session, [_row(session, call, outcome, stamp) for _, call, outcome in pending]
        )
        for index, call, outcome in pending:
            request_id = stored.get(call.ended.source_call_id)
            if request_id is None:
                results[index] = _duplicate(call)  # another intake stored it meanwhile
            elif isinstance(outcome, Suppression):
                results[index] = _suppressed(call, request_id, outcome)
            else:
                results[index] = IntakeResult(
                    call.ended.source_call_id,
                    request_id=request_id,
                    due_at=outcome,
                    mode=call.ended.mode,
                    channel=call.channel,
                )
    decided = [result for result in results if result is not None]
    assert len(decided) == len(calls)
    scheduling.enqueue_first_calls(
        runtime, [(r.request_id, r.due_at) for r in decided if r.accepted and r.due_at]
    )
    for result in decided:
        if result.attached and result.request_id is not None:
            in_call.realign_answers(runtime, result.request_id)
    return decided


def _stored_source_calls(session: Session, source_call_ids: list[str]) -> set[str]:
    stored: set[str] = set()
    wanted = sorted(set(source_call_ids))
    for chunk in chunks(wanted, _CHUNK):
        stored.update(
            session.scalars(
                select(SurveyRequest.source_call_id).where(
                    rules.among(session, SurveyRequest.source_call_id, chunk)
                )
            )
        )
    return stored


def _row(
    session: Session, call: CheckedCall, outcome: datetime | Suppression, stamp: datetime
) -> dict[str, Any]:
    """The survey_requests row of a decided callback or text request, created and updated
    at `stamp` (the batch's)."""
    ended = call.ended
    suppressed = isinstance(outcome, Suppression)
    return {
        "phone": call.phone,
        "source_call_id": ended.source_call_id,
        "api_key_id": ended.api_key_id,
        "agent": ended.agent,
        "queue": ended.queue,
        "team": ended.team,
        "language": (ended.language or "en").lower(),
        "call_ended_at": ended.ended_at,
        "metadata": dict(ended.metadata),
        "survey_name": call.definition.name,
        "survey_version_id": version_for(session, call.definition).id,
        "state": RequestState.SUPPRESSED if suppressed else RequestState.SCHEDULED,
        "suppression_reason": outcome.value if suppressed else None,
        "due_at": None if suppressed else outcome,
        "mode": ended.mode,
        "channel": call.channel,
        "created_at": stamp,
        "updated_at": stamp,
    }


def _insert_requests(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows a thousand per statement; the ids of those stored, by source call
    id. A row whose source call is already stored (another intake won the race) is
    skipped by the unique constraint, not an error."""
    stored: dict[str, int] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for chunk in chunks(rows, _CHUNK):
        inserted = _insert_arrays(session, chunk) if postgres else _insert_values(session, chunk)
        stored.update((source_call_id, id_) for source_call_id, id_ in inserted)
    return stored


def _insert_values(session: Session, rows: list[dict[str, Any]]) -> Sequence[Row[tuple[str, int]]]:
    """`INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING`: SQLite."""
    table = SurveyRequest.__table__
    statement = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.source_call_id])
        .returning(table.c.source_call_id, table.c.id)
    )
    return session.execute(statement, rows).all()


# survey_requests' columns as intake fills them, with their PostgreSQL array types.
_ARRAY_COLUMNS = {
    "phone": "text", "source_call_id": "text", "api_key_id": "int", "agent": "text",
    "queue": "text", "team": "text", "language": "text", "call_ended_at": "timestamptz",
    "metadata": "json", "survey_name": "text", "survey_version_id": "int", "state": "text",
    "suppression_reason": "text", "due_at": "timestamptz", "mode": "text",
    "channel": "text", "created_at": "timestamptz", "updated_at": "timestamptz",
}  # fmt: skip
_INSERT_ARRAYS = (
    f"INSERT INTO survey_requests ({', '.join(_ARRAY_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%({name})s::{kind}[]' for name, kind in _ARRAY_COLUMNS.items())}) "
    "ON CONFLICT (source_call_id) DO NOTHING RETURNING source_call_id, id"
)


def _insert_arrays(session: Session, rows: list[dict[str, Any]]) -> Sequence[Row[tuple[str, int]]]:
    """The same INSERT on PostgreSQL, with one array per column (`SELECT * FROM
    unnest(...)`) instead of a placeholder per value: psycopg rewrites a statement's
    placeholders in Python, which for 18,000 of them cost more than the insert."""
    arrays: dict[str, list[Any]] = {name: [] for name in _ARRAY_COLUMNS}
    for row in rows:
        for name, values in arrays.items():
            value = row[name]
            if name == "metadata":
                value = json.dumps(value)
            elif isinstance(value, StrEnum):
                value = value.value
            values.append(value)
    return session.connection().exec_driver_sql(_INSERT_ARRAYS, arrays).all()


def _request_for(session: Session, checked: CheckedCall) -> SurveyRequest:
    ended = checked.ended
    # A source call sent before is caught by the unique constraint when the request is
    # inserted, which also covers two intakes racing with the same call.
    return SurveyRequest(
        phone=checked.phone,
        source_call_id=ended.source_call_id,
        api_key_id=ended.api_key_id,
        agent=ended.agent,
        queue=ended.queue,
        team=ended.team,
        language=(ended.language or "en").lower(),
        call_ended_at=ended.ended_at,
        extra=dict(ended.metadata),
        survey_name=checked.definition.name,
        survey_version_id=version_for(session, checked.definition).id,
        channel=checked.channel,
        mode=ended.mode,
    )


def _rejected(ended: CallEnded, exc: IntakeRejected) -> IntakeResult:
    return IntakeResult(
        ended.source_call_id,
        reason=exc.reason.value,
        detail=exc.detail,
        mode=ended.mode,
        channel=ended.channel or Channel.VOICE,
    )


def _duplicate(checked: CheckedCall) -> IntakeResult:
    return IntakeResult(
        checked.ended.source_call_id,
        reason=Rejection.DUPLICATE.value,
        detail=f"call {checked.ended.source_call_id!r} was already sent",
        mode=checked.ended.mode,
        channel=checked.channel,
    )


def _suppressed(checked: CheckedCall, request_id: int | None, why: Suppression) -> IntakeResult:
    return IntakeResult(
        checked.ended.source_call_id,
        request_id=request_id,
        reason=why.value,
        detail=_SUPPRESSION_DETAILS[why],
        mode=checked.ended.mode,
        channel=checked.channel,
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


# Rows per statement (and per IN list): well inside both engines' parameter limits.
_CHUNK = 1000
_LANGUAGE = re.compile(r"^[A-Za-z]{2}([-_][A-Za-z]{2})?$")
