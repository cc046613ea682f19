"""What the dialer learns of its calls: Twilio's status callbacks, and attempts lost.

Each status callback is recorded once (Twilio may deliver any of them more than once, or
late, and a repeated or late delivery changes nothing) and moves the call attempt
forward, never back. The final one also settles the request the attempt was for: a
person reached stays as the survey left it; an unanswered end (busy, no-answer, failed,
voicemail) leaves the dialer a retry to decide (dialer.dispatch.after_attempt). A lost
attempt (`record_lost()`, rare: dialer.settlement) is settled the same way.

The status callbacks' writes are Core statements on the caller's connection, for speed:
the event and the attempt's update in one statement on PostgreSQL (`record_progress()`,
`record_status()`). They do not flush ORM changes pending in a session first.
It knows nothing of HTTP: the voice webhooks (aftercall.web.voice) call it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Insert,
    Integer,
    Row,
    Update,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import param_like, utcnow
from core.models import (
    Answer,
    CallAttempt,
    CallEvent,
    RequestState,
    SurveyRequest,
)
from core.request_state import NOT_YET_REACHED, has_answers, move_request
from core.telephony import is_machine, parse_int

log = logging.getLogger(__name__)

# Twilio's CallStatus values in the order a call moves through them; a late or repeated
# callback for an earlier status never moves an attempt backwards.
_STATUS_ORDER = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# aftercall's own final status: Twilio never told how the call ended (dialer.settlement).
LOST = "lost"
_FINAL_RANK = 4
# How far along an attempt is, by status (0 for any other): in Python (`_rank()`) and
# in the status callbacks' SQL alike.
_RANK = {
    **_STATUS_ORDER,
    **{status: _FINAL_RANK for status in (*FINAL_STATUSES, LOST)},
}

_UNANSWERED_OUTCOMES = {
    "busy": RequestState.BUSY,
    "no-answer": RequestState.NO_ANSWER,
    "failed": RequestState.FAILED,
    "canceled": RequestState.CANCELED,
}

_ANSWERS = Answer.__table__
_ATTEMPTS = CallAttempt.__table__
_REQUESTS = SurveyRequest.__table__

# A status callback before the call's end (initiated, ringing, in-progress: three of a
# call's four) records an event and moves the attempt forward, nothing else; about half
# of the webhooks a survey call makes. Here in Core, guarded by the attempt's state in
# the statements themselves, on PostgreSQL in one statement (the event's INSERT in a
# CTE, the attempt's UPDATE after it): through the ORM (a SELECT, a SAVEPOINT for the
# event, an UPDATE, BEGIN and COMMIT) it cost twice an answer's CPU.
_EVENTS = CallEvent.__table__
_EVENT_FIELDS = ("status", "sequence_number", "occurred_at", "received_at", "params")


def _insert_event(
    dialect: ModuleType, *, request_in: frozenset[RequestState] | None = None
) -> Insert:
    # Once per attempt and status (the unique constraint decides), and only for the
    # attempt with this CallSid, or with none stored yet (see find_call()); with
    # `request_in`, only while the attempt's request is in one of those states.
    given = [param_like(name, _EVENTS.c[name]).label(name) for name in _EVENT_FIELDS]
    call_sid = param_like("call_sid", _ATTEMPTS.c.call_sid)
    the_attempt = select(_ATTEMPTS.c.id, *given).where(
        _ATTEMPTS.c.id == bindparam("attempt_id"),
        (_ATTEMPTS.c.call_sid == call_sid) | _ATTEMPTS.c.call_sid.is_(None),
    )
    if request_in is not None:
        states = [literal_column(f"'{state.value}'") for state in sorted(request_in)]
        the_attempt = the_attempt.where(
            exists().where(_REQUESTS.c.id == _ATTEMPTS.c.request_id, _REQUESTS.c.state.in_(states))
        )
    return (
        dialect.insert(_EVENTS)
        .from_select(["attempt_id", *_EVENT_FIELDS], the_attempt)
        .on_conflict_do_nothing(index_elements=[_EVENTS.c.attempt_id, _EVENTS.c.status])
        .returning(_EVENTS.c.attempt_id)
    )


_ADVANCE_ATTEMPT_VALUES = {
    "call_sid": func.coalesce(_ATTEMPTS.c.call_sid, param_like("call_sid", _ATTEMPTS.c.call_sid)),
    "started_at": case(
        (param_like("status", _EVENTS.c.status) == "initiated",
         func.coalesce(_ATTEMPTS.c.started_at, param_like("occurred_at", _EVENTS.c.occurred_at))),
        else_=_ATTEMPTS.c.started_at,
    ),
    "answered_at": case(
        (param_like("status", _EVENTS.c.status) == "in-progress",
         func.coalesce(_ATTEMPTS.c.answered_at, param_like("occurred_at", _EVENTS.c.occurred_at))),
        else_=_ATTEMPTS.c.answered_at,
    ),
    "answered_by": func.coalesce(
        param_like("answered_by", _ATTEMPTS.c.answered_by), _ATTEMPTS.c.answered_by
    ),
    # Never backwards: a late "ringing" after "in-progress", or after the end, is history.
    "status": case(
        (bindparam("rank", type_=Integer) >= case(_RANK, value=_ATTEMPTS.c.status, else_=0),
         param_like("status", _EVENTS.c.status)),
        else_=_ATTEMPTS.c.status,
    ),
}  # fmt: skip


# What a final status adds: when and how the call ended.
_END_ATTEMPT_VALUES = {
    **_ADVANCE_ATTEMPT_VALUES,
    "ended_at": param_like("occurred_at", _EVENTS.c.occurred_at),
    "duration_seconds": param_like("duration_seconds", _ATTEMPTS.c.duration_seconds),
    "sip_response_code": param_like("sip_response_code", _ATTEMPTS.c.sip_response_code),
    "error_code": param_like("error_code", _ATTEMPTS.c.error_code),
}
_ENDED = (_ATTEMPTS.c.request_id, _ATTEMPTS.c.number, _ATTEMPTS.c.answered_by)


@dataclass(frozen=True)
class _StatusStatements:
    """A status callback's writes: the event kept once, then the attempt updated only
    if the event was new. PostgreSQL: one statement; SQLite: the two in turn."""

    both: Update  # PostgreSQL: the event's INSERT in a CTE, the attempt's UPDATE after it
    event: Insert  # SQLite
    attempt: Update  # SQLite

    @classmethod
    def build(
        cls,
        values: dict[str, Any],
        returning: tuple[Column[Any], ...],
        *,
        request_in: frozenset[RequestState] | None = None,
    ) -> _StatusStatements:
        recorded = _insert_event(postgresql, request_in=request_in).cte("recorded")
        return cls(
            both=update(_ATTEMPTS)
            .where(_ATTEMPTS.c.id.in_(select(recorded.c.attempt_id)))
            .values(values)
            .add_cte(recorded)
            .returning(*returning),
            event=_insert_event(sqlite, request_in=request_in),
            attempt=update(_ATTEMPTS)
            .where(_ATTEMPTS.c.id == bindparam("attempt_id"))
            .values(values)
            .returning(*returning),
        )

    def run(self, connection: Connection, row: dict[str, Any]) -> Row[Any] | None:
        """The attempt's row as updated, or None if nothing was written."""
        if connection.dialect.name == "postgresql":
            return connection.execute(self.both, row).first()
        if connection.execute(self.event, row).first() is None:
            return None
        return connection.execute(self.attempt, row).first()


_RECORD_PROGRESS = _StatusStatements.build(_ADVANCE_ATTEMPT_VALUES, (_ATTEMPTS.c.id,))
_RECORD_END = _StatusStatements.build(_END_ATTEMPT_VALUES, _ENDED)
# Requests the end of a call can no longer change (`_request_outcome()` leaves them as
# they are, whatever the attempt; neither moves but from completed to opted out).
_SETTLED = frozenset({RequestState.COMPLETED, RequestState.OPTED_OUT})
_RECORD_SETTLED_END = _StatusStatements.build(
    _END_ATTEMPT_VALUES, (_ATTEMPTS.c.id,), request_in=_SETTLED
)
# The request whose attempt just ended, locked until the unit of work ends: a webhook
# finishing the survey, or the dialer claiming the next attempt, at the same moment
# waits, or has already committed. Its state and latest attempt are read after the lock,
# in a statement of their own: one that waited for the lock would see the row as now
# committed but its subqueries as they were before the wait (READ COMMITTED).
_LOCK_REQUEST = (
    select(_REQUESTS.c.id)
    .where(_REQUESTS.c.id == bindparam("request_id"))
    .with_for_update(of=_REQUESTS)
)
_REQUEST_AT_END = select(
    _REQUESTS.c.state,
    select(func.max(_ATTEMPTS.c.number))
    .where(_ATTEMPTS.c.request_id == _REQUESTS.c.id)
    .scalar_subquery()
    .label("latest"),
).where(_REQUESTS.c.id == bindparam("request_id"))


def is_progress(status: str) -> bool:
    """A CallStatus of a call not yet over (initiated, ringing, in-progress)."""
    return status in _STATUS_ORDER


def record_progress(
    connection: Connection, attempt_id: int, call_sid: str, params: Mapping[str, str]
) -> bool:
    """Apply a status callback of a call not yet over (`is_progress()`): the event kept
    once, the attempt moved forward, never back. Duplicates, late ones and callbacks
    with another attempt's CallSid change nothing. Returns True if this callback was
    recorded. One statement on PostgreSQL, the caller's whole unit of work
    (`Database.single_statement()`); two on SQLite, in the caller's transaction."""
    status = params["CallStatus"]
    assert is_progress(status), status
    if not call_sid:
        return False
    row = _status_row(attempt_id, call_sid, status, params)
    return _RECORD_PROGRESS.run(connection, row) is not None


def _status_row(
    attempt_id: int, call_sid: str, status: str, params: Mapping[str, str]
) -> dict[str, Any]:
    # The parameters of a status callback's statements (_StatusStatements): the
    # CallEvent's columns, and what the attempt's update needs.
    return {
        "attempt_id": attempt_id,
        "call_sid": call_sid,
        "rank": _rank(status),
        "answered_by": (params.get("AnsweredBy") or "")[:32] or None,
        "status": status,
        "sequence_number": parse_int(params.get("SequenceNumber")),
        "occurred_at": _timestamp(params.get("Timestamp")) or utcnow(),
        "received_at": utcnow(),
        "params": {k: v[:200] for k, v in params.items() if k in _KEPT_PARAMS},
    }


@dataclass(frozen=True)
class AttemptEnded:
    """A final status ended an attempt: its request, and the request's state now."""

    request_id: int
    request_state: RequestState


def record_status(
    connection: Connection, attempt_id: int, call_sid: str, params: Mapping[str, str]
) -> AttemptEnded | None:
    """Apply a final status callback (the call is over; progress goes through
    `record_progress()`) and settle the request the attempt was for, in the caller's
    transaction. Duplicates, late ones and callbacks with another attempt's CallSid
    change nothing.

    Returns what ended when this callback ended the attempt (the first final status),
    else None.
    """
    status = params.get("CallStatus", "")
    if status not in FINAL_STATUSES:
        log.warning("attempt %s: ignoring CallStatus %r", attempt_id, status[:40])
        return None
    if not call_sid:
        return None
    ended = _RECORD_END.run(connection, _end_row(attempt_id, call_sid, status, params))
    if ended is None:
        return None
    request_id, number, answered_by = ended
    connection.execute(_LOCK_REQUEST, {"request_id": request_id})
    state, latest = connection.execute(_REQUEST_AT_END, {"request_id": request_id}).one()
    if number != latest:
        # A late callback for an earlier attempt says nothing about the request.
        return AttemptEnded(request_id, state)
    outcome = _request_outcome(
        state,
        status,
        machine=is_machine(answered_by),
        has_answers=lambda: has_answers(connection, request_id),
    )
    if outcome is None:
        return AttemptEnded(request_id, state)
    move_request(connection, request_id, outcome, when_in=[state])
    return AttemptEnded(request_id, outcome)


def record_settled_end(
    connection: Connection, attempt_id: int, call_sid: str, params: Mapping[str, str]
) -> bool:
    """A final status for an attempt whose request is settled (completed or opted out:
    nothing the end of a call changes, `_request_outcome()`), as an answered survey
    call's end nearly always is: the event and the attempt's end, no lock on the
    request; on PostgreSQL one statement, the caller's whole unit of work
    (`Database.single_statement()`), where `record_status()` takes three in a
    transaction; two on SQLite. Returns True if recorded; False, with nothing written,
    for any other request, or a duplicate: `record_status()` then takes it."""
    status = params.get("CallStatus", "")
    if status not in FINAL_STATUSES or not call_sid:
        return False
    row = _end_row(attempt_id, call_sid, status, params)
    return _RECORD_SETTLED_END.run(connection, row) is not None


def _end_row(
    attempt_id: int, call_sid: str, status: str, params: Mapping[str, str]
) -> dict[str, Any]:
    return {
        **_status_row(attempt_id, call_sid, status, params),
        "duration_seconds": parse_int(params.get("CallDuration")),
        "sip_response_code": parse_int(params.get("SipResponseCode")),
        "error_code": (params.get("ErrorCode") or "")[:16] or None,
    }


def record_lost(session: Session, attempt: CallAttempt, at: datetime) -> bool:
    """Nobody can tell how the attempt ended: Twilio has no such call, or the attempt
    never got a CallSid. It becomes `lost` and still counts toward the request's limits
    (the customer may have been called). A request still `calling` becomes `failed`,
    with a due time, so the dialer's follow-up decides about a retry; one `in_progress`
    ends `partial` or `abandoned` like any hang-up.

    Returns True when this ended the attempt (False if it had already ended).
    """
    if _rank(attempt.status) == _FINAL_RANK:
        return False
    attempt.status = LOST
    attempt.ended_at = at
    request = attempt.request
    if attempt.number != max(a.number for a in request.attempts):
        return True
    outcome = _request_outcome(
        request.state,
        LOST,
        machine=False,
        has_answers=lambda: has_answers(session.connection(), request.id),
    )
    if outcome is not None:
        request.state = outcome
    if outcome is RequestState.FAILED and request.due_at is None:
        request.due_at = attempt.created_at
    return True


def _request_outcome(
    state: RequestState, status: str, *, machine: bool, has_answers: Callable[[], bool]
) -> RequestState | None:
    """What the end of a request's latest attempt, with a final `status` (or `lost`),
    makes of the request in `state`; None: the request stays as it is."""
    if state is RequestState.IN_PROGRESS:
        # Hung up before the end of the survey.
        return RequestState.PARTIAL if has_answers() else RequestState.ABANDONED
    if status == LOST:
        # Nobody knows whether the phone rang: the dialer's follow-up decides.
        return RequestState.FAILED if state is RequestState.CALLING else None
    if state in NOT_YET_REACHED - {RequestState.VOICEMAIL}:
        if status == "completed":
            return RequestState.VOICEMAIL if machine else RequestState.ABANDONED
        return _UNANSWERED_OUTCOMES[status]
    return None


_KEPT_PARAMS = frozenset(
    {
        "CallStatus", "CallDuration", "Duration", "SipResponseCode", "AnsweredBy",
        "Timestamp", "SequenceNumber", "CallbackSource", "ErrorCode", "ErrorMessage",
    }
)  # fmt: skip


def _rank(status: str) -> int:
    return _RANK.get(status, 0)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None
