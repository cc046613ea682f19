"""Is this webhook really from Twilio? (X-Twilio-Signature, checked against PUBLIC_BASE_URL)

Twilio signs the URL it requested plus the POST parameters with the account's auth
token (twilio.com/docs/usage/webhooks/webhooks-security). Behind a TLS-terminating proxy
the URL Flask sees (http://10.0.0.5:8000/...) is not the one Twilio signed, so the URL
is rebuilt from PUBLIC_BASE_URL and the path and query as received. There is no switch
to turn this off: an unsigned request is refused in every configuration.
"""

from __future__ import annotations

from flask import Request
from twilio.request_validator import RequestValidator


def signed_url(public_base_url: str, request: Request) -> str:
    query = request.query_string.decode("latin-1")
    return public_base_url + request.path + (f"?{query}" if query else "")


def is_from_twilio(auth_token: str, public_base_url: str, request: Request) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    return validator.validate(signed_url(public_base_url, request), request.form, signature)
