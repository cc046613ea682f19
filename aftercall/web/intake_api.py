"""The intake REST API: contact-center systems report finished calls and look them up.

    POST /api/v1/survey-requests         one call, or {"requests": [...]} (up to 1,000)
    GET  /api/v1/survey-requests/<id>    a request with its call attempts and answers
    POST /api/v1/events/twilio-flex      TaskRouter's event callback (dialer.receivers)
    POST /api/v1/events/amazon-connect   an EventBridge contact event, unchanged
    POST /api/v1/events/genesys-cloud    an EventBridge Genesys Cloud detail event

Every route needs `Authorization: Bearer <key>` (keys: core.apikeys, `aftercall apikey
create`), except the Twilio Flex receiver: TaskRouter cannot send a key, and signs its
callbacks instead (X-Twilio-Signature, checked by core.signature with the Flex account's
auth token). Views only parse the request, call dialer.intake or dialer.receivers (which
make every decision about a call, exactly as for the CLI and CSV import) and render JSON. A problem with one item of
a batch is that item's rejection; a problem with the request as a whole is an HTTP
error. Every error under /api/ is JSON, never an HTML page or a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from aftercall.web.api_access import ApiError, api_error, error_response, iso_utc, require_api_key
from aftercall.web.context import current_runtime, runtime_of
from aftercall.web.twilio_auth import is_from_twilio
from core import apikeys
from core.models import Answer, CallAttempt, Channel, SurveyMode, SurveyRequest
from core.runtime import Runtime
from dialer.in_call import Transfer
from dialer.intake import (
    CallEnded,
    IntakeRejected,
    IntakeResult,
    Rejection,
    accept_calls,
    check_text,
    parse_ended_at,
)
from dialer.receivers import amazon_connect, genesys_cloud, mapping_file, twilio_flex
from dialer.receivers.outcome import EventOutcome, Platform, Status, receive

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.register_error_handler(ApiError, api_error)

# app.extensions key of the receivers as RECEIVERS_FILE configures them.
RECEIVERS = "aftercall.receivers"
# Routes signed by Twilio instead of carrying an API key.
SIGNED_BY_TWILIO = frozenset({"api.receive_twilio_flex_event"})


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in SIGNED_BY_TWILIO:
        return _require_flex_signature()
    return require_api_key()


@bp.record_once
def _load_receivers(state: BlueprintSetupState) -> None:
    """Read RECEIVERS_FILE when the app is built: a mistake in it stops the web process
    at start (MappingError, naming it) rather than refusing events later."""
    runtime = runtime_of(state.app)
    state.app.extensions[RECEIVERS] = mapping_file.load(runtime.settings.receivers_file)


MAX_BATCH = 1000
TEXT_FIELDS = ("phone", "source_call_id", "agent", "queue", "team", "language", "survey")
REQUIRED_FIELDS = ("phone", "source_call_id", "ended_at")
FIELDS = frozenset({*TEXT_FIELDS, "ended_at", "metadata", "mode", "channel"})
MODES = tuple(mode.value for mode in SurveyMode)
# What intake may ask for; the SMS fallback is the dialer's to decide.
CHANNELS = (Channel.VOICE.value, Channel.SMS.value)
# Request ids are 32-bit on PostgreSQL; a larger id in a URL is simply not found.
MAX_ID = 2**31 - 1


def parse_call(item: object) -> CallEnded:
    """One JSON survey request as a `CallEnded`; IntakeRejected(invalid_field) naming the
    field if it is malformed. Whether the call may be surveyed is intake's decision."""
    if not isinstance(item, dict):
        raise _invalid("each survey request must be a JSON object")
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise _invalid(f"unknown field(s): {', '.join(unknown)}")
    for name in REQUIRED_FIELDS:
        if item.get(name) is None:
            raise _invalid(f"{name} is required")
    text: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise _invalid(f"{name} must be a string")
        text[name] = None if value is None else check_text(value, name)
    ended_at = item["ended_at"]
    if not isinstance(ended_at, str):
        raise _invalid("ended_at must be a string (ISO 8601 with a UTC offset)")
    mode = item.get("mode")
    if mode is None:
        mode = SurveyMode.CALLBACK.value
    if mode not in MODES:
        raise _invalid(f"mode must be one of {', '.join(MODES)}")
    channel = item.get("channel")
    if channel is not None and channel not in CHANNELS:
        raise _invalid(f"channel must be one of {', '.join(CHANNELS)}")
    return CallEnded(
        phone=text["phone"] or "",
        source_call_id=text["source_call_id"] or "",
        ended_at=parse_ended_at(ended_at),
        agent=text["agent"],
        queue=text["queue"],
        team=text["team"],
        language=text["language"] or "en",
        survey=text["survey"],
        metadata=_metadata(item.get("metadata")),
        mode=SurveyMode(mode),
        channel=Channel(channel) if channel is not None else None,
    )


def submit(runtime: Runtime, items: list[Any], api_key_id: int | None = None) -> list[IntakeResult]:
    """Intake for parsed JSON items, one result per item in order.

    Malformed items are rejected here without touching the database; the rest go to
    dialer.intake in a single call (one transaction for the batch).
    """
    parsed: list[CallEnded | IntakeResult] = []
    for item in items:
        try:
            parsed.append(parse_call(item))
        except IntakeRejected as exc:
            parsed.append(
                IntakeResult(
                    _claimed_id(item),
                    reason=exc.reason.value,
                    detail=exc.detail,
                    mode=_claimed_mode(item),
                )
            )
    calls = [replace(entry, api_key_id=api_key_id) for entry in parsed
             if isinstance(entry, CallEnded)]  # fmt: skip
    decided = iter(accept_calls(runtime, calls) if calls else [])
    return [entry if isinstance(entry, IntakeResult) else next(decided) for entry in parsed]


def result_json(result: IntakeResult) -> dict[str, Any]:
    """Every key always present: clients read one shape whatever the outcome.

    A call the dialing rules suppressed (not sampled, opted out, ...) is `rejected` but
    stored, so it keeps its request_id.
    """
    return {
        "source_call_id": result.source_call_id,
        "status": "accepted" if result.accepted else "rejected",
        "request_id": result.request_id,
        "planned_call_at": iso_utc(result.due_at) if result.accepted else None,
        "reason": result.reason,
        "detail": result.detail,
        "mode": result.mode.value,
        "channel": result.channel.value,
        "transfer": _transfer_json(result.transfer),
    }


def _transfer_json(transfer: Transfer | None) -> dict[str, Any] | None:
    """Where the platform sends the customer for an in-call survey (docs/in-call.md)."""
    if transfer is None:
        return None
    return {
        "token": transfer.token,
        "expires_at": iso_utc(transfer.expires_at),
        "url": transfer.url,
        "phone": transfer.phone or None,
        "digits": transfer.digits,
    }


def request_json(survey_request: SurveyRequest) -> dict[str, Any]:
    version = survey_request.survey_version
    return {
        "id": survey_request.id,
        "phone": survey_request.phone,
        "source_call_id": survey_request.source_call_id,
        "agent": survey_request.agent,
        "queue": survey_request.queue,
        "team": survey_request.team,
        "language": survey_request.language,
        "ended_at": iso_utc(survey_request.call_ended_at),
        "survey": survey_request.survey_name,
        "survey_version": version.version if version else None,
        "state": survey_request.state.value,
        "suppression_reason": survey_request.suppression_reason,
        "mode": survey_request.mode.value,
        "channel": survey_request.channel.value,
        "attribution": survey_request.attribution.value if survey_request.attribution else None,
        "planned_call_at": iso_utc(survey_request.due_at),
        "metadata": survey_request.extra,
        "attempts": [_attempt_json(attempt) for attempt in survey_request.attempts],
        "answers": [_answer_json(answer) for answer in survey_request.answers],
    }


def _attempt_json(attempt: CallAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "call_sid": attempt.call_sid,
        "status": attempt.status,
        "answered_by": attempt.answered_by,
        "started_at": iso_utc(attempt.started_at),
        "answered_at": iso_utc(attempt.answered_at),
        "ended_at": iso_utc(attempt.ended_at),
        "duration_seconds": attempt.duration_seconds,
        "error_code": attempt.error_code,
        "direction": attempt.direction,
    }


def _answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "question_key": answer.question_key,
        "kind": answer.kind,
        "value": answer.value,
        "keys": answer.keys,
        "recording_url": answer.recording_url,
        "transcript": answer.transcript,
        "input": answer.input,
        "confidence": answer.confidence,
        "received_at": iso_utc(answer.received_at),
    }


# -- routes -----------------------------------------------------------------------------


@bp.post("/survey-requests")
def create_survey_requests() -> tuple[Response, int]:
    items, single = _read_submission()
    results = submit(current_runtime(), items, api_key_id=g.api_key_id)
    log.info(
        "intake via API key %s: %d accepted of %d",
        g.api_key_name,
        sum(result.accepted for result in results),
        len(results),
    )
    if single:
        (result,) = results
        return jsonify(result_json(result)), 201 if result.accepted else 200
    accepted = sum(result.accepted for result in results)
    body = {
        "results": [result_json(result) for result in results],
        "accepted": accepted,
        "rejected": len(results) - accepted,
    }
    return jsonify(body), 200


@bp.get("/survey-requests/<int:request_id>")
def get_survey_request(request_id: int) -> Response:
    if request_id > MAX_ID:
        raise ApiError(404, "not_found", f"no survey request {request_id}")
    with current_runtime().db.session() as session:
        survey_request = session.get(
            SurveyRequest,
            request_id,
            options=[
                selectinload(SurveyRequest.attempts),
                selectinload(SurveyRequest.answers),
                selectinload(SurveyRequest.survey_version),
            ],
        )
        # Another key's request is as unknown as a missing one: an intake key reads back
        # only what it sent, so a leaked key does not open every customer's record; a
        # `reports:full` key reads any (a platform's events came with no key, or another).
        readable = survey_request is not None and (
            apikeys.REPORTS_FULL in g.api_key_scopes or survey_request.api_key_id == g.api_key_id
        )
        if not readable:
            raise ApiError(404, "not_found", f"no survey request {request_id}")
        return jsonify(request_json(survey_request))


@bp.post("/events/twilio-flex")
def receive_twilio_flex_event() -> Response:
    receiver = _receivers().twilio_flex
    form = request.form.to_dict()
    runtime = current_runtime()
    outcome = _receive(
        Platform.TWILIO_FLEX, lambda: twilio_flex.call_after_event(runtime, form, receiver)
    )
    # TaskRouter wants 204 with Content-Type application/json, whatever aftercall made
    # of the event: an event it cannot map is logged and counted, since TaskRouter would
    # only send the same one again.
    response = Response(status=204, content_type="application/json")
    response.headers["X-Aftercall-Outcome"] = outcome.summary()
    return response


# The receivers EventBridge's API destinations post to: the platform's JSON event, as is.
_EventReceiver = Callable[[Runtime, Any, mapping_file.Receivers], CallEnded]
_EVENTBRIDGE_RECEIVERS: dict[Platform, _EventReceiver] = {
    Platform.AMAZON_CONNECT: lambda runtime, event, receivers: amazon_connect.call_ended(
        event, receivers.amazon_connect
    ),
    Platform.GENESYS_CLOUD: lambda runtime, event, receivers: genesys_cloud.call_after_event(
        runtime, event, receivers.genesys_cloud
    ),
}


@bp.post("/events/amazon-connect", defaults={"platform": Platform.AMAZON_CONNECT.value})
@bp.post("/events/genesys-cloud", defaults={"platform": Platform.GENESYS_CLOUD.value})
def receive_eventbridge_event(platform: str) -> tuple[Response, int]:
    event = _read_event()
    receivers = _receivers()
    to_call = _EVENTBRIDGE_RECEIVERS[Platform(platform)]
    runtime = current_runtime()
    outcome = _receive(
        Platform(platform), lambda: to_call(runtime, event, receivers), api_key_id=g.api_key_id
    )
    return _event_response(outcome)


# -- helpers ----------------------------------------------------------------------------


def _require_flex_signature() -> Response | None:
    settings = current_runtime().settings
    if is_from_twilio(twilio_flex.auth_token(settings), settings.public_base_url, request):
        return None
    log.warning("refused an unsigned or forged TaskRouter callback on %s", request.path)
    return error_response(
        403,
        "forbidden",
        "X-Twilio-Signature does not match this URL (PUBLIC_BASE_URL) and the Flex "
        "account's auth token (FLEX_AUTH_TOKEN)",
    )


def _receivers() -> mapping_file.Receivers:
    return current_app.extensions[RECEIVERS]


def _receive(platform: Platform, to_call: Any, api_key_id: int | None = None) -> EventOutcome:
    try:
        return receive(
            current_runtime(),
            platform,
            to_call,
            api_key_id=api_key_id,
            mode=_receivers().mode_of(platform),
        )
    except SQLAlchemyError:
        log.exception("%s event not stored: the database failed", platform)
        raise ApiError(
            503, "unavailable", "the event could not be stored now; deliver it again later"
        ) from None


def _event_response(outcome: EventOutcome) -> tuple[Response, int]:
    """Invalid events are errors; everything else is a 2xx, so that EventBridge does not
    deliver again an event that was used, repeated or deliberately ignored."""
    if outcome.status is Status.INVALID:
        return error_response(outcome.http_status or 422, outcome.reason or "invalid_event",
                              outcome.detail or ""), outcome.http_status or 422  # fmt: skip
    if outcome.result is not None:
        body = result_json(outcome.result)
        return jsonify(body), 201 if outcome.status is Status.ACCEPTED else 200
    body = {
        "source_call_id": None,
        "status": outcome.status.value,
        "request_id": None,
        "planned_call_at": None,
        "reason": outcome.reason,
        "detail": outcome.detail,
    }
    return jsonify(body), 200


def _read_event() -> Any:
    """The JSON body of an EventBridge delivery (its shape is the receiver's to judge)."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    data = request.get_data(cache=False)
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({_short(exc)})") from None


def _read_submission() -> tuple[list[Any], bool]:
    """The items of the POST body and whether it was a single object (not a batch)."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    data = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413
    try:
        body = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers malformed JSON and undecodable bytes; RecursionError a body
        # nested deeper than the parser goes.
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({_short(exc)})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    if "requests" not in body:
        return [body], True
    if set(body) != {"requests"}:
        raise ApiError(400, "invalid_body", "a batch body has only the key 'requests'")
    items = body["requests"]
    if not isinstance(items, list):
        raise ApiError(400, "invalid_body", "'requests' must be a list")
    if not items:
        raise ApiError(400, "invalid_body", "'requests' is empty")
    if len(items) > MAX_BATCH:
        raise ApiError(413, "too_many_requests_in_batch", f"at most {MAX_BATCH} requests per batch")
    return items, False


def _metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("metadata must be a JSON object")
    for key, entry in value.items():
        check_text(key, "a metadata key")
        if isinstance(entry, str):
            check_text(entry, f"metadata {key!r}")
        elif isinstance(entry, float) and not math.isfinite(entry):
            raise _invalid(f"metadata {key!r} must be a finite number")
        elif entry is not None and not isinstance(entry, bool | int | float):
            raise _invalid(f"metadata {key!r} must be a string, number, boolean or null")
    return value


def _claimed_id(item: object) -> str:
    claimed = item.get("source_call_id") if isinstance(item, Mapping) else None
    return claimed if isinstance(claimed, str) else ""


def _claimed_mode(item: object) -> SurveyMode:
    """The mode a refused item asked for, when it names a known one."""
    mode = item.get("mode") if isinstance(item, dict) else None
    return SurveyMode(mode) if mode in MODES else SurveyMode.CALLBACK


def _invalid(detail: str) -> IntakeRejected:
    return IntakeRejected(Rejection.INVALID_FIELD, detail)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__
