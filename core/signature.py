"""Is this webhook really from Twilio? (X-Twilio-Signature, checked against PUBLIC_BASE_URL)

Twilio signs the URL it requested plus the POST parameters with the account's auth
token (twilio.com/docs/usage/webhooks/webhooks-security). Behind a TLS-terminating proxy
the URL Flask sees (http://10.0.0.5:8000/...) is not the one Twilio signed, so the URL
is rebuilt from PUBLIC_BASE_URL and the path and query as received. There is no switch
to turn this off: an unsigned request is refused in every configuration.

The check is the twilio SDK's `RequestValidator.validate()` (tests/core/test_signature.py
proves the two agree on any URL, form and signature), done once per webhook instead of
the validator's way: it computes the HMAC for the URL with and without the port every
time, and reads the form one parameter at a time (on an answer webhook's form, 49 us
against 20 us here: small, but every webhook pays it).

A webhook's URL is PUBLIC_BASE_URL plus the path and query received. The SDK's two
candidate URLs (without the default port, with it) differ only in the base, so
`signature_is_valid_at()` works them out for the base once per process (`SignedBase`)
and a genuine webhook costs one HMAC over the canonical URL and nothing else. A path or
query that URL parsing would rewrite (a `#`, a `;`, a tab or line break, a trailing `?`)
takes the SDK's way, parsing the whole URL, so the verdict is the SDK's on any input.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
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


@dataclass(frozen=True)
class SignedBase:
    """PUBLIC_BASE_URL as the twilio SDK's validator rewrites it: the canonical URL
    without the default port, and with it (None when the base itself would not survive
    URL parsing unchanged: then every webhook takes the SDK's way)."""

    url: str
    without_port: str | None
    with_port: str | None


# Characters that make urlparse() + geturl() rewrite a path or query: a fragment, path
# parameters, the tab and line breaks it removes.
_REWRITTEN = frozenset("#;\t\r\n")


@lru_cache(maxsize=16)
def signed_base(public_base_url: str) -> SignedBase:
    try:
        parsed = urlparse(public_base_url)
        without_port, with_port = remove_port(parsed), add_port(parsed)
    except ValueError:  # a port that is no number: the SDK's way says what it says
        return SignedBase(public_base_url, None, None)
    plain = (
        parsed.geturl() == public_base_url
        and not (_REWRITTEN | {"?"}).intersection(public_base_url)
        and parsed.netloc != ""
    )
    if not plain:
        return SignedBase(public_base_url, None, None)
    return SignedBase(public_base_url, without_port, with_port)


def signature_is_valid_at(
    auth_token: str, public_base_url: str, path_and_query: str, form: FormLists, signature: str
) -> bool:
    """`signature_is_valid()` for the URL `public_base_url + path_and_query` (the path
    starting with "/"), with the base's canonical forms worked out once per process."""
    base = signed_base(public_base_url)
    if (
        base.without_port is None
        or not path_and_query.startswith("/")
        or path_and_query.endswith("?")
        or _REWRITTEN.intersection(path_and_query)
    ):
        return signature_is_valid(auth_token, public_base_url + path_and_query, form, signature)
    if not auth_token or not signature:
        return False
    expected = signature.encode()
    key = auth_token.encode()
    signed = path_and_query + _signed_params(form)
    digest = hmac.new(key, (base.without_port + signed).encode(), sha1).digest()
    if hmac.compare_digest(base64.b64encode(digest), expected):
        return True
    if base.with_port is None or base.with_port == base.without_port:
        return False
    digest = hmac.new(key, (base.with_port + signed).encode(), sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest), expected)
