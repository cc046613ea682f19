"""Twilio's webhooks for a survey call: parse the form, call the domain, render TwiML.

Every route here is signed by Twilio (aftercall.web.twilio_auth) or refused with 403 before
anything is read or written. Whatever goes wrong after that, the caller hears a polite
goodbye (never Twilio's application-error message) and the error is logged; a validly
signed webhook for a call aftercall does not know gets the same goodbye.

Routes, all POST, under /voice/attempts/<attempt id>:
  /start                          the call's Url: greeting and the first question
  /questions/<key>?try=N          a Gather's action: keys or speech (stage=after-one: NPS
                                  second key)
  /questions/<key>/confirm        "I heard nine, is that right?": a low-confidence spoken
                                  answer confirmed (the URL carries what was heard)
  /questions/<key>/recording?ref= a Record's action
  /questions/<key>/transcription  Twilio's transcription callback
  /status                         status callbacks (all events)
  /amd                            asynchronous answering machine detection result
  /voicemail                      the message left on a machine
"""

from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, abort, request
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, RequestEntityTooLarge

from aftercall.web.context import current_runtime
from aftercall.web.twilio_auth import is_from_twilio
from core.telephony import parse_int
from core.utterance import MAX_SPEECH_CHARS, parse_confidence
from dialer.status import take_status
from ivr import survey_call
from ivr.calls import LiveCall
from ivr.prompts import Phrasebook, builtin_phrase
from ivr.survey_call import Goodbye, HangUp, Heard, Keys, Recording, Turn
from ivr.twiml import (
    EMPTY_DOCUMENT,
    HANG_UP_DOCUMENT,
    CallUrls,
    DocumentKey,
    goodbye_document,
    step_document,
)

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")

MAX_TRIES_IN_URL = 10


@bp.before_request
def require_twilio_signature() -> None:
    """Refuse (403) a request Twilio did not sign, before anything is read or written."""
    settings = current_runtime().settings
    if not is_from_twilio(settings.twilio_auth_token, settings.public_base_url, request):
        log.warning("refused unsigned or forged webhook %s %s", request.method, request.path)
        abort(403)


@bp.errorhandler(Exception)
def apologise(error: Exception) -> Response | HTTPException:
    """A forged or unreadable request gets 403; any failure after that, a polite goodbye."""
    if isinstance(error, RequestEntityTooLarge | BadRequest):
        # A body too large or malformed to read cannot carry a valid signature.
        log.warning("refused an unreadable webhook body on %s", request.path)
        return Forbidden()
    if isinstance(error, HTTPException):
        return error
    log.exception("webhook %s failed; ending the call politely", request.path)
    return unavailable()


@bp.post("/attempts/<int:attempt_id>/start")
def start(attempt_id: int) -> Response:
    answered_by = request.form.get("AnsweredBy", "")[:32] or None
    return _respond(survey_call.start(current_runtime(), attempt_id, _call_sid(), answered_by))


@bp.post("/attempts/<int:attempt_id>/questions/<key>")
def question(attempt_id: int, key: str) -> Response:
    keys = Keys(
        digits=request.form.get("Digits"),
        after_one=request.args.get("stage") == "after-one",
        try_number=_try_number(),
        speech=request.form.get("SpeechResult"),
        confidence=request.form.get("Confidence"),
    )
    turn = survey_call.press_keys(
        current_runtime(), attempt_id, _call_sid(), request.args.get("ref"), key, keys
    )
    return _respond(turn)


@bp.post("/attempts/<int:attempt_id>/questions/<key>/confirm")
def confirm(attempt_id: int, key: str) -> Response:
    value = request.args.get("value", "")
    if not (value.isascii() and value.isdigit() and len(value) <= 2):
        return unavailable()
    heard = Heard(
        value=int(value),
        transcript=request.args.get("heard", "")[:MAX_SPEECH_CHARS],
        confidence=parse_confidence(request.args.get("confidence")),
        try_number=_try_number(),
        reply=request.form.get("SpeechResult"),
        digits=request.form.get("Digits"),
    )
    return _respond(
        survey_call.confirm_answer(current_runtime(), attempt_id, _call_sid(), key, heard)
    )


@bp.post("/attempts/<int:attempt_id>/questions/<key>/recording")
def recording(attempt_id: int, key: str) -> Response:
    form = request.form
    comment = Recording(
        url=form.get("RecordingUrl", "")[:500],
        sid=form.get("RecordingSid", "")[:64] or None,
        seconds=parse_int(form.get("RecordingDuration")),
        digits=form.get("Digits", ""),
    )
    turn = survey_call.record_comment(
        current_runtime(), attempt_id, _call_sid(), request.args.get("ref"), key, comment
    )
    return _respond(turn)


@bp.post("/attempts/<int:attempt_id>/questions/<key>/transcription")
def transcription(attempt_id: int, key: str) -> Response:
    form = request.form
    survey_call.record_transcript(
        current_runtime(), attempt_id, _call_sid(), key,
        text=form.get("TranscriptionText", "")[:10_000],
        status=form.get("TranscriptionStatus", ""),
        recording_url=form.get("RecordingUrl", "")[:500] or None,
        recording_sid=form.get("RecordingSid", "")[:64] or None,
    )  # fmt: skip
    return document(EMPTY_DOCUMENT)


@bp.post("/attempts/<int:attempt_id>/status")
def status(attempt_id: int) -> Response:
    take_status(current_runtime(), attempt_id, request.form)
    return document(EMPTY_DOCUMENT)


@bp.post("/attempts/<int:attempt_id>/amd")
def answering_machine(attempt_id: int) -> Response:
    runtime = current_runtime()
    call_sid = _call_sid()
    answered_by = request.form.get("AnsweredBy", "")[:32]
    verdict = survey_call.machine_detected(runtime, attempt_id, call_sid, answered_by)
    if verdict.stop:
        # The survey already started playing (asynchronous detection never keeps a
        # person waiting); steer the live call to the message or end it.
        try:
            live = runtime.twilio.calls(call_sid)
            if verdict.leave_message:
                live.update(url=f"{_base_url(attempt_id)}/voicemail", method="POST")
            else:
                live.update(status="completed")
        except TwilioException as exc:
            # The call may already have ended; the status callback will settle it.
            log.info("could not steer call %s after machine detection: %s", call_sid, exc)
    return document(EMPTY_DOCUMENT)


@bp.post("/attempts/<int:attempt_id>/voicemail")
def voicemail(attempt_id: int) -> Response:
    return _respond(survey_call.voicemail(current_runtime(), attempt_id, _call_sid()))


def _respond(turn: Turn) -> Response:
    return respond(turn)


def respond(turn: Turn, *, greeting: str = "greeting") -> Response:
    """The TwiML of a turn: the next step in the call's language and voice, greeting
    the caller with the phrase named `greeting` (an in-call survey's is its own)."""
    reply = turn.reply
    if isinstance(reply, HangUp):
        return document(HANG_UP_DOCUMENT)
    call = turn.call
    if call is None or reply is None:
        return unavailable()
    settings = current_runtime().settings
    # The document is rendered once per survey version, step, language and greeting
    # (ivr.twiml.step_document); the phrases are built only when it is.
    key = DocumentKey(
        call.survey_version_id, call.version_digest, call.language,
        settings.company_name, settings.callback_number, greeting,
    )  # fmt: skip

    def phrases() -> Phrasebook:
        return _phrases(call, greeting)

    if isinstance(reply, Goodbye):
        return document(goodbye_document(reply.phrase, key, phrases))
    return document(step_document(reply, key, phrases, _urls(call)))


def _call_sid() -> str:
    return request.form.get("CallSid", "")


def _phrases(call: LiveCall, greeting: str = "greeting") -> Phrasebook:
    settings = current_runtime().settings
    phrases = Phrasebook.for_call(
        call.definition, call.language, settings.company_name, settings.callback_number
    )
    if greeting != "greeting":
        template = phrases.overrides.get(greeting) or builtin_phrase(phrases.language, greeting)
        phrases = replace(phrases, overrides={**phrases.overrides, "greeting": template})
    return phrases


def _urls(call: LiveCall) -> CallUrls:
    return CallUrls(_base_url(call.attempt_id), ref=call.ref)


def _base_url(attempt_id: int) -> str:
    return f"{current_runtime().settings.public_base_url}/voice/attempts/{attempt_id}"


def _try_number() -> int:
    value = request.args.get("try", "1")
    number = int(value) if value.isdigit() else 1
    return min(max(number, 1), MAX_TRIES_IN_URL)


def _unavailable_document() -> str:
    response = VoiceResponse()
    response.say(builtin_phrase("en", "unavailable"), voice="Polly.Joanna", language="en-US")
    response.hangup()
    return str(response)


UNAVAILABLE_DOCUMENT = _unavailable_document()


def unavailable() -> Response:
    return document(UNAVAILABLE_DOCUMENT)


def twiml(response: VoiceResponse) -> Response:
    return document(str(response))


def document(twiml_document: str) -> Response:
    return Response(twiml_document, status=200, mimetype="text/xml")
