"""A tiny TwiML webhook app for testing the simulator, served live on localhost.

It validates X-Twilio-Signature on every request with the SDK's RequestValidator and
keeps every request it saw, so tests can assert on both sides of each webhook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from phonesim import BackgroundServer

Handler = Callable[[dict[str, str]], Any]


@dataclass(frozen=True)
class Seen:
    path: str
    method: str
    params: dict[str, str]
    signed: bool
    signature_valid: bool


class TwimlApp:
    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.handlers: dict[str, Handler] = {}
        self.seen: list[Seen] = []
        self.flask = Flask(__name__)
        self.flask.add_url_rule("/<path:path>", "webhook", self._dispatch, methods=["GET", "POST"])
        self.server = BackgroundServer(self.flask)

    def start(self) -> TwimlApp:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.handlers[path] = handler
            return handler

        return register

    def twiml(self, path: str, response: VoiceResponse | str) -> None:
        """A route that always answers the same document."""
        self.handlers[path] = lambda params: response

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def _dispatch(self, path: str) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        signed_params = request.form.to_dict() if request.method == "POST" else {}
        valid = self.validator.validate(request.url, signed_params, signature)
        params = request.values.to_dict()
        self.seen.append(Seen("/" + path, request.method, params, bool(signature), valid))
        if not valid:
            return Response("bad signature", 403)
        handler = self.handlers.get("/" + path)
        if handler is None:
            return Response("no such route", 404)
        result = handler(params)
        if result is None:
            return Response("", 204)
        if isinstance(result, VoiceResponse):
            return Response(str(result), mimetype="text/xml")
        return result
