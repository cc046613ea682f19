"""Requests to the application's webhooks, signed the way Twilio signs them.

Twilio signs the exact URL it requests plus, for POST, the form parameters
(twilio.com/docs/usage/security#validating-requests); for GET the parameters are in the
URL's query string and nothing else is signed. We use the SDK's own `RequestValidator`
so the app's validation is tested against the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

# Twilio gives up on a webhook after 15 seconds (error 11205).
WEBHOOK_TIMEOUT = 15.0


@dataclass(frozen=True)
class WebhookResponse:
    url: str  # the URL requested, query included
    method: str
    status: int | None  # None: no HTTP response at all
    text: str
    content_type: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Webhooks:
    def __init__(self, auth_token: str, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self._validator = RequestValidator(auth_token)
        self._timeout = timeout

    def signed_request(self, url: str, method: str, params: dict[str, str]) -> WebhookResponse:
        method = (method or "POST").upper()
        headers = {
            "User-Agent": "TwilioProxy/1.1 (phonesim)",
            "Accept": "*/*",
            "Cache-Control": "max-age=259200",
        }
        if method == "GET":
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, {})
            body = None
        else:
            method = "POST"
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, params)
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
            body = urlencode(params)
        try:
            response = requests.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return WebhookResponse(url, method, None, "", "", error=f"{type(exc).__name__}: {exc}")
        return WebhookResponse(
            url,
            method,
            response.status_code,
            response.text,
            response.headers.get("Content-Type", ""),
        )
