"""The Twilio REST client every process uses, pointed where `TWILIO_API_BASE` says.

Unset, the client talks to Twilio. Set (to the phone network simulator in tests and the
demo), every request the SDK makes to `https://*.twilio.com` is sent to that base
instead, through the SDK's own extension point (a custom `HttpClient`), so the code
that places and steers calls is the same code either way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from core.config import Settings


class RedirectingHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to `api_base` instead of Twilio's hosts."""

    def __init__(self, api_base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        base = urlsplit(api_base)
        self._scheme, self._netloc = base.scheme, base.netloc
        self._prefix = base.path.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit(
                (self._scheme, self._netloc, self._prefix + parts.path, parts.query, "")
            )
        return super().request(method, url, *args, **kwargs)


def rest_client(settings: Settings, timeout: float = 10.0) -> Client:
    if settings.twilio_api_base:
        http_client = RedirectingHttpClient(settings.twilio_api_base, timeout=timeout)
    else:
        http_client = TwilioHttpClient(timeout=timeout)
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=http_client,
    )


def is_machine(answered_by: str | None) -> bool:
    """Twilio's AnsweredBy for answering machines and fax (not human, not unknown)."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


def parse_int(value: str | None) -> int | None:
    """An integer Twilio parameter, or None when absent or malformed."""
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
