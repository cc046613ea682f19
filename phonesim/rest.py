"""Twilio's REST API, the part a robocaller uses (2010-04-01 Calls, Account, numbers).

Follows twilio.com/docs/voice/api/call-resource: create (POST Calls.json, 201), fetch
(GET Calls/{Sid}.json), update (POST Calls/{Sid}.json: Url/Method or Twiml redirect a
live call; Status=completed hangs it up; either Status cancels a queued or ringing call,
which then never connects; Status=canceled on a live call changes nothing), list
(GET Calls.json, newest first, filtered by To, From, Status). The account's own
resources (`phonesim.account`): fetch the Account (GET Accounts/{Sid}.json), list and
fetch IncomingPhoneNumbers (PhoneNumber: part of a number, `*` for any digit;
FriendlyName) and update one (POST IncomingPhoneNumbers/{Sid}.json: VoiceUrl,
VoiceMethod, StatusCallback, StatusCallbackMethod; an invalid URL is 21502), and list
and fetch OutgoingCallerIds (PhoneNumber, FriendlyName: exact). Calls to the account's
numbers (`PhoneNetwork.dial_in`) are listed and fetched with direction "inbound".
Messages (twilio.com/docs/messaging/api/message-resource): create (POST Messages.json,
201: To, From or MessagingServiceSid, Body, StatusCallback), fetch (GET
Messages/{Sid}.json) and list (GET Messages.json, newest first, filtered by To and
From), sent and received alike; `PhoneNetwork.create_message` says what is checked.

Lists page as Twilio's 2010-04-01 lists do: PageSize (default 50, at most 1000), Page,
and a PageToken in `next_page_uri` ("PA" and the last SID of the page) or
`previous_page_uri` ("PB" and the first), with `uri`, `first_page_uri`, `page`,
`page_size`, `start` and `end`; the SDK follows `next_page_uri`.

HTTP basic auth with the account SID and auth token: wrong or missing credentials answer
401 (20003); right credentials on another account's path answer 404 (20404), as Twilio's
do. A suspended or closed account may read but not place calls (401, 20005). Errors use
Twilio's JSON shape so the SDK raises `TwilioRestException` with `.status` and `.code`.
Recording media is served (unauthenticated, as Twilio's default) at the RecordingUrl
given to `<Record>` actions, as a small silent WAV.
"""

from __future__ import annotations

import io
import json
import re
import time
import wave
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from phonesim.account import IncomingNumber, check_method, check_url
from phonesim.clock import rfc2822
from phonesim.errors import ApiError, not_found, unauthorized
from phonesim.journal import RestExchange

if TYPE_CHECKING:
    from phonesim.network import PhoneNetwork

PREFIX = "/2010-04-01/Accounts/<account>"
RECORDING_SECONDS_SERVED = 30.0  # enough silence to be a plausible file, small enough
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class RestApi:
    """The WSGI application behind `PhoneNetwork.api_base`."""

    def __init__(self, network: PhoneNetwork) -> None:
        self.net = network
        self.routes = Map(
            [
                Rule(f"{PREFIX}.json", endpoint="account", methods=["GET"]),
                Rule(f"{PREFIX}/Calls.json", endpoint="calls", methods=["GET", "POST"]),
                Rule(f"{PREFIX}/Calls/<sid>.json", endpoint="call", methods=["GET", "POST"]),
                Rule(f"{PREFIX}/Messages.json", endpoint="messages", methods=["GET", "POST"]),
                Rule(f"{PREFIX}/Messages/<sid>.json", endpoint="message", methods=["GET"]),
                Rule(
                    f"{PREFIX}/Recordings/<name>", endpoint="recording", methods=["GET", "DELETE"]
                ),
                Rule(
                    f"{PREFIX}/IncomingPhoneNumbers.json",
                    endpoint="incoming_numbers",
                    methods=["GET"],
                ),
                Rule(
                    f"{PREFIX}/IncomingPhoneNumbers/<sid>.json",
                    endpoint="incoming_number",
                    methods=["GET", "POST"],
                ),
                Rule(f"{PREFIX}/OutgoingCallerIds.json", endpoint="caller_ids", methods=["GET"]),
                Rule(
                    f"{PREFIX}/OutgoingCallerIds/<sid>.json", endpoint="caller_id", methods=["GET"]
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
                hold = self.net.take_delay(request.path)
                if hold:
                    time.sleep(hold)
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
        if auth is None or not auth.username:
            raise unauthorized("Authentication Error - No credentials provided")
        if auth.username != self.net.account_sid:
            raise unauthorized("Authentication Error - invalid username")
        if auth.password != self.net.auth_token:
            raise unauthorized()
        if account != self.net.account_sid:
            # Authenticated, but no account of these credentials lives at that path.
            raise not_found(request.path)

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
        calls = self.net.calls
        filters: dict[str, str] = {}
        for param, attribute in (("To", "to"), ("From", "from_"), ("Status", "status")):
            wanted = request.args.get(param)
            if wanted:
                filters[param] = wanted
                calls = [call for call in calls if getattr(call, attribute) == wanted]
        calls.reverse()  # Twilio lists the newest first
        rows = [call.to_json() for call in calls]
        return _json(_page(request, "calls", rows, filters)), None

    def call(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        sid = values["sid"]
        updating = request.method == "POST"
        call = self.net.update_call(sid, form) if updating else self.net.call(sid)
        return _json(call.to_json()), call.sid

    def messages(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        if request.method == "POST":
            message = self.net.create_message(form)
            return _json(message.to_json(), 201), None
        messages, filters = self.net.messages, _filters(request, ("To", "From"))
        if "To" in filters:
            messages = [message for message in messages if message.to == filters["To"]]
        if "From" in filters:
            messages = [message for message in messages if message.from_ == filters["From"]]
        messages.reverse()  # Twilio lists the newest first
        rows = [message.to_json() for message in messages]
        return _json(_page(request, "messages", rows, filters)), None

    def message(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        return _json(self.net.message(values["sid"]).to_json()), None

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

    # -- the account and its numbers ------------------------------------------------------
    def account(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        return _json(self.net.account.to_json()), None

    def incoming_numbers(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        account = self.net.account
        numbers, filters = account.numbers, _filters(request, ("PhoneNumber", "FriendlyName"))
        if "PhoneNumber" in filters:
            matches = _number_pattern(filters["PhoneNumber"])
            numbers = [number for number in numbers if matches(number.phone_number)]
        if "FriendlyName" in filters:
            numbers = [n for n in numbers if n.friendly_name == filters["FriendlyName"]]
        rows = [number.to_json(account.sid) for number in numbers]
        return _json(_page(request, "incoming_phone_numbers", rows, filters)), None

    def incoming_number(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        number = self.net.account.number(values["sid"])
        if number is None:
            raise not_found(request.path)
        if request.method == "POST":
            number = self._configure_number(number, form)
        return _json(number.to_json(self.net.account.sid)), None

    def _configure_number(
        self, number: IncomingNumber, form: dict[str, list[str]]
    ) -> IncomingNumber:
        """Twilio's update of an IncomingPhoneNumber: the fields given change, the
        others stay; an empty VoiceUrl, StatusCallback or SmsUrl clears it. Fields
        phonesim does not model (FriendlyName, VoiceFallbackUrl ...) are ignored."""

        def get(name: str, current: str | None) -> str | None:
            values = form.get(name)
            return values[-1].strip() if values else current

        voice_url = get("VoiceUrl", number.voice_url)
        voice_method = get("VoiceMethod", number.voice_method) or "POST"
        status_callback = get("StatusCallback", number.status_callback)
        callback_method = get("StatusCallbackMethod", number.status_callback_method) or "POST"
        sms_url = get("SmsUrl", number.sms_url)
        sms_method = get("SmsMethod", number.sms_method) or "POST"
        for name, url in (
            ("VoiceUrl", voice_url),
            ("StatusCallback", status_callback),
            ("SmsUrl", sms_url),
        ):
            try:
                check_url(url, name)
            except ValueError as exc:
                raise ApiError(400, 21502, f"Invalid callback url: {exc}") from None
        for name, method in (
            ("VoiceMethod", voice_method),
            ("StatusCallbackMethod", callback_method),
            ("SmsMethod", sms_method),
        ):
            try:
                check_method(method, name)
            except ValueError as exc:
                raise ApiError(400, 20001, f"Invalid parameter: {exc}") from None
        return self.net.configure_number(
            number.phone_number,
            voice_url=voice_url,
            voice_method=voice_method,
            status_callback=status_callback,
            status_callback_method=callback_method,
            sms_url=sms_url,
            sms_method=sms_method,
        )

    def caller_ids(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        account = self.net.account
        entries, filters = account.caller_ids, _filters(request, ("PhoneNumber", "FriendlyName"))
        if "PhoneNumber" in filters:
            entries = [e for e in entries if e.phone_number == filters["PhoneNumber"]]
        if "FriendlyName" in filters:
            entries = [e for e in entries if e.friendly_name == filters["FriendlyName"]]
        rows = [entry.to_json(account.sid) for entry in entries]
        return _json(_page(request, "outgoing_caller_ids", rows, filters)), None

    def caller_id(
        self, request: Request, values: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[Response, str | None]:
        entry = self.net.account.caller_id(values["sid"])
        if entry is None:
            raise not_found(request.path)
        return _json(entry.to_json(self.net.account.sid)), None


def _filters(request: Request, names: Iterable[str]) -> dict[str, str]:
    """The list filters given, in Twilio's order (they are repeated in the page URIs)."""
    return {
        name: request.args[name].strip() for name in names if request.args.get(name, "").strip()
    }


def _number_pattern(pattern: str) -> Callable[[str], bool]:
    """Twilio's PhoneNumber filter: any part of the number, `*` standing for one digit."""
    regex = re.compile("".join(r"\d" if char == "*" else re.escape(char) for char in pattern))
    return lambda number: regex.search(number) is not None


def _page(
    request: Request, key: str, rows: list[dict[str, Any]], filters: dict[str, str]
) -> dict[str, Any]:
    """One page of `rows` under `key`, with Twilio's paging fields.

    A PageToken ("PA" + the SID a page ends after, "PB" + the SID it ends before) wins
    over Page, as at Twilio: the next page stays right while rows are added before it.
    """
    size = _whole_number(request, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    number = _whole_number(request, "Page", 0, 0, None)
    token = request.args.get("PageToken", "")
    sids = [row["sid"] for row in rows]
    start = number * size
    if token[2:] in sids and token[:2] == "PA":
        start = sids.index(token[2:]) + 1
    elif token[2:] in sids and token[:2] == "PB":
        start = max(0, sids.index(token[2:]) - size)
    page = rows[start : start + size]

    def uri(page_number: int, page_token: str | None = None) -> str:
        query = {**filters, "PageSize": size, "Page": page_number}
        if page_token:
            query["PageToken"] = page_token
        return f"{request.path}?{urlencode(query)}"

    more = start + size < len(rows)
    return {
        key: page,
        "end": start + len(page) - 1 if page else start,
        "first_page_uri": uri(0),
        "next_page_uri": uri(number + 1, "PA" + page[-1]["sid"]) if page and more else None,
        "page": number,
        "page_size": size,
        "previous_page_uri": (
            uri(number - 1, "PB" + page[0]["sid"]) if page and number > 0 and start > 0 else None
        ),
        "start": start,
        "uri": uri(number, token or None),
    }


def _whole_number(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ApiError(400, 20001, f"Invalid {name} {text!r}: a whole number {bounds}")
    return int(text)


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
