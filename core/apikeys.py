"""API keys: the systems allowed to use the API, and what each may do.

A key is shown once, when it is created; only its sha256 and a short display prefix are
stored, so a copy of the database does not hand out working keys. Keys are long random
strings, which is why a fast unsalted hash is enough and a lookup stays one indexed
equality.

Each key holds scopes, given when it is created (`intake` unless said otherwise):

    intake        send finished calls, look up the survey requests (aftercall.web.intake_api)
    reports       read the reports, customers' numbers masked and no recording links
    reports:full  read the reports with full numbers and recording links
    follow-ups    list, read and update follow-ups, customers' numbers in full: what a
                  CRM that mirrors them needs (scoring.follow_ups)

`reports` and `reports:full` exclude each other. This module decides who a key belongs
to and which scopes it holds; it knows nothing about HTTP: aftercall.web.api_access reads
the `Authorization` header and refuses a key without the scope a route needs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import API_KEY_SCOPE_SETS, ApiKey

KEY_PREFIX = "ac_"
# Characters of the key kept in clear for listings and logs: enough to tell keys
# apart, far too few to guess the rest (the key has 256 random bits).
DISPLAY_CHARS = 11
MAX_NAME_LENGTH = 100
# No real key is this long; refusing longer input keeps hashing junk headers cheap.
MAX_PRESENTED_LENGTH = 200
# last_used_at is for "is this key still in use?", not an audit log: writing it on
# every request would turn every API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

INTAKE = "intake"
REPORTS = "reports"
REPORTS_FULL = "reports:full"
FOLLOW_UPS = "follow-ups"
SCOPES = (INTAKE, REPORTS, REPORTS_FULL, FOLLOW_UPS)
DEFAULT_SCOPES = (INTAKE,)


class ApiKeyError(Exception):
    """A key cannot be created or revoked as asked; the message says why."""


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def scopes_text(scopes: Iterable[str]) -> str:
    """Scopes as stored (`intake reports`); ApiKeyError for an unknown scope, none at all,
    or `reports` together with `reports:full`."""
    if isinstance(scopes, str):  # "intake reports", as stored, rather than its letters
        scopes = scopes.split()
    chosen = {scope.strip() for scope in scopes}
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope {unknown[0]!r}; expected {', '.join(SCOPES)}")
    if not chosen:
        raise ApiKeyError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    if {REPORTS, REPORTS_FULL} <= chosen:
        raise ApiKeyError(f"choose {REPORTS} (masked numbers) or {REPORTS_FULL}, not both")
    text = " ".join(scope for scope in SCOPES if scope in chosen)
    assert text in API_KEY_SCOPE_SETS
    return text


def key_scopes(key: ApiKey) -> frozenset[str]:
    return frozenset(key.scopes.split())


def create_key(session: Session, name: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
    """Create a key named `name` holding `scopes` and return it in plaintext (the only
    time it exists)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"a key name must be 1-{MAX_NAME_LENGTH} characters")
    stored_scopes = scopes_text(scopes)
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(f"an API key named {name!r} already exists")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        key_hash=hash_key(plaintext),
        prefix=plaintext[:DISPLAY_CHARS],
        scopes=stored_scopes,
    )
    try:
        with session.begin_nested():
            session.add(key)
    except IntegrityError:
        # Another process created the same name between the check and the insert.
        raise ApiKeyError(f"an API key named {name!r} already exists") from None
    return plaintext


def revoke_key(session: Session, name: str, *, now: datetime | None = None) -> ApiKey:
    """Revoke the key named `name`; revoking twice keeps the first revocation time."""
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise ApiKeyError(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
    return key


def set_scopes(session: Session, name: str, scopes: Iterable[str]) -> ApiKey:
    """Give the key named `name` these scopes instead of its own, from its next request."""
    stored_scopes = scopes_text(scopes)
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise ApiKeyError(f"no API key named {name!r}")
    key.scopes = stored_scopes
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def verify_key(session: Session, presented: str, *, now: datetime | None = None) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, revoked or malformed)."""
    if not presented or len(presented) > MAX_PRESENTED_LENGTH:
        return None
    try:
        digest = hash_key(presented)
    except UnicodeEncodeError:  # a lone surrogate cannot be any key we issued
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    # The lookup already matched on the hash; comparing again in constant time keeps
    # the check safe even if the lookup ever becomes a prefix or index scan.
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    if key.revoked_at is not None:
        return None
    now = now or utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key
