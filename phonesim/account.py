"""The Twilio account the simulated network belongs to: its state and its phone numbers.

What `aftercall doctor` asks Twilio before any call: is the account active, and may calls
come from TWILIO_FROM_NUMBER, a number the account owns (IncomingPhoneNumbers) or a
verified caller ID (OutgoingCallerIds)? The JSON shapes are those the twilio SDK parses
(twilio/rest/api/v2010/account/__init__.py, incoming_phone_number/__init__.py,
outgoing_caller_id.py) and its own fixtures show. The REST side is `phonesim.rest`.

Numbers and caller IDs are configured, not bought or verified over the API (no POST or
DELETE on either list). What a number does with an incoming call is configured as at
Twilio: its `voice_url` and `voice_method` (the TwiML that answers) and its
`status_callback` and `status_callback_method` (told when the call ends); with an
incoming text, its `sms_url` and `sms_method`. They are set with
`PhoneNetwork.configure_number` or a POST to the number (`IncomingPhoneNumbers/{Sid}.json`
with VoiceUrl, VoiceMethod, StatusCallback, StatusCallbackMethod, SmsUrl, SmsMethod).
The other fields of the resource (fallback URLs, applications, trunks) keep Twilio's
defaults.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from phonesim.clock import rfc2822

API_VERSION = "2010-04-01"
ACCOUNT_STATUSES = ("active", "suspended", "closed")
ACCOUNT_TYPES = ("Full", "Trial")
# The demo's TWILIO_FROM_NUMBER (aftercall.demo) and the one the test suite and the
# benchmarks use: +15005550006 is the number Twilio's test credentials accept as a valid
# From, so configurations written for those work against the simulator unchanged.
DEFAULT_NUMBERS = ("+14155550100", "+15005550006")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
METHODS = ("GET", "POST")
URL = re.compile(r"^https?://[^\s/?#]+\S*$")


class Keep:
    """The type of `KEEP`: a configuration argument left as it was."""


# Passed for a field that should not change: None means "clear it" for URLs.
KEEP = Keep()


def _check_number(number: str) -> str:
    if not E164.fullmatch(number):
        raise ValueError(f"{number!r} is not a phone number in E.164 (+14155550100)")
    return number


def check_url(url: str | None, name: str) -> str | None:
    """A webhook URL Twilio could request: http(s) and a host; None or "" clears it."""
    if url and not URL.fullmatch(url):
        raise ValueError(f"{name} {url!r} is not a fully qualified http(s) URL")
    return url or None


def check_method(method: str, name: str) -> str:
    """GET or POST, in any case, as Twilio accepts them; stored upper case."""
    if method.upper() not in METHODS:
        raise ValueError(f"{name} {method!r} is not GET or POST")
    return method.upper()


def _sid(prefix: str, *parts: str) -> str:
    """A stable SID: the same account and number get the same SID on every run."""
    return prefix + hashlib.md5(":".join(parts).encode()).hexdigest()


def friendly(number: str) -> str:
    """Twilio's default FriendlyName of a number: (415) 555-0100 in North America."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


@dataclass(frozen=True)
class IncomingNumber:
    """A number the account owns (bought, ported or hosted), with its capabilities and
    what it does with an incoming call (`PhoneNetwork.dial_in`)."""

    phone_number: str
    sid: str
    date_created: datetime
    voice: bool = True
    sms: bool = True
    mms: bool = False
    # The TwiML that answers an incoming call; None: nothing does (the call cannot
    # be put through).
    voice_url: str | None = None
    voice_method: str = "POST"
    # Told when an incoming call to the number ends (the `completed` event only, as
    # Twilio does for a number's StatusCallback).
    status_callback: str | None = None
    status_callback_method: str = "POST"
    # Requested with each incoming text message (`PhoneNetwork.text_in`); None: the
    # message is kept (and STOP still honoured) but no app hears of it.
    sms_url: str | None = None
    sms_method: str = "POST"
    date_updated: datetime | None = None

    @property
    def friendly_name(self) -> str:
        return friendly(self.phone_number)

    def to_json(self, account_sid: str) -> dict[str, Any]:
        created = rfc2822(self.date_created)
        return {
            "account_sid": account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "bundle_sid": None,
            "capabilities": {
                "fax": False,
                "mms": self.mms,
                "sms": self.sms,
                "voice": self.voice,
            },
            "date_created": created,
            "date_updated": rfc2822(self.date_updated) if self.date_updated else created,
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "emergency_status": "Inactive",
            "friendly_name": self.friendly_name,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": self.phone_number,
            "sid": self.sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": self.sms_method,
            "sms_url": self.sms_url or "",
            "status": "in-use",
            "status_callback": self.status_callback or "",
            "status_callback_method": self.status_callback_method,
            "trunk_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers/{self.sid}.json",
            "voice_application_sid": "",
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": self.voice_method,
            "voice_receive_mode": "voice",
            "voice_url": self.voice_url,
        }


@dataclass(frozen=True)
class CallerId:
    """A phone outside Twilio that the account verified (by answering a call with a
    code) and may therefore show as the caller: Twilio allows it as a call's From."""

    phone_number: str
    sid: str
    date_created: datetime

    @property
    def friendly_name(self) -> str:
        return friendly(self.phone_number)

    def to_json(self, account_sid: str) -> dict[str, Any]:
        created = rfc2822(self.date_created)
        return {
            "account_sid": account_sid,
            "date_created": created,
            "date_updated": created,
            "friendly_name": self.friendly_name,
            "phone_number": self.phone_number,
            "sid": self.sid,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/OutgoingCallerIds/{self.sid}.json",
        }


class Account:
    """The account's name, status and type, its numbers and its verified caller IDs.

    Changed by tests while the network runs (`set_status`, `add_number`), read by REST
    requests on server threads: every access holds one lock.
    """

    def __init__(
        self,
        sid: str,
        auth_token: str,
        created: datetime,
        *,
        friendly_name: str = "phonesim",
        status: str = "active",
        account_type: str = "Full",
        numbers: Iterable[str] = DEFAULT_NUMBERS,
        caller_ids: Iterable[str] = (),
    ) -> None:
        if account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account type {account_type!r} is not one of {ACCOUNT_TYPES}")
        self.sid, self.auth_token, self.created = sid, auth_token, created
        self.friendly_name, self.account_type = friendly_name, account_type
        self._lock = threading.Lock()
        self._status = ""
        self._updated = created
        self._numbers: dict[str, IncomingNumber] = {}
        self._caller_ids: dict[str, CallerId] = {}
        self.set_status(status, created)
        for number in numbers:
            self.add_number(number)
        for number in caller_ids:
            self.verify_caller_id(number)

    # -- configuration ------------------------------------------------------------------
    def set_status(self, status: str, when: datetime | None = None) -> None:
        """active, suspended (unpaid balance, policy) or closed, as Twilio's Console sets it."""
        if status not in ACCOUNT_STATUSES:
            raise ValueError(f"account status {status!r} is not one of {ACCOUNT_STATUSES}")
        with self._lock:
            self._status = status
            self._updated = when or self._updated

    def add_number(
        self,
        number: str,
        *,
        voice: bool = True,
        sms: bool = True,
        mms: bool = False,
        voice_url: str | None = None,
    ) -> IncomingNumber:
        """Owns `number` from now on (replacing its capabilities if it was owned)."""
        incoming = IncomingNumber(
            _check_number(number),
            _sid("PN", self.sid, "incoming", number),
            self.created,
            voice=voice,
            sms=sms,
            mms=mms,
            voice_url=voice_url,
        )
        with self._lock:
            self._numbers[number] = incoming
        return incoming

    def configure_number(
        self,
        number: str,
        *,
        voice_url: str | Keep | None = KEEP,
        voice_method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        sms_url: str | Keep | None = KEEP,
        sms_method: str | Keep = KEEP,
        when: datetime | None = None,
    ) -> IncomingNumber:
        """Sets what `number` does with incoming calls and texts, as the Console or the
        REST update of an IncomingPhoneNumber does; the number must be owned.

        Voice and SMS are configured apart, as on the Console: without `voice_url` the
        voice fields stay as they were, without `sms_url`/`sms_method` the SMS ones do.
        """
        configured: dict[str, Any] = {}
        if not isinstance(voice_url, Keep):
            configured.update(
                voice_url=check_url(voice_url, "VoiceUrl"),
                voice_method=check_method(voice_method, "VoiceMethod"),
                status_callback=check_url(status_callback, "StatusCallback"),
                status_callback_method=check_method(status_callback_method, "StatusCallbackMethod"),
            )
        if not isinstance(sms_url, Keep):
            configured["sms_url"] = check_url(sms_url, "SmsUrl")
        if not isinstance(sms_method, Keep):
            configured["sms_method"] = check_method(sms_method, "SmsMethod")
        with self._lock:
            current = self._numbers.get(number)
            if current is None:
                raise ValueError(f"{number!r} is not a number of account {self.sid}")
            updated = replace(current, **configured, date_updated=when or current.date_updated)
            self._numbers[number] = updated
        return updated

    def verify_caller_id(self, number: str) -> CallerId:
        caller_id = CallerId(
            _check_number(number), _sid("PN", self.sid, "caller-id", number), self.created
        )
        with self._lock:
            self._caller_ids[number] = caller_id
        return caller_id

    # -- reading ------------------------------------------------------------------------
    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def numbers(self) -> list[IncomingNumber]:
        with self._lock:
            return list(self._numbers.values())

    @property
    def caller_ids(self) -> list[CallerId]:
        with self._lock:
            return list(self._caller_ids.values())

    def number(self, sid: str) -> IncomingNumber | None:
        return next((number for number in self.numbers if number.sid == sid), None)

    def caller_id(self, sid: str) -> CallerId | None:
        return next((entry for entry in self.caller_ids if entry.sid == sid), None)

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.sid}"
        with self._lock:
            status, updated = self._status, self._updated
        return {
            "auth_token": self.auth_token,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(updated),
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.sid,
            "sid": self.sid,
            "status": status,
            "subresource_uris": {
                name: f"{base}/{path}.json"
                for name, path in (
                    ("available_phone_numbers", "AvailablePhoneNumbers"),
                    ("calls", "Calls"),
                    ("conferences", "Conferences"),
                    ("incoming_phone_numbers", "IncomingPhoneNumbers"),
                    ("notifications", "Notifications"),
                    ("outgoing_caller_ids", "OutgoingCallerIds"),
                    ("recordings", "Recordings"),
                    ("transcriptions", "Transcriptions"),
                    ("addresses", "Addresses"),
                    ("signing_keys", "SigningKeys"),
                    ("connect_apps", "ConnectApps"),
                    ("sip", "SIP"),
                    ("authorized_connect_apps", "AuthorizedConnectApps"),
                    ("usage", "Usage"),
                    ("keys", "Keys"),
                    ("applications", "Applications"),
                    ("short_codes", "SMS/ShortCodes"),
                    ("queues", "Queues"),
                    ("messages", "Messages"),
                    ("balance", "Balance"),
                )
            },
            "type": self.account_type,
            "uri": f"{base}.json",
        }
