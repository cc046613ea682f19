"""What ivr/ writes: the survey call's start, answers, opt-outs and end, one webhook at a time.

Each function takes a session and plain values, does its writes inside the caller's
unit of work (so a webhook commits everything or nothing; `answer_question()` may also
be the whole unit of work, one statement on a connection of its own, as `start_call()`
is), and is safe to run twice:
Twilio may deliver any webhook more than once, and a repeated delivery must change
nothing. Flask views call these; they know nothing of HTTP.

The survey webhooks' reads and writes (`find_call()` and what takes a LiveCall) are Core
statements on the session's connection, for speed: they do not flush ORM changes
pending in the session first, so flush before calling them if they must see one.
Twilio's status callbacks, which tell how the call itself went, are the dialer's
(dialer.attempts).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Insert,
    Row,
    Select,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import param_like, utcnow
from core.models import (
    REPORT_FIELDS,
    AlertOutbox,
    Answer,
    CallAttempt,
    OptOut,
    RequestState,
    SurveyRequest,
    SurveyVersion,
)
from core.request_state import (
    NOT_YET_REACHED,
    move_request,
    move_request_by_answers,
)
from core.survey import Question, SurveyCatalog, SurveyDefinition, UnknownSurvey
from core.survey_versions import DIGEST_PREFIX, definition_of, known_definition, version_for

log = logging.getLogger(__name__)

# States a keypad opt-out or the end of the survey can still change.
_OPEN_TO_OPT_OUT = frozenset(RequestState) - {RequestState.OPTED_OUT}
_OPEN_TO_FINISH = frozenset(RequestState) - {RequestState.OPTED_OUT, RequestState.COMPLETED}
# Attempt statuses before anyone picked up (what start_survey moves to in-progress).
_BEFORE_ANSWER = ("queued", "initiated", "ringing")


# The survey webhooks' statements, built once: SQLAlchemy then finds their compiled form
# by a cache key memoized on the statement instead of building and hashing a new
# statement per webhook (bench.webhook_profile showed that as much of the CPU time).
# They are Core statements over plain rows: loading the attempt and its request as ORM
# objects cost the answer webhook about 0.7 ms of CPU more than the same SELECT in Core.
_ANSWERS = Answer.__table__
_OUTBOX = AlertOutbox.__table__
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
_CLAIM_CALL_SID = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"), _ATTEMPTS.c.call_sid.is_(None))
    .values(call_sid=bindparam("call_sid"))
)


# The call an answer belongs to, as the webhook says it is: its attempt with that CallSid,
# of that request, pinned to that survey version; with the request's report fields,
# which every answer carries a copy of (core.models.REPORT_FIELDS). No row when the
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
    "recording_url", "recording_sid", "recording_seconds", "received_at", "input",
    "transcript", "confidence",
)  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    """A recorded comment as Twilio keeps it: where, its id, how long (seconds)."""

    url: str
    sid: str | None
    seconds: int | None


@dataclass(frozen=True)
class Spoken:
    """How a spoken answer was heard: the recogniser's transcript and confidence."""

    transcript: str
    confidence: float | None


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


def _answer_and_read_statement(*, owe_alert: bool) -> CompoundSelect:
    # PostgreSQL only, one statement: the call checked, the answer inserted, and the
    # request's answers read. The first row (question key NULL) is there only if the
    # call is what the webhook says; then come the answers as they were before the
    # insert (a statement's snapshot does not see its own CTE's rows) and what the
    # insert returned. A redelivery inserts nothing and reads the first delivery's answer.
    # With `owe_alert`, the answer the insert stored also writes the request's alert
    # outbox row (core.events), unless the request has one: the same statement, so the
    # alert is owed exactly when the answer is stored.
    the_call = _THE_CALL.cte("the_call")
    stored = (
        _insert_answer(postgresql, select(*the_call.c))
        .returning(_ANSWERS.c.question_key, _ANSWERS.c.value)
        .cte("stored")
    )
    found = select(
        cast(null(), _ANSWERS.c.question_key.type), cast(null(), _ANSWERS.c.value.type)
    ).select_from(the_call)
    statement = union_all(found, _ANSWERS_OF_REQUEST, select(stored.c.question_key, stored.c.value))
    # An answer stored after the final status callback marked the request abandoned
    # (the caller pressed a key and hung up; Twilio posts both at once): it was answered.
    reopened = (
        update(_REQUESTS)
        .where(
            _REQUESTS.c.id == bindparam("request_id", type_=_REQUESTS.c.id.type),
            _REQUESTS.c.state == literal_column(f"'{RequestState.ABANDONED.value}'"),
            exists(select(stored.c.question_key)),
        )
        .values(
            state=literal_column(f"'{RequestState.PARTIAL.value}'"),
            updated_at=bindparam("received_at", type_=_REQUESTS.c.updated_at.type),
            # The answer's parameters name survey_version_id too: SQLAlchemy would SET
            # every column a parameter names unless the statement says otherwise.
            survey_version_id=_REQUESTS.c.survey_version_id,
        )
        .cte("reopened")
    )
    statement = statement.add_cte(reopened)
    if not owe_alert:
        return statement
    owed = (
        postgresql.insert(_OUTBOX)
        .from_select(
            ["request_id", "created_at"],
            select(
                bindparam("request_id", type_=_OUTBOX.c.request_id.type),
                bindparam("received_at", type_=_OUTBOX.c.created_at.type),
            ).select_from(stored),
        )
        .on_conflict_do_nothing(index_elements=[_OUTBOX.c.request_id])
        .cte("owed")
    )
    return statement.add_cte(owed)


_ANSWER_AND_READ = {
    False: _answer_and_read_statement(owe_alert=False),
    True: _answer_and_read_statement(owe_alert=True),
}
_OWE_ALERT_SQLITE = (
    sqlite.insert(_OUTBOX)
    .values(request_id=bindparam("request_id"), created_at=bindparam("received_at"))
    .on_conflict_do_nothing(index_elements=[_OUTBOX.c.request_id])
)


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
    return _live_call(attempt_id, call_sid, row, version_id, digest, definition)


def _live_call(
    attempt_id: int,
    call_sid: str,
    row: Row[Any],
    version_id: int,
    digest: str,
    definition: SurveyDefinition,
) -> LiveCall:
    """The call a row of `_CALL` (or `_START`, which reads the same) is about."""
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


# An attempt picked up: what start_survey() and start_call() set.
_START_VALUES = {
    "answered_at": func.coalesce(
        _ATTEMPTS.c.answered_at, param_like("now", _ATTEMPTS.c.answered_at)
    ),
    # Never backwards: a final status (a late start webhook) stays.
    "status": case(
        (_ATTEMPTS.c.status.in_(_BEFORE_ANSWER), "in-progress"), else_=_ATTEMPTS.c.status
    ),
    "answered_by": func.coalesce(
        param_like("answered_by", _ATTEMPTS.c.answered_by), _ATTEMPTS.c.answered_by
    ),
}
_START_ATTEMPT = (
    update(_ATTEMPTS).where(_ATTEMPTS.c.id == bindparam("attempt_id")).values(**_START_VALUES)
)


def start_survey(session: Session, call: LiveCall, answered_by: str | None) -> None:
    """A person picked up and is hearing the survey."""
    session.connection().execute(
        _START_ATTEMPT,
        {"attempt_id": call.attempt_id, "now": utcnow(), "answered_by": answered_by or None},
    )
    _move_request(session, call, RequestState.IN_PROGRESS, when_in=NOT_YET_REACHED)


def _start_statement() -> Select:
    # PostgreSQL only, one statement for what find_call() and start_survey() do in a
    # transaction of three: the call read (as it was before this statement, a snapshot),
    # its attempt started and its CallSid claimed if none was stored yet, its request
    # moved to in progress. Nothing is written unless the CallSid is the attempt's (or
    # the attempt has none yet) and the request's survey version is pinned: pinning
    # takes the catalog (`find_call()`), which the caller then does in a transaction.
    the_call = _CALL.cte("the_call")
    started = (
        update(_ATTEMPTS)
        .where(
            _ATTEMPTS.c.id == bindparam("attempt_id"),
            or_(
                _ATTEMPTS.c.call_sid.is_(None),
                _ATTEMPTS.c.call_sid == param_like("call_sid", _ATTEMPTS.c.call_sid),
            ),
            exists(select(the_call.c.request_id).where(the_call.c.survey_version_id.is_not(None))),
        )
        .values(
            call_sid=func.coalesce(
                _ATTEMPTS.c.call_sid, param_like("call_sid", _ATTEMPTS.c.call_sid)
            ),
            **_START_VALUES,
        )
        .returning(_ATTEMPTS.c.request_id)
        .cte("started")
    )
    not_yet_reached = [literal_column(f"'{state.value}'") for state in sorted(NOT_YET_REACHED)]
    moved = (
        update(_REQUESTS)
        .where(
            _REQUESTS.c.id.in_(select(started.c.request_id)),
            _REQUESTS.c.state.in_(not_yet_reached),
        )
        .values(
            state=literal_column(f"'{RequestState.IN_PROGRESS.value}'"),
            updated_at=param_like("now", _REQUESTS.c.updated_at),
        )
        .cte("moved")
    )
    return select(*the_call.c).add_cte(started).add_cte(moved)


_START = _start_statement()


def start_call(
    connection: Connection, attempt_id: int, call_sid: str, answered_by: str | None
) -> LiveCall | NotStarted | None:
    """A person picked up (`answered_by` is not a machine's verdict): on PostgreSQL, what
    `find_call()` and `start_survey()` do, in one statement and no transaction (four
    round trips fewer at the moment the caller waits for the greeting). Returns the call,
    or None (nothing written) if there is no such call or the CallSid is another's;
    NOT_STARTED when the caller must do both in a transaction instead: the request's
    survey version is not pinned yet (nothing was written), or this process has not read
    that version yet (the call was started; starting it again changes nothing); and
    always on SQLite, which has no UPDATE in a CTE (nothing was written)."""
    if not call_sid:
        return None
    if connection.dialect.name != "postgresql":
        return NOT_STARTED
    row = connection.execute(
        _START,
        {"attempt_id": attempt_id, "call_sid": call_sid, "now": utcnow(),
         "answered_by": answered_by or None},
    ).one_or_none()  # fmt: skip
    if row is None or (row.call_sid is not None and row.call_sid != call_sid):
        return None
    version_id, digest = row.survey_version_id, row.content_sha256
    definition = known_definition(version_id, digest) if version_id and digest else None
    if definition is None:
        return NOT_STARTED
    return _live_call(attempt_id, call_sid, row, version_id, digest, definition)


class NotStarted:
    """`start_call()` could not start the call in one statement (see there)."""


NOT_STARTED = NotStarted()


def _move_request(
    session: Session, call: LiveCall, state: RequestState, *, when_in: Collection[RequestState]
) -> None:
    move_request(session.connection(), call.request_id, state, when_in=when_in)


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
    connection: Connection,
    call: LiveCall,
    question: Question,
    *,
    value: int | None,
    keys: str,
    spoken: Spoken | None = None,
    recording: Recorded | None = None,
    owe_alert: bool = False,
) -> dict[str, int | None] | None:
    """Store an answer (keys pressed, an answer spoken, or a recorded comment, whose value
    is None) unless the question already has one (a redelivery: the first delivery's
    answer stands and nothing is written). Returns the request's answers by question
    key, this one included, as the call flow needs them; None, with nothing written, if
    the call is not what `call` says (one named by a URL, see `LiveCall`). One
    statement on PostgreSQL, which needs no transaction around it.

    `owe_alert` (core.events.alert_due said so): the answer, if stored now, also writes
    the request's alert outbox row, in the same statement on PostgreSQL and the same
    transaction on SQLite."""
    row = _answer_row(
        call, question, value=value, keys=keys, spoken=spoken,
        recording_url=recording.url if recording else None,
        recording_sid=recording.sid if recording else None,
        recording_seconds=recording.seconds if recording else None,
    )  # fmt: skip
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_ANSWER_AND_READ[owe_alert], row).all()
        if all(key is not None for key, _ in rows):
            return None  # no row for the call
        answers = {key: value for key, value in rows if key is not None}
    else:
        if connection.execute(_STORE_ANSWER["sqlite"], row).first() is not None:
            reopen_abandoned(connection, call.request_id)
            if owe_alert:
                connection.execute(_OWE_ALERT_SQLITE, row)
        elif connection.execute(_IS_THE_CALL, row).first() is None:
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
    answer_id = connection.execute(
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
    if answer_id is not None:
        reopen_abandoned(connection, call.request_id)
    return answer_id


def reopen_abandoned(connection: Connection, request_id: int) -> None:
    """An answer was just stored: a request the final status callback had marked
    abandoned (it came first, the answer a moment later) was answered after all, so it
    ends partial (or completed, when the survey's end is reached). One guarded
    statement: only an abandoned request moves."""
    move_request(connection, request_id, RequestState.PARTIAL, when_in=[RequestState.ABANDONED])


def _answer_row(
    call: LiveCall,
    question: Question,
    *,
    value: int | None,
    keys: str,
    recording_url: str | None = None,
    recording_sid: str | None = None,
    recording_seconds: int | None = None,
    spoken: Spoken | None = None,
) -> dict[str, Any]:
    # The parameters of _THE_CALL and of an answer's insert (_ANSWER_FIELDS).
    given = None if value is None else ("speech" if spoken else "keys")
    return {
        "input": given,
        "transcript": spoken.transcript if spoken else None,
        "confidence": spoken.confidence if spoken else None,
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
    """Put the caller's number on the do-not-call list and end the survey. An in-call
    survey of a withheld number has none to list: only the survey ends."""
    phone = session.scalar(select(_REQUESTS.c.phone).where(_REQUESTS.c.id == call.request_id))
    if phone and session.scalar(select(OptOut.id).where(OptOut.phone == phone)) is None:
        try:
            with session.begin_nested():
                session.add(OptOut(phone=phone, source=source, request_id=call.request_id))
        except IntegrityError:
            pass  # opted out at the same moment by another path: the number is listed
    _move_request(session, call, RequestState.OPTED_OUT, when_in=_OPEN_TO_OPT_OUT)


def finish_survey(session: Session, call: LiveCall) -> None:
    """The caller reached the end: completed, or abandoned if every question was skipped."""
    move_request_by_answers(
        session.connection(), call.request_id, answered=RequestState.COMPLETED,
        unanswered=RequestState.ABANDONED, when_in=_OPEN_TO_FINISH,
    )  # fmt: skip


def record_machine(session: Session, call: LiveCall, answered_by: str) -> bool:
    """An answering machine picked up. Returns True if the call should stop surveying.

    A machine verdict that arrives after the caller has already answered a question
    is a misdetection: the survey goes on.
    """
    note_answered_by(session, call, answered_by)
    if answers_by_key(session, call.request_id):
        return False
    _move_request(
        session, call, RequestState.VOICEMAIL, when_in=NOT_YET_REACHED | {RequestState.IN_PROGRESS}
    )
    return True


def _answer(session: Session, request_id: int, key: str) -> Answer | None:
    return session.scalar(
        select(Answer).where(Answer.request_id == request_id, Answer.question_key == key)
    )
