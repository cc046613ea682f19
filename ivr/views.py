"""Twilio's webhooks for a survey call: parse the form, call the domain, render TwiML.

Every route here is signed by Twilio (see ivr.signature) or refused with 403 before
anything is read or written. Whatever goes wrong after that, the caller hears a polite
goodbye (never Twilio's application-error message) and the error is logged; a validly
signed webhook for a call aftercall does not know gets the same goodbye.

Routes, all POST, under /voice/attempts/<attempt id>:
  /start                          the call's Url: greeting and the first question
  /questions/<key>?try=N          a Gather's action (stage=after-one: NPS second key)
  /questions/<key>/recording      a Record's action
  /questions/<key>/transcription  Twilio's transcription callback
  /status                         status callbacks (all events)
  /amd                            asynchronous answering machine detection result
  /voicemail                      the message left on a machine
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, RequestEntityTooLarge

from aftercall.runtime import Runtime
from aftercall.survey import QuestionKind
from ivr import calls, flow, keypad
from ivr.prompts import Phrasebook, builtin_phrase
from ivr.signature import is_from_twilio
from ivr.twiml import CallUrls, goodbye, hang_up, render_step
from scoring import alerts

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")

# The dialer's job that schedules a retry or closes the request (by name: ivr does not
# import the dialer, it only hands it work through the queue).
AFTER_ATTEMPT_JOB = "dialer.jobs.after_attempt"

MAX_TRIES_IN_URL = 10


def _runtime() -> Runtime:
    return current_app.extensions["aftercall"]


@bp.before_request
def _require_twilio_signature() -> None:
    runtime = _runtime()
    settings = runtime.settings
    if not is_from_twilio(settings.twilio_auth_token, settings.public_base_url, request):
        log.warning("refused unsigned or forged webhook %s %s", request.method, request.path)
        abort(403)


@bp.errorhandler(Exception)
def _apologise(error: Exception) -> Response | HTTPException:
    if isinstance(error, RequestEntityTooLarge | BadRequest):
        # A body too large or malformed to read cannot carry a valid signature.
        log.warning("refused an unreadable webhook body on %s", request.path)
        return Forbidden()
    if isinstance(error, HTTPException):
        return error
    log.exception("webhook %s failed; ending the call politely", request.path)
    return _unavailable()


@bp.post("/attempts/<int:attempt_id>/start")
def start(attempt_id: int) -> Response:
    runtime = _runtime()
    answered_by = request.form.get("AnsweredBy", "")[:32] or None
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        if call is None:
            return _unavailable()
        phrases = _phrases(call)
        if calls.is_machine(answered_by) and calls.record_machine(session, call, answered_by):
            return _twiml(_voicemail(phrases, leave_message=call.definition.leave_voicemail))
        calls.start_survey(session, call, answered_by)
        step = flow.opening(call.definition)
        if isinstance(step, flow.Finish):
            calls.finish_survey(session, call)
        return _twiml(render_step(step, phrases, _urls(call)))


@bp.post("/attempts/<int:attempt_id>/questions/<key>")
def question(attempt_id: int, key: str) -> Response:
    runtime = _runtime()
    after_one = request.args.get("stage") == "after-one"
    named = calls.named_call(attempt_id, request.form.get("CallSid", ""), request.args.get("ref"))
    if named is not None:
        reply = _answer_named_call(runtime, named, key, after_one)
        if reply is not None:
            return reply
    attempt_number = _try_number()
    answered = None
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        asked = call.definition.question(key) if call else None
        if call is None or asked is None or asked.kind is QuestionKind.COMMENT:
            return _unavailable()
        phrases = _phrases(call)
        result = keypad.interpret(asked.kind, request.form.get("Digits"), after_one=after_one)
        if isinstance(result, keypad.OptedOut):
            calls.opt_out(session, call)
            return _twiml(goodbye(phrases, "opted_out"))
        if isinstance(result, keypad.NeedsSecondDigit):
            step: flow.Step = flow.ListenForZero(asked, attempt_number)
        elif isinstance(result, keypad.Answered):
            answers = calls.answer_question(
                session.connection(), call, asked, value=result.value, keys=result.keys
            )
            if answers is None:  # another webhook pinned another survey version just now
                return _unavailable()
            answered = (call.request_id, asked.kind.value, result.value)
            step = flow.after_answer(call.definition, key, answers)
        else:
            answers = calls.answers_by_key(session, call.request_id)
            step = flow.after_rejection(
                call.definition, asked, attempt_number, result.reason, answers
            )
        if isinstance(step, flow.Finish):
            calls.finish_survey(session, call)
        reply = _twiml(render_step(step, phrases, _urls(call)))
    if answered is not None:
        # After the commit: the alert job reads the answer back from the database.
        alerts.queue_detractor_alert(runtime, *answered)
    return reply


def _answer_named_call(
    runtime: Runtime, call: calls.LiveCall, key: str, after_one: bool
) -> Response | None:
    """The busiest webhook, a keypad answer, without reading the call first when the
    URL names it (`calls.named_call()`): the answer is stored and the call checked in
    the same statement, in no transaction when the survey cannot end after this
    question (the statement is the webhook's only write), else in one with the survey's
    end. None when that is not the case here (another key, or the call is not what the
    URL says; nothing was written): `question()` then reads the call and does
    everything as for any webhook."""
    asked = call.definition.question(key)
    if asked is None or asked.kind is QuestionKind.COMMENT:
        return None
    result = keypad.interpret(asked.kind, request.form.get("Digits"), after_one=after_one)
    if not isinstance(result, keypad.Answered):
        return None
    if flow.may_finish_after(call.definition, key):
        # The answer that may be the last and the survey's end: one transaction.
        with runtime.db.session() as session:
            answers = calls.answer_question(
                session.connection(), call, asked, value=result.value, keys=result.keys
            )
            if answers is None:
                return None
            step = flow.after_answer(call.definition, key, answers)
            if isinstance(step, flow.Finish):
                calls.finish_survey(session, call)
    else:
        with runtime.db.single_statement() as connection:
            answers = calls.answer_question(
                connection, call, asked, value=result.value, keys=result.keys
            )
        if answers is None:
            return None
        step = flow.after_answer(call.definition, key, answers)
        assert not isinstance(step, flow.Finish)  # may_finish_after() said so
    # After the commit: the alert job reads the answer back from the database.
    alerts.queue_detractor_alert(runtime, call.request_id, asked.kind.value, result.value)
    return _twiml(render_step(step, _phrases(call), _urls(call)))


@bp.post("/attempts/<int:attempt_id>/questions/<key>/recording")
def recording(attempt_id: int, key: str) -> Response:
    runtime = _runtime()
    form = request.form
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        asked = call.definition.question(key) if call else None
        if call is None or asked is None or asked.kind is not QuestionKind.COMMENT:
            return _unavailable()
        phrases = _phrases(call)
        if form.get("Digits") == keypad.OPT_OUT_KEY:
            calls.opt_out(session, call)
            return _twiml(goodbye(phrases, "opted_out"))
        recording_url = form.get("RecordingUrl", "")[:500]
        if recording_url:
            # Stored unless a delivery before this one stored it (then nothing changes).
            calls.store_answer(
                session, call, asked, value=None,
                keys=form.get("Digits", "")[:keypad.MAX_KEYS_KEPT],
                recording_url=recording_url,
                recording_sid=form.get("RecordingSid", "")[:64] or None,
                recording_seconds=calls.parse_int(form.get("RecordingDuration")),
            )  # fmt: skip
        # A comment is optional: an empty recording moves on rather than asking again.
        answers = calls.answers_by_key(session, call.request_id)
        step = flow.after_answer(call.definition, key, answers)
        if isinstance(step, flow.Finish):
            calls.finish_survey(session, call)
        return _twiml(render_step(step, phrases, _urls(call)))


@bp.post("/attempts/<int:attempt_id>/questions/<key>/transcription")
def transcription(attempt_id: int, key: str) -> Response:
    runtime = _runtime()
    form = request.form
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        asked = call.definition.question(key) if call else None
        if call is not None and asked is not None and asked.kind is QuestionKind.COMMENT:
            calls.record_transcript(
                session, call, asked,
                text=form.get("TranscriptionText", "")[:10_000],
                status=form.get("TranscriptionStatus", ""),
                recording_url=form.get("RecordingUrl", "")[:500] or None,
                recording_sid=form.get("RecordingSid", "")[:64] or None,
            )  # fmt: skip
    return _twiml(VoiceResponse())


@bp.post("/attempts/<int:attempt_id>/status")
def status(attempt_id: int) -> Response:
    runtime = _runtime()
    form = request.form
    if calls.is_progress(form.get("CallStatus", "")):
        with runtime.db.single_statement() as connection:
            calls.record_progress(connection, attempt_id, form.get("CallSid", ""), form)
        return _twiml(VoiceResponse())
    with runtime.db.session() as session:
        ended = calls.record_status(
            session.connection(), attempt_id, form.get("CallSid", ""), form.to_dict()
        )
    # A request done with (answered, opted out) leaves the dialer nothing to decide.
    if ended is not None and not ended.request_state.is_final_for_survey:
        _hand_back_to_dialer(runtime, ended.request_id, attempt_id)
    return _twiml(VoiceResponse())


def _hand_back_to_dialer(runtime: Runtime, request_id: int, attempt_id: int) -> None:
    """The dialer decides about retries; Redis carries the work to it. If Redis is
    down, the dialer's reconciliation finds the ended attempt later."""
    try:
        runtime.call_queue.enqueue(
            AFTER_ATTEMPT_JOB, request_id, job_id=f"after-attempt-{attempt_id}"
        )
    except RedisError as exc:
        log.warning("attempt %s ended; could not queue the follow-up: %s", attempt_id, exc)


@bp.post("/attempts/<int:attempt_id>/amd")
def answering_machine(attempt_id: int) -> Response:
    runtime = _runtime()
    answered_by = request.form.get("AnsweredBy", "")[:32]
    call_sid = request.form.get("CallSid", "")
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        if call is None:
            return _twiml(VoiceResponse())
        if not calls.is_machine(answered_by):
            if answered_by:
                calls.note_answered_by(session, call, answered_by)
            return _twiml(VoiceResponse())
        stop = calls.record_machine(session, call, answered_by)
        leave_message = call.definition.leave_voicemail
    if stop:
        # The survey already started playing (asynchronous detection never keeps a
        # person waiting); steer the live call to the message or end it.
        try:
            live = runtime.twilio.calls(call_sid)
            if leave_message:
                live.update(url=f"{_base_url(attempt_id)}/voicemail", method="POST")
            else:
                live.update(status="completed")
        except TwilioException as exc:
            # The call may already have ended; the status callback will settle it.
            log.info("could not steer call %s after machine detection: %s", call_sid, exc)
    return _twiml(VoiceResponse())


@bp.post("/attempts/<int:attempt_id>/voicemail")
def voicemail(attempt_id: int) -> Response:
    runtime = _runtime()
    with runtime.db.session() as session:
        call = _find_call(session, attempt_id)
        if call is None:
            return _twiml(hang_up())
        return _twiml(_voicemail(_phrases(call), leave_message=True))


def _find_call(session: Session, attempt_id: int) -> calls.LiveCall | None:
    call_sid = request.form.get("CallSid", "")
    call = calls.find_call(session, attempt_id, call_sid, _runtime().catalog)
    if call is None:
        log.warning("webhook for unknown call attempt %s", attempt_id)
    return call


def _voicemail(phrases: Phrasebook, *, leave_message: bool) -> VoiceResponse:
    return goodbye(phrases, "voicemail") if leave_message else hang_up()


def _phrases(call: calls.LiveCall) -> Phrasebook:
    settings = _runtime().settings
    return Phrasebook.for_call(
        call.definition, call.language, settings.company_name, settings.callback_number
    )


def _urls(call: calls.LiveCall) -> CallUrls:
    return CallUrls(_base_url(call.attempt_id), ref=call.ref)


def _base_url(attempt_id: int) -> str:
    return f"{_runtime().settings.public_base_url}/voice/attempts/{attempt_id}"


def _try_number() -> int:
    value = request.args.get("try", "1")
    number = int(value) if value.isdigit() else 1
    return min(max(number, 1), MAX_TRIES_IN_URL)


def _unavailable() -> Response:
    response = VoiceResponse()
    response.say(builtin_phrase("en", "unavailable"), voice="Polly.Joanna", language="en-US")
    response.hangup()
    return _twiml(response)


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), status=200, mimetype="text/xml")
