"""A survey call, turn by turn: what the customer did, stored, and what they hear next.

The voice webhooks (aftercall.web.voice) parse Twilio's form and render TwiML; in between
everything is here: which unit of work a turn takes, storing what the customer did
(ivr.calls), choosing the next step (core.flow), finishing the survey when the step says
it is done (`_settle()`, the one place that does), and telling the other domains about an
answer (core.events: an alert it calls for is owed in the answer's own statement or
transaction; listeners hear of it after the commit). It knows nothing of HTTP or TwiML.

Every function returns a `Turn`: the call (None when aftercall knows no such call: the
caller hears a polite goodbye) and what to say next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core import flow, utterance
from core.events import AnswerGiven, alert_due, answer_given
from core.runtime import Runtime
from core.survey import Question, QuestionKind
from core.telephony import is_machine
from ivr import calls, keypad

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Goodbye:
    """The call ends with a closing phrase of the survey's language."""

    phrase: str  # "opted_out" or "voicemail"


@dataclass(frozen=True)
class HangUp:
    """The call ends without a word (an answering machine, no message to leave)."""


Reply = flow.Step | Goodbye | HangUp


@dataclass(frozen=True)
class Turn:
    call: calls.LiveCall | None
    reply: Reply | None = None


NO_SUCH_CALL = Turn(None)


@dataclass(frozen=True)
class Keys:
    """What a Gather's action brought, as the webhook received it: keys, or speech."""

    digits: str | None
    after_one: bool  # the NPS second-key stage: "1" was pressed, a "0" may follow
    try_number: int  # which try of the question this was (1 = first)
    speech: str | None = None  # Twilio's SpeechResult, when the customer spoke
    confidence: str | None = None  # Twilio's Confidence, as posted (may be missing)

    @property
    def spoken(self) -> bool:
        """The customer spoke rather than pressed keys (Twilio posts one or the other)."""
        return self.speech is not None and not self.digits


@dataclass(frozen=True)
class Heard:
    """The answer to "I heard nine, is that right?", with what had been heard."""

    value: int
    transcript: str
    confidence: float | None
    try_number: int
    reply: str | None  # SpeechResult
    digits: str | None


@dataclass(frozen=True)
class Recording:
    """A Record's action: the recorded comment (empty URL: nothing was said)."""

    url: str
    sid: str | None
    seconds: int | None
    digits: str


def start(runtime: Runtime, attempt_id: int, call_sid: str, answered_by: str | None) -> Turn:
    """The call was answered: greet and ask, or, for a machine, leave the message."""
    if not is_machine(answered_by):
        # A person: the call read and started in one statement (calls.start_call), unless
        # that needs the catalog, a version this process has not read yet, or SQLite.
        with runtime.db.single_statement() as connection:
            started = calls.start_call(connection, attempt_id, call_sid, answered_by)
        if started is None:
            log.warning("webhook for unknown call attempt %s", attempt_id)
            return NO_SUCH_CALL
        if isinstance(started, calls.LiveCall):
            step = flow.opening(started.definition)
            if isinstance(step, flow.Finish):  # a survey with nothing to ask
                with runtime.db.session() as session:
                    _settle(session, started, step)
            return Turn(started, step)
    with runtime.db.session() as session:
        return start_in(runtime, session, attempt_id, call_sid, answered_by)


def start_in(
    runtime: Runtime, session: Session, attempt_id: int, call_sid: str, answered_by: str | None
) -> Turn:
    """`start()` in the caller's unit of work (an in-call survey's transfer opens its
    attempt and starts the survey in one transaction: ivr.inbound)."""
    call = _find_call(runtime, session, attempt_id, call_sid)
    if call is None:
        return NO_SUCH_CALL
    if is_machine(answered_by) and calls.record_machine(session, call, answered_by):
        return Turn(call, voicemail_reply(call))
    calls.start_survey(session, call, answered_by)
    return Turn(call, _settle(session, call, flow.opening(call.definition)))


def press_keys(
    runtime: Runtime, attempt_id: int, call_sid: str, ref: str | None, key: str, keys: Keys
) -> Turn:
    """The customer pressed keys (or none), or spoke, at question `key`."""
    named = calls.named_call(attempt_id, call_sid, ref)
    if named is not None:
        turn = _answer_named_call(runtime, named, key, keys)
        if turn is not None:
            return turn
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        asked = call.definition.question(key) if call else None
        if call is None or asked is None or asked.kind is QuestionKind.COMMENT:
            return NO_SUCH_CALL
        if keys.spoken and asked.takes_speech:
            turn, answered = _said(runtime, session, call, asked, keys)
        else:
            turn, answered = _pressed(runtime, session, call, asked, keys)
    if answered is not None:
        answer_given(runtime, answered)
    return turn


def _pressed(
    runtime: Runtime, session: Session, call: calls.LiveCall, asked: Question, keys: Keys
) -> tuple[Turn, AnswerGiven | None]:
    """Keys pressed (or nothing) at a question, in the webhook's unit of work."""
    answered = None
    result = keypad.interpret(asked.kind, keys.digits, after_one=keys.after_one)
    if isinstance(result, keypad.OptedOut):
        calls.opt_out(session, call)
        return Turn(call, Goodbye("opted_out")), None
    if isinstance(result, keypad.NeedsSecondDigit):
        step: flow.Step = flow.ListenForZero(asked, keys.try_number)
    elif isinstance(result, keypad.Answered):
        answered = AnswerGiven(call.request_id, asked.kind.value, result.value)
        answers = calls.answer_question(
            session.connection(), call, asked, value=result.value, keys=result.keys,
            owe_alert=alert_due(runtime, answered),
        )  # fmt: skip
        if answers is None:  # another webhook pinned another survey version just now
            return NO_SUCH_CALL, None
        step = flow.after_answer(call.definition, asked.key, answers)
    else:
        answers = calls.answers_by_key(session, call.request_id)
        step = flow.after_rejection(call.definition, asked, keys.try_number, result.reason, answers)
    return Turn(call, _settle(session, call, step)), answered


def _said(
    runtime: Runtime, session: Session, call: calls.LiveCall, asked: Question, keys: Keys
) -> tuple[Turn, AnswerGiven | None]:
    """A spoken answer (core.utterance): stored like a key, opting out like "*", asked
    again like a wrong key, or, heard with low confidence, confirmed first."""
    result = utterance.interpret(asked.kind, call.language, keys.speech, keys.confidence)
    if isinstance(result, utterance.SaidOptOut):
        calls.opt_out(session, call, source="speech")
        return Turn(call, Goodbye("opted_out")), None
    if isinstance(result, utterance.NotUnderstood):
        answers = calls.answers_by_key(session, call.request_id)
        step = flow.after_rejection(call.definition, asked, keys.try_number, result.reason, answers)
        return Turn(call, _settle(session, call, step)), None
    if result.confirm:
        confirm = flow.Confirm(
            asked, result.value, keys.try_number, result.transcript, result.confidence
        )
        return Turn(call, confirm), None
    spoken = calls.Spoken(result.transcript, result.confidence)
    return _store_spoken(runtime, session, call, asked, result.value, spoken)


def _store_spoken(
    runtime: Runtime,
    session: Session,
    call: calls.LiveCall,
    asked: Question,
    value: int,
    spoken: calls.Spoken,
) -> tuple[Turn, AnswerGiven | None]:
    answered = AnswerGiven(call.request_id, asked.kind.value, value)
    answers = calls.answer_question(
        session.connection(), call, asked, value=value, keys="", spoken=spoken,
        owe_alert=alert_due(runtime, answered),
    )  # fmt: skip
    if answers is None:
        return NO_SUCH_CALL, None
    step = flow.after_answer(call.definition, asked.key, answers)
    return Turn(call, _settle(session, call, step)), answered


def confirm_answer(
    runtime: Runtime, attempt_id: int, call_sid: str, key: str, heard: Heard
) -> Turn:
    """The customer confirmed (or not) a spoken answer heard with low confidence: yes
    stores it; no, or anything unclear, asks the question again, within its tries."""
    answered = None
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        asked = call.definition.question(key) if call else None
        if call is None or asked is None or not asked.takes_speech:
            return NO_SUCH_CALL
        low, high = asked.kind.scale
        if not low <= heard.value <= high:
            return NO_SUCH_CALL
        if heard.digits and keypad.OPT_OUT_KEY in heard.digits:
            calls.opt_out(session, call)
            return Turn(call, Goodbye("opted_out"))
        said = utterance.interpret(asked.kind, call.language, heard.reply, None)
        if heard.reply is not None and isinstance(said, utterance.SaidOptOut):
            calls.opt_out(session, call, source="speech")
            return Turn(call, Goodbye("opted_out"))
        if utterance.confirmation(call.language, heard.reply, heard.digits):
            spoken = calls.Spoken(heard.transcript, heard.confidence)
            turn, answered = _store_spoken(runtime, session, call, asked, heard.value, spoken)
        else:
            answers = calls.answers_by_key(session, call.request_id)
            step = flow.after_rejection(
                call.definition, asked, heard.try_number, keypad.Rejection.MISHEARD, answers
            )
            turn = Turn(call, _settle(session, call, step))
    if answered is not None:
        answer_given(runtime, answered)
    return turn


def _answer_named_call(runtime: Runtime, call: calls.LiveCall, key: str, keys: Keys) -> Turn | None:
    """The busiest webhook, a keypad answer, without reading the call first when the
    URL names it (`calls.named_call()`): the answer is stored and the call checked in
    the same statement, in no transaction when the survey cannot end after this
    question (the statement is the webhook's only write), else in one with the survey's
    end. None when that is not the case here (another key, or the call is not what the
    URL says; nothing was written): `press_keys()` then reads the call and does
    everything as for any webhook."""
    asked = call.definition.question(key)
    if asked is None or asked.kind is QuestionKind.COMMENT:
        return None
    result = keypad.interpret(asked.kind, keys.digits, after_one=keys.after_one)
    if not isinstance(result, keypad.Answered):
        return None
    answered = AnswerGiven(call.request_id, asked.kind.value, result.value)
    owe_alert = alert_due(runtime, answered)
    if flow.may_finish_after(call.definition, key):
        # The answer that may be the last and the survey's end: one transaction.
        with runtime.db.session() as session:
            answers = calls.answer_question(
                session.connection(), call, asked, value=result.value, keys=result.keys,
                owe_alert=owe_alert,
            )  # fmt: skip
            if answers is None:
                return None
            step = _settle(session, call, flow.after_answer(call.definition, key, answers))
    else:
        # The answer and the alert it may owe: one statement (ivr.calls.answer_question).
        with runtime.db.single_statement() as connection:
            answers = calls.answer_question(
                connection, call, asked, value=result.value, keys=result.keys,
                owe_alert=owe_alert,
            )  # fmt: skip
        if answers is None:
            return None
        step = flow.after_answer(call.definition, key, answers)
        assert not isinstance(step, flow.Finish)  # may_finish_after() said so
    answer_given(runtime, answered)
    return Turn(call, step)


def record_comment(
    runtime: Runtime,
    attempt_id: int,
    call_sid: str,
    ref: str | None,
    key: str,
    recording: Recording,
) -> Turn:
    """The customer left (or skipped) the recorded comment at question `key`."""
    named = calls.named_call(attempt_id, call_sid, ref)
    if named is not None and recording.url and recording.digits != keypad.OPT_OUT_KEY:
        turn = _comment_named_call(runtime, named, key, recording)
        if turn is not None:
            return turn
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        asked = call.definition.question(key) if call else None
        if call is None or asked is None or asked.kind is not QuestionKind.COMMENT:
            return NO_SUCH_CALL
        if recording.digits == keypad.OPT_OUT_KEY:
            calls.opt_out(session, call)
            return Turn(call, Goodbye("opted_out"))
        if recording.url:
            # Stored unless a delivery before this one stored it (then nothing changes).
            calls.store_answer(
                session, call, asked, value=None,
                keys=recording.digits[:keypad.MAX_KEYS_KEPT],
                recording_url=recording.url,
                recording_sid=recording.sid,
                recording_seconds=recording.seconds,
            )  # fmt: skip
        # A comment is optional: an empty recording moves on rather than asking again.
        answers = calls.answers_by_key(session, call.request_id)
        return Turn(call, _settle(session, call, flow.after_answer(call.definition, key, answers)))


def _comment_named_call(
    runtime: Runtime, call: calls.LiveCall, key: str, recording: Recording
) -> Turn | None:
    """A recorded comment without reading the call first when the URL names it, as
    `_answer_named_call()` stores a key: the comment stored, the call checked and the
    answers read in one statement, in one transaction with the survey's end when it ends
    here (it usually does: a comment is the last question). None, with nothing written,
    if the call is not what the URL says: `record_comment()` then reads it."""
    asked = call.definition.question(key)
    if asked is None or asked.kind is not QuestionKind.COMMENT:
        return None
    with runtime.db.session() as session:
        answers = calls.answer_question(
            session.connection(), call, asked, value=None,
            keys=recording.digits[: keypad.MAX_KEYS_KEPT],
            recording=calls.Recorded(recording.url, recording.sid, recording.seconds),
        )  # fmt: skip
        if answers is None:
            return None
        return Turn(call, _settle(session, call, flow.after_answer(call.definition, key, answers)))


def record_transcript(
    runtime: Runtime,
    attempt_id: int,
    call_sid: str,
    key: str,
    *,
    text: str,
    status: str,
    recording_url: str | None,
    recording_sid: str | None,
) -> None:
    """Twilio's transcription of a recorded comment arrived (minutes after the call)."""
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        asked = call.definition.question(key) if call else None
        if call is not None and asked is not None and asked.kind is QuestionKind.COMMENT:
            calls.record_transcript(
                session, call, asked, text=text, status=status,
                recording_url=recording_url, recording_sid=recording_sid,
            )  # fmt: skip


@dataclass(frozen=True)
class MachineVerdict:
    """What asynchronous machine detection means for a call already playing the survey."""

    stop: bool  # a machine: the survey must stop
    leave_message: bool  # ... and the voicemail message be played instead


def machine_detected(
    runtime: Runtime, attempt_id: int, call_sid: str, answered_by: str
) -> MachineVerdict:
    """Twilio's asynchronous answering machine detection has decided."""
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        if call is None:
            return MachineVerdict(stop=False, leave_message=False)
        if not is_machine(answered_by):
            if answered_by:
                calls.note_answered_by(session, call, answered_by)
            return MachineVerdict(stop=False, leave_message=False)
        stop = calls.record_machine(session, call, answered_by)
        return MachineVerdict(stop=stop, leave_message=call.definition.leave_voicemail)


def voicemail(runtime: Runtime, attempt_id: int, call_sid: str) -> Turn:
    """The call was steered to the voicemail message after the survey had started."""
    with runtime.db.session() as session:
        call = _find_call(runtime, session, attempt_id, call_sid)
        if call is None:
            return Turn(None, HangUp())
        return Turn(call, Goodbye("voicemail"))


def voicemail_reply(call: calls.LiveCall) -> Goodbye | HangUp:
    return Goodbye("voicemail") if call.definition.leave_voicemail else HangUp()


def _settle(session: Session, call: calls.LiveCall, step: flow.Step) -> flow.Step:
    """The one place a survey ends: a Finish step finishes it, in the turn's unit of work."""
    if isinstance(step, flow.Finish):
        calls.finish_survey(session, call)
    return step


def _find_call(
    runtime: Runtime, session: Session, attempt_id: int, call_sid: str
) -> calls.LiveCall | None:
    call = calls.find_call(session, attempt_id, call_sid, runtime.catalog)
    if call is None:
        log.warning("webhook for unknown call attempt %s", attempt_id)
    return call
