"""Is this webhook really from Twilio? (X-Twilio-Signature, checked against PUBLIC_BASE_URL)

Twilio signs the URL it requested plus the POST parameters with the account's auth
token (twilio.com/docs/usage/webhooks/webhooks-security). Behind a TLS-terminating proxy
the URL Flask sees (http://10.0.0.5:8000/...) is not the one Twilio signed, so the URL
is rebuilt from PUBLIC_BASE_URL and the path and query as received. There is no switch
to turn this off: an unsigned request is refused in every configuration.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from urllib.parse import urlparse

from flask import Request
from twilio.request_validator import RequestValidator, add_port, remove_port


def signed_url(public_base_url: str, request: Request) -> str:
    query = request.query_string.decode("latin-1")
    return public_base_url + request.path + (f"?{query}" if query else "")


def is_from_twilio(auth_token: str, public_base_url: str, request: Request) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    validator = _validator(auth_token)
    url = urlparse(signed_url(public_base_url, request))
    # Twilio signs the URL without the default port or, on some paths, with it, and its
    # validator accepts either, computing both HMACs every time. The same two candidates
    # are tried here, the second only when the first fails: one HMAC per genuine webhook.
    expected = signature.encode()
    for candidate in dict.fromkeys((remove_port(url), add_port(url))):
        computed = validator.compute_signature(candidate, request.form)
        if hmac.compare_digest(computed.encode(), expected):
            return True
    return False


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)
