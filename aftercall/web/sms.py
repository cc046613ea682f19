"""Twilio's messaging webhooks for the SMS channel: parse the form, call sms/, answer.

Routes, both POST and signed by Twilio (a forged or unsigned post gets 403 before
anything is read or written, as on every voice webhook):
  /sms/inbound   the survey number's messaging URL ("A message comes in")
  /sms/status    status callbacks of aftercall's own texts (?message=<id>)

The inbound webhook answers with an empty TwiML <Response/>: aftercall's replies go out
through the Messages API, paced and with status callbacks of their own (sms.outbox),
after the commit that decided them. Whatever goes wrong after the signature check, the
webhook still answers 200 with an empty response and logs the error: Twilio would
otherwise tell the customer nothing either, and a 500 shows in Twilio's debugger as an
application error, not as the cause.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, RequestEntityTooLarge

from aftercall.web import voice
from aftercall.web.context import current_runtime
from sms import conversation
from sms.outbox import queue_texts
from sms.replies import MAX_BODY

log = logging.getLogger(__name__)

bp = Blueprint("sms", __name__, url_prefix="/sms")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# The voice webhooks' own check: a forged or unsigned post is 403 before anything runs.
bp.before_request(voice.require_twilio_signature)


@bp.errorhandler(Exception)
def handle_error(error: Exception) -> Response | HTTPException:
    if isinstance(error, RequestEntityTooLarge | BadRequest):
        log.warning("refused an unreadable webhook body on %s", request.path)
        return Forbidden()
    if isinstance(error, HTTPException):
        return error
    log.exception("messaging webhook %s failed", request.path)
    return _empty()


@bp.post("/inbound")
def inbound() -> Response:
    runtime = current_runtime()
    sid = _field("MessageSid") or _field("SmsSid")
    phone = _field("From")
    if not sid or not phone:
        log.warning("inbound text without MessageSid or From: ignored")
        return _empty()
    received = conversation.receive(
        runtime,
        conversation.Inbound(
            message_sid=sid,
            phone=phone,
            to=_field("To"),
            body=request.form.get("Body", "")[:MAX_BODY],
            opt_out_type=_field("OptOutType", 16) or None,
        ),
    )
    queue_texts(runtime, received.texts)
    return _empty()


@bp.post("/status")
def status() -> Response:
    message = request.args.get("message", "")
    sid = _field("MessageSid") or _field("SmsSid")
    state = _field("MessageStatus", 20) or _field("SmsStatus", 20)
    if not (message.isascii() and message.isdigit() and len(message) <= 18) or not sid:
        return Response("", status=204)
    known = conversation.record_status(
        current_runtime(), int(message), sid, state, _field("ErrorCode", 16) or None
    )
    if not known:
        log.warning("status callback for unknown text %s (%s)", message, sid[:64])
    return Response("", status=204)


def _field(name: str, limit: int = 64) -> str:
    """A field Twilio writes (SIDs, numbers, statuses), as the database can store it:
    Twilio never sends NUL or lone surrogates, but a forged-then-signed or broken client
    might, and PostgreSQL refuses NUL in text."""
    value = request.form.get(name, "")[:limit]
    return "".join(c for c in value if c != "\x00" and not "\ud800" <= c <= "\udfff")


def _empty() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")
