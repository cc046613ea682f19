"""Twilio's REST API for calls, the part a robocaller uses (2010-04-01 Calls resource).

Follows twilio.com/docs/voice/api/call-resource: create (POST Calls.json, 201), fetch
(GET Calls/{Sid}.json), update (POST Calls/{Sid}.json: Url/Method or Twiml redirect a
live call; Status=completed hangs it up; either Status cancels a queued or ringing call,
which then never connects; Status=canceled on a live call changes nothing), list
(GET Calls.json, one page). HTTP basic auth with the account SID and auth
token. Errors use Twilio's JSON shape so the SDK raises `TwilioRestException` with
`.status` and `.code`. Recording media is served (unauthenticated, as Twilio's default)
at the RecordingUrl given to `<Record>` actions, as a small silent WAV.
"""

from __future__ import annotations

import io
import json
import time
import wave
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from phonesim.clock import rfc2822
from phonesim.errors import ApiError, not_found, unauthorized
from phonesim.journal import RestExchange

if TYPE_CHECKING:
    from phonesim.network import PhoneNetwork

PREFIX = "/2010-04-01/Accounts/<account>"
RECORDING_SECONDS_SERVED = 30.0  # enough silence to be a plausible file, small enough


class RestApi:
    """The WSGI application behind `PhoneNetwork.api_base`."""

    def __init__(self, network: PhoneNetwork) -> None:
        self.net = network
        self.routes = Map(
            [
                Rule(f"{PREFIX}/Calls.json", endpoint="calls", methods=["GET", "POST"]),
                Rule(f"{PREFIX}/Calls/<sid>.json", endpoint="call", methods=["GET", "POST"]),
                Rule(
                    f"{PREFIX}/Recordings/<name>", endpoint="recording", methods=["GET", "DELETE"]
                ),
            ]
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        form: dict[str, list[str]] = {key: request.args.getlist(key) for key in request.args}
        for key in request.form:
            form[key] = request.form.getlist(key)
        call_sid: str | None = None
        error_code: int | None = None
        try:
            endpoint, values = self.routes.bind_to_environ(request.environ).match()
            if endpoint == "recording" and request.method == "GET":
                # Media and metadata are readable without credentials, as Twilio's are
                # unless the account enforces HTTP auth on media.
                response = self.recording(values["name"])
            elif endpoint == "recording":
                self._authenticate(request, values["account"])
                response = self.delete_recording(values["name"])
            else:
                self._authenticate(request, values["account"])
                fault = self.net.take_fault(request.path)
                if fault is not None:
                    raise fault
                response, call_sid = getattr(self, endpoint)(request, values, form)
        except ApiError as exc:
            response, error_code = _error(exc), exc.code
        except NotFound:
            exc = not_found(request.path)
            response, error_code = _error(exc), exc.code
        except MethodNotAllowed:
            exc = ApiError(405, 20004, "Method not allowed")
            response, error_code = _error(exc), exc.code
        exchange = RestExchange(
            self.net.clock.now(),
            request.method,
            request.path,
            {key: " ".join(values) for key, values in form.items()},
            response.status_code,
            error_code,
            call_sid,
        )
        self.net.record(self.net.call(call_sid) if call_sid else None, exchange)
        return response

    def _authenticate(self, request: Request, account: str) -> None:
        auth = request.authorization
        if (
            auth is None
            or auth.username != self.net.account_sid
            or auth.password != self.net.auth_token
            or account != self.net.account_sid
        ):
            raise unauthorized()

    # -- endpoints --------------------------------------------------------------------
    def calls(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        if request.method == "POST":
            call = self.net.create_call(form)
            hold = self.net.take_slow_create()
            if hold:
                time.sleep(hold)  # placed, but the answer comes too late for the client
            return _json(call.to_json(), 201), call.sid
        return _json(self._page(request)), None

    def call(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        sid = values["sid"]
        updating = request.method == "POST"
        call = self.net.update_call(sid, form) if updating else self.net.call(sid)
        return _json(call.to_json()), call.sid

    def recording(self, name: str) -> Response:
        sid, _, extension = name.partition(".")
        entry = self.net.recording(sid)
        if entry is None:
            raise not_found(f"/2010-04-01/Accounts/{self.net.account_sid}/Recordings/{name}")
        if extension == "json":
            return _json(
                {
                    "sid": sid,
                    "account_sid": self.net.account_sid,
                    "call_sid": entry["call_sid"],
                    "duration": str(round(entry["seconds"])),
                    "date_created": rfc2822(entry["date_created"]),
                    "status": "completed",
                    "channels": 1,
                    "source": "RecordVerb",
                    "uri": f"/2010-04-01/Accounts/{self.net.account_sid}/Recordings/{sid}.json",
                }
            )
        return Response(_silent_wav(entry["seconds"]), 200, mimetype="audio/x-wav")

    def delete_recording(self, name: str) -> Response:
        sid = name.removesuffix(".json")
        if not self.net.delete_recording(sid):
            raise not_found(f"/2010-04-01/Accounts/{self.net.account_sid}/Recordings/{name}")
        return Response(b"", 204)

    def _page(self, request: Request) -> dict[str, Any]:
        calls = self.net.calls
        for param, attribute in (("To", "to"), ("From", "from_"), ("Status", "status")):
            wanted = request.args.get(param)
            if wanted:
                calls = [call for call in calls if getattr(call, attribute) == wanted]
        calls.reverse()  # Twilio lists the newest first
        size = int(request.args.get("PageSize", 50))
        uri = f"/2010-04-01/Accounts/{self.net.account_sid}/Calls.json"
        return {
            "calls": [call.to_json() for call in calls[:size]],
            "end": max(0, min(size, len(calls)) - 1),
            "first_page_uri": f"{uri}?PageSize={size}&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{uri}?PageSize={size}&Page=0",
        }


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


def _error(exc: ApiError) -> Response:
    response = _json(exc.to_json(), exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _silent_wav(seconds: float) -> bytes:
    rate = 8000
    frames = int(rate * max(0.1, min(seconds, RECORDING_SECONDS_SERVED)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * frames)
    return buffer.getvalue()
