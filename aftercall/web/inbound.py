"""The survey number's webhooks: a customer transferred into an in-call survey.

Routes, all POST and signed by Twilio like every voice webhook (the voice blueprint's
signature check and error handling apply here too):
  /ivr/inbound          the survey number's voice URL (optionally ?survey=<name>); a
                        Twilio <Redirect> adds ?token=<token>
  /ivr/inbound/status   the survey number's status callback URL

Without a token in its URL, the survey number first listens IN_CALL_LISTEN_SECONDS, in
silence, for the token as DTMF digits ending in "#" (what PSTN platforms send once the
call is answered), then starts the survey. From the first question on, the call's
webhooks are the callback survey's, under /voice/attempts/<id>.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from aftercall.web import voice
from aftercall.web.context import current_runtime
from core.transfer_token import MAX_TOKEN_LENGTH
from dialer.status import take_status
from ivr import inbound
from ivr.prompts import Phrasebook
from ivr.twiml import goodbye

log = logging.getLogger(__name__)

bp = Blueprint("inbound", __name__, url_prefix="/ivr")
bp.before_request(voice.require_twilio_signature)
bp.register_error_handler(Exception, voice.apologise)


@bp.post("/inbound")
def transferred() -> Response:
    runtime = current_runtime()
    token = request.args.get("token") or request.form.get("Digits") or ""
    token = token.rstrip("#")[: MAX_TOKEN_LENGTH + 1] or None
    survey = request.args.get("survey", "")[:100] or None
    listen = runtime.settings.in_call_listen_seconds
    if token is None and listen and request.args.get("listened") != "1":
        return _listen_for_token(survey, listen)
    arrival = inbound.arrive(
        runtime,
        inbound.Transferred(
            call_sid=request.form.get("CallSid", "")[:64],
            caller=_customer_number(),
            token=token,
            survey=survey,
        ),
    )
    if isinstance(arrival, inbound.Released):
        return _release(arrival)
    return voice.respond(arrival, greeting="greeting_in_call")


@bp.post("/inbound/status")
def status() -> Response:
    """The survey number's status callback: the end of an in-call survey's attempt."""
    runtime = current_runtime()
    attempt_id = inbound.attempt_for_call(runtime, request.form.get("CallSid", "")[:64])
    if attempt_id is not None:
        take_status(runtime, attempt_id, request.form)
    return voice.twiml(VoiceResponse())


def _customer_number() -> str:
    """The customer's side of the call. A call to the survey number is the customer's;
    one the contact center placed to the customer (Direction outbound-api or
    outbound-dial) and then redirected here keeps its parameters: the customer is `To`."""
    form = request.form
    outbound = form.get("Direction", "").startswith("outbound")
    return form.get("To" if outbound else "From", "")


def _listen_for_token(survey: str | None, seconds: int) -> Response:
    """A silent Gather for the token's digits; its action comes back here either way."""
    query = {"listened": "1", **({"survey": survey} if survey else {})}
    action = f"{current_runtime().settings.public_base_url}/ivr/inbound?{urlencode(query)}"
    response = VoiceResponse()
    response.gather(
        action=action,
        method="POST",
        input="dtmf",
        finish_on_key="#",
        num_digits=MAX_TOKEN_LENGTH + 1,
        timeout=seconds,
        action_on_empty_result=True,
    )
    return voice.twiml(response)


def _release(released: inbound.Released) -> Response:
    settings = current_runtime().settings
    definition = current_runtime().catalog.get(released.survey)
    phrases = Phrasebook.for_call(
        definition, released.language, settings.company_name, settings.callback_number
    )
    return voice.twiml(goodbye(phrases, released.phrase))
