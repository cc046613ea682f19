"""What ivr/ writes: call progress, answers, opt-outs and outcomes, one webhook at a time.

Each function takes a session and plain values, does its writes inside the caller's
unit of work (so a webhook commits everything or nothing; `answer_question()` may also
be the whole unit of work, one statement on a connection of its own), and is safe to
run twice:
Twilio may deliver any webhook more than once, and a repeated delivery must change
nothing. Flask views call these; they know nothing of HTTP.

The survey webhooks' reads and writes (`find_call()` and what takes a LiveCall) are Core
statements on the session's connection, for speed: they do not flush ORM changes
pending in the session first, so flush before calling them if they must see one.
So are the status callbacks': the event and the attempt's update in one statement on
PostgreSQL (`record_progress()`, `record_status()`). A lost attempt (`record_lost()`,
rare: dialer.settlement) is settled on ORM objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    CompoundSelect,
    Connection,
    Insert,
    Integer,
    Row,
    Select,
    Update,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aftercall.db import utcnow
from aftercall.models import (
    REPORT_FIELDS,
    Answer,
    CallAttempt,
    CallEvent,
    OptOut,
    RequestState,
    SurveyRequest,
    SurveyVersion,
)
from aftercall.survey import Question, SurveyCatalog, SurveyDefinition, UnknownSurvey
from aftercall.survey_versions import DIGEST_PREFIX, definition_of, known_definition, version_for

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

# States in which nobody has been reached yet on the current attempt.
_NOT_YET_REACHED = frozenset(
    {
        RequestState.PENDING,
        RequestState.SCHEDULED,
        RequestState.CALLING,
        RequestState.NO_ANSWER,
        RequestState.BUSY,
        RequestState.FAILED,
        RequestState.VOICEMAIL,
    }
)
# States a keypad opt-out or the end of the survey can still change.
_OPEN_TO_OPT_OUT = frozenset(RequestState) - {RequestState.OPTED_OUT}
_OPEN_TO_FINISH = frozenset(RequestState) - {RequestState.OPTED_OUT, RequestState.COMPLETED}
# Attempt statuses before anyone picked up (what start_survey moves to in-progress).
_BEFORE_ANSWER = ("queued", "initiated", "ringing")
_UNANSWERED_OUTCOMES = {
    "busy": RequestState.BUSY,
    "no-answer": RequestState.NO_ANSWER,
    "failed": RequestState.FAILED,
    "canceled": RequestState.CANCELED,
}


# The survey webhooks' statements, built once: SQLAlchemy then finds their compiled form
# by a cache key memoized on the statement instead of building and hashing a new
# statement per webhook (bench.webhook_profile showed that as much of the CPU time).
# They are Core statements over plain rows: loading the attempt and its request as ORM
# objects cost the answer webhook about 0.7 ms of CPU more than the same SELECT in Core.
_ANSWERS = Answer.__table__
_ATTEMPTS = CallAttempt.__table__
_REQUESTS = SurveyRequest.__table__
_VERSIONS = SurveyVersion.__table__
_CALL = (
    select(
        _ATTEMPTS.c.call_sid,
        _REQUESTS.c.id.label("request_id"),
        _REQUESTS.c.survey_name,
        _REQUESTS.c.language,
        _REQUESTS.c.survey_version_id,
        _VERSIONS.c.content_sha256,
    )
    .select_from(
        _ATTEMPTS.join(_REQUESTS, _REQUESTS.c.id == _ATTEMPTS.c.request_id).outerjoin(
            _VERSIONS, _VERSIONS.c.id == _REQUESTS.c.survey_version_id
        )
    )
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"))
)
_ANSWERS_OF_REQUEST = select(_ANSWERS.c.question_key, _ANSWERS.c.value).where(
    _ANSWERS.c.request_id == bindparam("request_id")
)
_HAS_ANSWERS = (
    select(_ANSWERS.c.id).where(_ANSWERS.c.request_id == bindparam("request_id")).limit(1)
)
_CLAIM_CALL_SID = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"), _ATTEMPTS.c.call_sid.is_(None))
    .values(call_sid=bindparam("call_sid"))
)


# The call an answer belongs to, as the webhook says it is: its attempt with that CallSid,
# of that request, pinned to that survey version; with the request's report fields,
# which every answer carries a copy of (aftercall.models.REPORT_FIELDS). No row when the
# call is not what the webhook says: then an insert selecting from it writes nothing.
_THE_CALL = (
    select(*(_REQUESTS.c[name] for name in REPORT_FIELDS))
    .select_from(_ATTEMPTS.join(_REQUESTS, _REQUESTS.c.id == _ATTEMPTS.c.request_id))
    .where(
        _ATTEMPTS.c.id == bindparam("attempt_id"),
        _ATTEMPTS.c.call_sid == bindparam("call_sid"),
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.survey_version_id == bindparam("survey_version_id"),
    )
)
# What an answer's insert takes from the webhook (`_answer_row()`); the report fields
# come from the request, the rest are the table's defaults.
_ANSWER_FIELDS = (
    "request_id", "attempt_id", "survey_version_id", "question_key", "kind", "value", "keys",
    "recording_url", "recording_sid", "recording_seconds", "received_at",
)  # fmt: skip


def _insert_answer(dialect: ModuleType, the_call: Select) -> Insert:
    # One answer per question: the unique constraint decides, in the same statement.
    given = [bindparam(name, type_=_ANSWERS.c[name].type).label(name) for name in _ANSWER_FIELDS]
    return (
        dialect.insert(_ANSWERS)
        .from_select(
            [*_ANSWER_FIELDS, *REPORT_FIELDS],
            the_call.with_only_columns(*given, *the_call.selected_columns),
        )
        .on_conflict_do_nothing(index_elements=[_ANSWERS.c.request_id, _ANSWERS.c.question_key])
    )


_STORE_ANSWER = {
    "postgresql": _insert_answer(postgresql, _THE_CALL).returning(_ANSWERS.c.id),
    "sqlite": _insert_answer(sqlite, _THE_CALL).returning(_ANSWERS.c.id),
}
_IS_THE_CALL = _THE_CALL.with_only_columns(_ATTEMPTS.c.id)


def _answer_and_read_statement() -> CompoundSelect:
    # PostgreSQL only, one statement: the call checked, the answer inserted, and the
    # request's answers read. The first row (question key NULL) is there only if the
    # call is what the webhook says; then come the answers as they were before the
    # insert (a statement's snapshot does not see its own CTE's rows) and what the
    # insert returned. A redelivery inserts nothing and reads the first delivery's answer.
    the_call = _THE_CALL.cte("the_call")
    stored = (
        _insert_answer(postgresql, select(*the_call.c))
        .returning(_ANSWERS.c.question_key, _ANSWERS.c.value)
        .cte("stored")
    )
    found = select(
        cast(null(), _ANSWERS.c.question_key.type), cast(null(), _ANSWERS.c.value.type)
    ).select_from(the_call)
    return union_all(found, _ANSWERS_OF_REQUEST, select(stored.c.question_key, stored.c.value))


_ANSWER_AND_READ = _answer_and_read_statement()


# A status callback before the call's end (initiated, ringing, in-progress: three of a
# call's four) records an event and moves the attempt forward, nothing else; about half
# of the webhooks a survey call makes. Here in Core, guarded by the attempt's state in
# the statements themselves, on PostgreSQL in one statement (the event's INSERT in a
# CTE, the attempt's UPDATE after it): through the ORM (a SELECT, a SAVEPOINT for the
# event, an UPDATE, BEGIN and COMMIT) it cost twice an answer's CPU.
_EVENTS = CallEvent.__table__
_EVENT_FIELDS = ("status", "sequence_number", "occurred_at", "received_at", "params")


def _insert_event(dialect: ModuleType) -> Insert:
    # Once per attempt and status (the unique constraint decides), and only for the
    # attempt with this CallSid, or with none stored yet (see find_call()).
    given = [_given(name, _EVENTS.c[name]).label(name) for name in _EVENT_FIELDS]
    call_sid = _given("call_sid", _ATTEMPTS.c.call_sid)
    the_attempt = select(_ATTEMPTS.c.id, *given).where(
        _ATTEMPTS.c.id == bindparam("attempt_id"),
        (_ATTEMPTS.c.call_sid == call_sid) | _ATTEMPTS.c.call_sid.is_(None),
    )
    return (
        dialect.insert(_EVENTS)
        .from_select(["attempt_id", *_EVENT_FIELDS], the_attempt)
        .on_conflict_do_nothing(index_elements=[_EVENTS.c.attempt_id, _EVENTS.c.status])
        .returning(_EVENTS.c.attempt_id)
    )


def _given(name: str, column: Column[Any]) -> BindParameter[Any]:
    return bindparam(name, type_=column.type)


_ADVANCE_ATTEMPT_VALUES = {
    "call_sid": func.coalesce(_ATTEMPTS.c.call_sid, _given("call_sid", _ATTEMPTS.c.call_sid)),
    "started_at": case(
        (_given("status", _EVENTS.c.status) == "initiated",
         func.coalesce(_ATTEMPTS.c.started_at, _given("occurred_at", _EVENTS.c.occurred_at))),
        else_=_ATTEMPTS.c.started_at,
    ),
    "answered_at": case(
        (_given("status", _EVENTS.c.status) == "in-progress",
         func.coalesce(_ATTEMPTS.c.answered_at, _given("occurred_at", _EVENTS.c.occurred_at))),
        else_=_ATTEMPTS.c.answered_at,
    ),
    "answered_by": func.coalesce(
        _given("answered_by", _ATTEMPTS.c.answered_by), _ATTEMPTS.c.answered_by
    ),
    # Never backwards: a late "ringing" after "in-progress", or after the end, is history.
    "status": case(
        (bindparam("rank", type_=Integer) >= case(_RANK, value=_ATTEMPTS.c.status, else_=0),
         _given("status", _EVENTS.c.status)),
        else_=_ATTEMPTS.c.status,
    ),
}  # fmt: skip


# What a final status adds: when and how the call ended.
_END_ATTEMPT_VALUES = {
    **_ADVANCE_ATTEMPT_VALUES,
    "ended_at": _given("occurred_at", _EVENTS.c.occurred_at),
    "duration_seconds": _given("duration_seconds", _ATTEMPTS.c.duration_seconds),
    "sip_response_code": _given("sip_response_code", _ATTEMPTS.c.sip_response_code),
    "error_code": _given("error_code", _ATTEMPTS.c.error_code),
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
    def build(cls, values: dict[str, Any], returning: tuple[Column[Any], ...]) -> _StatusStatements:
        recorded = _insert_event(postgresql).cte("recorded")
        return cls(
            both=update(_ATTEMPTS)
            .where(_ATTEMPTS.c.id.in_(select(recorded.c.attempt_id)))
            .values(values)
            .add_cte(recorded)
            .returning(*returning),
            event=_insert_event(sqlite),
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


def is_machine(answered_by: str | None) -> bool:
    """Twilio's AnsweredBy for answering machines and fax (not human, not unknown)."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


@dataclass(frozen=True)
class LiveCall:
    """A call attempt being surveyed: its ids, the survey version it plays and the
    language it plays in.

    Read from the database at the start of a webhook (`find_call()`), or named by a
    question webhook's URL (`named_call()`), which carries it because aftercall's own
    TwiML put it there and Twilio's signature covers the URL. One named by a URL has not
    been checked against the database: `answer_question()` checks it in the statement
    that stores the answer, and nothing may be written for it before that.

    A snapshot, never written back: the functions below change the database with
    statements guarded by its current state (another webhook of the same call may have
    moved it on since this one read it).
    """

    attempt_id: int
    call_sid: str
    request_id: int
    survey_version_id: int
    version_digest: str  # the version's content digest, or its first DIGEST_PREFIX characters
    language: str  # one the survey speaks (SurveyDefinition.language_for)
    definition: SurveyDefinition

    @property
    def ref(self) -> str:
        """What a question webhook's URL carries to name this call (`named_call()`)."""
        digest = self.version_digest[:DIGEST_PREFIX]
        return f"{self.request_id}.{self.survey_version_id}.{digest}.{self.language}"


def named_call(attempt_id: int, call_sid: str, ref: str | None) -> LiveCall | None:
    """The call a question webhook's URL names (`LiveCall.ref`), without a query: None
    if the URL names none, or a survey version this process has not read yet (then
    `find_call()` reads it). Not checked against the database: see `LiveCall`."""
    parts = (ref or "").split(".")
    if len(parts) != 4 or not call_sid or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    request_id, version_id, digest, language = int(parts[0]), int(parts[1]), *parts[2:]
    definition = known_definition(version_id, digest) if len(digest) == DIGEST_PREFIX else None
    if definition is None or definition.language_for(language) != language:
        return None
    return LiveCall(
        attempt_id=attempt_id,
        call_sid=call_sid,
        request_id=request_id,
        survey_version_id=version_id,
        version_digest=digest,
        language=language,
        definition=definition,
    )


def find_call(
    session: Session, attempt_id: int, call_sid: str, catalog: SurveyCatalog
) -> LiveCall | None:
    """The call a webhook is about, or None if there is none or the CallSid does not
    belong to it (a CallSid not stored yet is claimed: Twilio can post before the dialer
    has stored the one the create-call response carried), in one SELECT: the attempt
    joined with its request and its survey version's digest. The survey version's
    definition is read only the first time this process meets it; a request that has no
    version yet gets the catalog's current one, pinned for the rest of its life. None
    too when the request's survey is gone from the catalog and was never pinned.
    """
    if not call_sid:
        return None
    connection = session.connection()
    row = connection.execute(_CALL, {"attempt_id": attempt_id}).one_or_none()
    if row is None:
        return None
    if row.call_sid is None:
        # Twilio can ask for TwiML before the dialer has stored the CallSid that the
        # create-call response carried; the signed URL already names the attempt.
        connection.execute(_CLAIM_CALL_SID, {"attempt_id": attempt_id, "call_sid": call_sid})
    elif row.call_sid != call_sid:
        return None
    version_id, digest = row.survey_version_id, row.content_sha256
    definition = known_definition(version_id, digest) if version_id and digest else None
    if definition is None:
        if version_id is None:
            pinned = _pin_version(session, row.request_id, row.survey_name, catalog)
            if pinned is None:
                return None
            version_id, digest, definition = pinned
        else:
            version = session.get(SurveyVersion, version_id)
            assert version is not None  # a foreign key guarantees it
            definition = definition_of(version)
    return LiveCall(
        attempt_id=attempt_id,
        call_sid=call_sid,
        request_id=row.request_id,
        survey_version_id=version_id,
        version_digest=digest,
        language=definition.language_for(row.language),
        definition=definition,
    )


def _pin_version(
    session: Session, request_id: int, survey_name: str, catalog: SurveyCatalog
) -> tuple[int, str, SurveyDefinition] | None:
    try:
        definition = catalog.get(survey_name)
    except UnknownSurvey:
        log.error("request %s names unknown survey %r", request_id, survey_name)
        return None
    version = version_for(session, definition)
    # Parsed from what the version stored (the same content: its digest says so) and
    # cached, so that the call's next webhooks find it without a query (named_call()).
    definition = definition_of(version)
    session.execute(
        update(_REQUESTS)
        .where(_REQUESTS.c.id == request_id, _REQUESTS.c.survey_version_id.is_(None))
        .values(survey_version_id=version.id)
    )
    return version.id, version.content_sha256, definition


_START_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"))
    .values(
        answered_at=func.coalesce(_ATTEMPTS.c.answered_at, _given("now", _ATTEMPTS.c.answered_at)),
        # Never backwards: a final status (a late start webhook) stays.
        status=case(
            (_ATTEMPTS.c.status.in_(_BEFORE_ANSWER), "in-progress"), else_=_ATTEMPTS.c.status
        ),
        answered_by=func.coalesce(
            _given("answered_by", _ATTEMPTS.c.answered_by), _ATTEMPTS.c.answered_by
        ),
    )
)
_MOVE_REQUEST = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.state.in_(bindparam("when_in", expanding=True, type_=_REQUESTS.c.state.type)),
    )
    .values(state=bindparam("state", type_=_REQUESTS.c.state.type))
)


def start_survey(session: Session, call: LiveCall, answered_by: str | None) -> None:
    """A person picked up and is hearing the survey."""
    session.connection().execute(
        _START_ATTEMPT,
        {"attempt_id": call.attempt_id, "now": utcnow(), "answered_by": answered_by or None},
    )
    _move_request(session, call, RequestState.IN_PROGRESS, when_in=_NOT_YET_REACHED)


def _move_request(
    session: Session, call: LiveCall, state: RequestState, *, when_in: Collection[RequestState]
) -> None:
    """Set the request's state if its current state (in the database) is one of `when_in`."""
    session.connection().execute(
        _MOVE_REQUEST, {"request_id": call.request_id, "state": state, "when_in": list(when_in)}
    )


def note_answered_by(session: Session, call: LiveCall, answered_by: str) -> None:
    """Keep Twilio's answering machine verdict on the attempt."""
    session.connection().execute(
        update(_ATTEMPTS).where(_ATTEMPTS.c.id == call.attempt_id).values(answered_by=answered_by)
    )


def answers_by_key(db: Session | Connection, request_id: int) -> dict[str, int | None]:
    connection = db.connection() if isinstance(db, Session) else db
    rows = connection.execute(_ANSWERS_OF_REQUEST, {"request_id": request_id})
    return {key: value for key, value in rows}


def answer_question(
    connection: Connection, call: LiveCall, question: Question, *, value: int, keys: str
) -> dict[str, int | None] | None:
    """Store a keypad answer unless the question already has one (a redelivery: the
    first delivery's answer stands and nothing is written). Returns the request's
    answers by question key, this one included, as the call flow needs them; None, with
    nothing written, if the call is not what `call` says (one named by a URL, see
    `LiveCall`). One statement on PostgreSQL, which needs no transaction around it."""
    row = _answer_row(call, question, value=value, keys=keys)
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_ANSWER_AND_READ, row).all()
        if all(key is not None for key, _ in rows):
            return None  # no row for the call
        answers = {key: value for key, value in rows if key is not None}
    else:
        if connection.execute(_STORE_ANSWER["sqlite"], row).first() is None and (
            connection.execute(_IS_THE_CALL, row).first() is None
        ):
            return None
        answers = answers_by_key(connection, call.request_id)
    if question.key not in answers:
        # The same webhook delivered twice at once: the other delivery stored it.
        return answers_by_key(connection, call.request_id)
    return answers


def record_answer(
    session: Session,
    call: LiveCall,
    question: Question,
    *,
    value: int | None,
    keys: str = "",
    recording_url: str | None = None,
    recording_sid: str | None = None,
    recording_seconds: int | None = None,
) -> Answer:
    """Store an answer unless this question already has one (a redelivery)."""
    answer_id = store_answer(
        session, call, question, value=value, keys=keys, recording_url=recording_url,
        recording_sid=recording_sid, recording_seconds=recording_seconds,
    )  # fmt: skip
    answer = (
        _answer(session, call.request_id, question.key)
        if answer_id is None
        else session.get(Answer, answer_id)
    )
    # Stored now, or by the delivery that won; find_call() read the call in this unit of
    # work, so it is what `call` says (an error here ends the call politely).
    assert answer is not None
    return answer


def store_answer(
    session: Session,
    call: LiveCall,
    question: Question,
    *,
    value: int | None,
    keys: str = "",
    recording_url: str | None = None,
    recording_sid: str | None = None,
    recording_seconds: int | None = None,
) -> int | None:
    """Insert an answer in one statement; returns its id, or None when nothing was
    written: the question already had one (a redelivery, or the same webhook delivered
    twice at once: the unique constraint on (request_id, question_key) decides), or the
    call is not what `call` says (see `answer_question()`)."""
    connection = session.connection()
    return connection.execute(
        _STORE_ANSWER[connection.dialect.name],
        _answer_row(
            call,
            question,
            value=value,
            keys=keys,
            recording_url=recording_url,
            recording_sid=recording_sid,
            recording_seconds=recording_seconds,
        ),
    ).scalar()


def _answer_row(
    call: LiveCall,
    question: Question,
    *,
    value: int | None,
    keys: str,
    recording_url: str | None = None,
    recording_sid: str | None = None,
    recording_seconds: int | None = None,
) -> dict[str, Any]:
    # The parameters of _THE_CALL and of an answer's insert (_ANSWER_FIELDS).
    return {
        "attempt_id": call.attempt_id,
        "call_sid": call.call_sid,
        "request_id": call.request_id,
        "survey_version_id": call.survey_version_id,
        "question_key": question.key,
        "kind": question.kind.value,
        "value": value,
        "keys": keys,
        "recording_url": recording_url,
        "recording_sid": recording_sid,
        "recording_seconds": recording_seconds,
        "received_at": utcnow(),
    }


def record_transcript(
    session: Session,
    call: LiveCall,
    question: Question,
    *,
    text: str | None,
    status: str,
    recording_url: str | None,
    recording_sid: str | None,
) -> None:
    answer = _answer(session, call.request_id, question.key)
    if answer is None:
        if not recording_url:
            return
        # The transcription overtook the Record action; the recording is the answer.
        answer = record_answer(
            session, call, question, value=None,
            recording_url=recording_url, recording_sid=recording_sid,
        )  # fmt: skip
    answer.transcript = text or None
    answer.transcript_status = status[:20] or None


def opt_out(session: Session, call: LiveCall, source: str = "keypad") -> None:
    """Put the caller's number on the do-not-call list and end the survey."""
    phone = session.scalar(select(_REQUESTS.c.phone).where(_REQUESTS.c.id == call.request_id))
    if session.scalar(select(OptOut.id).where(OptOut.phone == phone)) is None:
        try:
            with session.begin_nested():
                session.add(OptOut(phone=phone, source=source, request_id=call.request_id))
        except IntegrityError:
            pass  # opted out at the same moment by another path: the number is listed
    _move_request(session, call, RequestState.OPTED_OUT, when_in=_OPEN_TO_OPT_OUT)


def finish_survey(session: Session, call: LiveCall) -> None:
    """The caller reached the end: completed, or abandoned if every question was skipped."""
    answered = session.connection().execute(_HAS_ANSWERS, {"request_id": call.request_id})
    state = RequestState.COMPLETED if answered.first() else RequestState.ABANDONED
    _move_request(session, call, state, when_in=_OPEN_TO_FINISH)


def record_machine(session: Session, call: LiveCall, answered_by: str) -> bool:
    """An answering machine picked up. Returns True if the call should stop surveying.

    A machine verdict that arrives after the caller has already answered a question
    is a misdetection: the survey goes on.
    """
    note_answered_by(session, call, answered_by)
    if answers_by_key(session, call.request_id):
        return False
    _move_request(
        session, call, RequestState.VOICEMAIL, when_in=_NOT_YET_REACHED | {RequestState.IN_PROGRESS}
    )
    return True


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
    row = {
        **_status_row(attempt_id, call_sid, status, params),
        "duration_seconds": parse_int(params.get("CallDuration")),
        "sip_response_code": parse_int(params.get("SipResponseCode")),
        "error_code": (params.get("ErrorCode") or "")[:16] or None,
    }
    ended = _RECORD_END.run(connection, row)
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
        has_answers=lambda: bool(
            connection.execute(_HAS_ANSWERS, {"request_id": request_id}).first()
        ),
    )
    if outcome is None:
        return AttemptEnded(request_id, state)
    connection.execute(
        _MOVE_REQUEST, {"request_id": request_id, "state": outcome, "when_in": [state]}
    )
    return AttemptEnded(request_id, outcome)


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
        has_answers=lambda: bool(answers_by_key(session, request.id)),
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
    if state in _NOT_YET_REACHED - {RequestState.VOICEMAIL}:
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


def _answer(session: Session, request_id: int, key: str) -> Answer | None:
    return session.scalar(
        select(Answer).where(Answer.request_id == request_id, Answer.question_key == key)
    )


def _rank(status: str) -> int:
    return _RANK.get(status, 0)


def parse_int(value: str | None) -> int | None:
    """An integer Twilio parameter, or None when absent or malformed."""
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None
