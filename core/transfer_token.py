"""The transfer token of an in-call survey: which support call a transferred customer
comes from.

Intake issues one per in-call request (dialer.in_call); the platform attaches it to the
transfer, as a URL query (`<Redirect>` on Twilio) or as DTMF digits sent after the
survey number answers (PSTN platforms: Amazon Connect's "Send DTMF", a `<Number
sendDigits>`), and ivr.inbound reads it back. Hence digits only: the request id, then
an HMAC of it cut to MAC_DIGITS decimal digits, keyed with SECRET_KEY so that nobody can
make one for another request.

The token alone proves only which request it names. Expiry and single use are the
database's: the request must still be waiting for its transfer (`awaiting_transfer`,
before `transfer_expires_at`), so an old or replayed token names a request that no
longer takes one, and is treated as no token.
"""

from __future__ import annotations

import hashlib
import hmac

MAC_DIGITS = 8
# A request id of up to 12 digits plus the MAC: Twilio's Gather takes far more.
MAX_TOKEN_LENGTH = 12 + MAC_DIGITS


def issue(secret: str, request_id: int) -> str:
    """The token naming `request_id`."""
    return f"{request_id}{_mac(secret, request_id)}"


def read(secret: str, token: str | None) -> int | None:
    """The request id a token names, or None if it is not one this secret issued."""
    if not token or len(token) > MAX_TOKEN_LENGTH or len(token) <= MAC_DIGITS:
        return None
    if not token.isascii() or not token.isdigit():
        return None
    head, mac = token[:-MAC_DIGITS], token[-MAC_DIGITS:]
    if head.startswith("0"):
        return None
    request_id = int(head)
    return request_id if hmac.compare_digest(mac, _mac(secret, request_id)) else None


def _mac(secret: str, request_id: int) -> str:
    digest = hmac.new(
        secret.encode(), f"aftercall-transfer:{request_id}".encode(), hashlib.sha256
    ).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**MAC_DIGITS).zfill(MAC_DIGITS)
