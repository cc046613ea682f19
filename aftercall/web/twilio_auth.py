"""Is this request really from Twilio? The Flask side of core.signature.

Twilio signs the URL it requested: behind a TLS-terminating proxy the URL Flask sees
(http://10.0.0.5:8000/...) is not that one, so it is rebuilt from PUBLIC_BASE_URL and
the path and query as received. The voice webhooks and the Twilio Flex receiver both
check their requests here.
"""

from __future__ import annotations

from flask import Request

from core.signature import signature_is_valid_at


def signed_path(request: Request) -> str:
    """The path and query as received: what Twilio signed after PUBLIC_BASE_URL."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def is_from_twilio(auth_token: str, public_base_url: str, request: Request) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    # One HMAC over the canonical URL: the base's forms are worked out once per process.
    return signature_is_valid_at(
        auth_token, public_base_url, signed_path(request), request.form.lists(), signature
    )
