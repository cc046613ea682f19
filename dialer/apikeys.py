"""API keys: the contact-center systems allowed to send calls to the intake API.

A key is shown once, when it is created; only its sha256 and a short display prefix are
stored, so a copy of the database does not hand out working keys. Keys are long random
strings, which is why a fast unsalted hash is enough and a lookup stays one indexed
equality. This module decides who a key belongs to; it knows nothing about HTTP (the
`Authorization` header is read in dialer.api) nor about what a key may do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aftercall.db import utcnow
from aftercall.models import ApiKey

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


class ApiKeyError(Exception):
    """A key cannot be created or revoked as asked; the message says why."""


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str) -> str:
    """Create a key named `name` and return it in plaintext (the only time it exists)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"a key name must be 1-{MAX_NAME_LENGTH} characters")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(f"an API key named {name!r} already exists")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, key_hash=hash_key(plaintext), prefix=plaintext[:DISPLAY_CHARS])
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
