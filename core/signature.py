"""Is this webhook really from Twilio? (X-Twilio-Signature, checked against PUBLIC_BASE_URL)

Twilio signs the URL it requested plus the POST parameters with the account's auth
token (twilio.com/docs/usage/webhooks/webhooks-security). Behind a TLS-terminating proxy
the URL Flask sees (http://10.0.0.5:8000/...) is not the one Twilio signed, so the URL
is rebuilt from PUBLIC_BASE_URL and the path and query as received. There is no switch
to turn this off: an unsigned request is refused in every configuration.

The check is the twilio SDK's `RequestValidator.validate()` (tests/ivr/test_signature.py
proves the two agree on any URL, form and signature), done once per webhook instead of
the validator's way: it computes the HMAC for the URL with and without the port every
time, and reads the form one parameter at a time (on an answer webhook's form, 49 us
against 20 us here: small, but every webhook pays it).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Iterator
from hashlib import sha1
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port

# A form's parameters as (name, every value given for it): a werkzeug MultiDict's lists().
FormLists = Iterable[tuple[str, list[str]]]


def signature_is_valid(auth_token: str, url: str, form: FormLists, signature: str) -> bool:
    """Twilio's HMAC-SHA1 of the URL and the sorted parameters, compared in constant time.

    Twilio signs the URL without the default port or, on some paths, with it: the same
    two candidates as the SDK's validator are tried, the second only when the first
    fails, so a genuine webhook costs one HMAC.
    """
    if not auth_token or not signature:
        return False
    expected = signature.encode()
    key = auth_token.encode()
    params = _signed_params(form)
    for candidate in _candidate_urls(url):
        digest = hmac.new(key, (candidate + params).encode(), sha1).digest()
        if hmac.compare_digest(base64.b64encode(digest), expected):
            return True
    return False


def _signed_params(form: FormLists) -> str:
    # Each name followed by each of its distinct values, names and values sorted.
    return "".join(name + value for name, values in sorted(form) for value in sorted(set(values)))


def _candidate_urls(url: str) -> Iterator[str]:
    parsed = urlparse(url)
    without_port = remove_port(parsed)
    yield without_port
    with_port = add_port(parsed)
    if with_port != without_port:
        yield with_port
