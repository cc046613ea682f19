"""What every JSON API of aftercall shares: API-key authentication and the error shape.

The intake API (aftercall.web.intake_api) and the report API (aftercall.web.reports_api) are separate blueprints
that both register `require_api_key` and `api_error`. Keys themselves (creation,
hashing, revocation, scopes) are core.apikeys. Which scopes each blueprint accepts is
`BLUEPRINT_SCOPES`, here, in one table (and `ENDPOINT_SCOPES` for the routes that
differ from their blueprint): a valid key without one of them gets 403, a blueprint
missing from the table refuses every key. Every error under /api/ is
`{"error": {"code": ..., "message": ...}}`, never an HTML page or a stack trace.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from flask import Flask, Response, g, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from aftercall.web.context import current_runtime
from core import apikeys
from core.runtime import Runtime

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
# A key needs one of these scopes to use the blueprint's routes.
BLUEPRINT_SCOPES = {
    "api": (apikeys.INTAKE,),  # aftercall.web.intake_api: sending calls, looking up survey requests
    "reports": (apikeys.REPORTS, apikeys.REPORTS_FULL),  # aftercall.web.reports_api
    "follow_ups_api": (apikeys.FOLLOW_UPS,),  # aftercall.web.follow_ups_api: a CRM's mirror
}
# Routes that accept other scopes than their blueprint: a survey request (an alert's
# link) is read back by the intake key that sent it, or by any key with `reports:full`,
# which may read every customer's number and answers anyway.
ENDPOINT_SCOPES = {
    "api.get_survey_request": (apikeys.INTAKE, apikeys.REPORTS_FULL),
}
_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
    415: "unsupported_media_type",
    500: "internal_error",
}


class ApiError(Exception):
    """A problem with the request as a whole, answered with `status` and a JSON error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, the one time format the APIs write."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def require_api_key() -> Response | None:
    """A blueprint's before_request: a valid, unrevoked bearer key (else 401) holding a
    scope the blueprint accepts (else 403). The key's name, id and scopes are left in
    `g.api_key_name`, `g.api_key_id` and `g.api_key_scopes` for the views."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return _unauthorized("send the API key as 'Authorization: Bearer <key>'")
    runtime = current_runtime()
    with runtime.db.session() as session:
        key = apikeys.verify_key(session, presented.strip())
        name = key.name if key else None
        key_id = key.id if key else None
        scopes = apikeys.key_scopes(key) if key else frozenset()
    if name is None:
        log.warning("refused an unknown or revoked API key on %s %s", request.method, request.path)
        return _unauthorized("the API key is unknown or revoked", error="invalid_token")
    accepted = ENDPOINT_SCOPES.get(request.endpoint or "") or BLUEPRINT_SCOPES.get(
        request.blueprint or "", ()
    )
    if not scopes & set(accepted):
        log.warning("API key %s lacks the scope for %s %s", name, request.method, request.path)
        return _insufficient_scope(name, scopes, accepted)
    g.api_key_name = name
    g.api_key_id = key_id
    g.api_key_scopes = scopes
    retry_after = _over_rate_limit(runtime, name)
    if retry_after is not None:
        response = error_response(
            429, "rate_limited", f"more than {runtime.settings.api_rate_limit} requests a minute"
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    return None


def _over_rate_limit(runtime: Runtime, key_name: str) -> int | None:
    """Seconds to wait if `key_name` used up this minute's requests, else None.

    A counter per key per minute in Redis, shared by every web process. If Redis cannot
    be reached the request is let through: a contact center's intake should not stop
    because the limiter is down.
    """
    window = int(time.time() // 60)
    key = f"aftercall:api-rate:{key_name}:{window}"
    try:
        with runtime.redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = pipe.execute()
    except RedisError as exc:
        log.warning("API rate limiter unavailable, request allowed: %s", exc)
        return None
    if count > runtime.settings.api_rate_limit:
        return 60 - int(time.time()) % 60
    return None


def install_json_errors(app: Flask) -> None:
    """JSON errors for every path under /api/, including routing errors (an unknown path
    or method), which happen before Flask knows which blueprint was meant."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response | HTTPException:
        if not request.path.startswith(API_PREFIX):
            return error
        status = error.code or 500
        if status >= 500:
            # An unhandled exception arrives here as a 500; say nothing about its insides.
            log.error("API %s %s failed", request.method, request.path, exc_info=_cause(error))
            return error_response(500, "internal_error", "something went wrong on our side")
        code = _ERROR_CODES.get(status, "http_error")
        response = error_response(status, code, error.description or error.name)
        # Keep what the error says in headers (Allow on a 405, Retry-After ...).
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response


def _unauthorized(message: str, error: str | None = None) -> Response:
    response = error_response(401, "unauthorized", message)
    challenge = 'Bearer realm="aftercall"'
    if error:
        challenge += f', error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def _insufficient_scope(name: str, scopes: frozenset[str], accepted: tuple[str, ...]) -> Response:
    held = " ".join(sorted(scopes))
    needed = " or ".join(accepted) or "a scope no key can have"
    response = error_response(
        403, "forbidden", f"the API key {name!r} has scope {held}; this route needs {needed}"
    )
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="aftercall", error="insufficient_scope", scope="{" ".join(accepted)}"'
    )
    return response


def _cause(error: HTTPException) -> BaseException:
    return getattr(error, "original_exception", None) or error
