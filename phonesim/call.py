"""One call: its Call-resource state, its callee, and its share of the journal.

The driver thread writes a call's progress while REST requests read and update it on
server threads, so every state change goes through the network's lock; the lists of
what happened are append-only.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from phonesim.clock import rfc2822
from phonesim.journal import (
    AppError,
    CallbackPost,
    DocumentFetch,
    KeyPress,
    Listening,
    Prompt,
    RestExchange,
    SpeechInput,
)
from phonesim.persona import Callee, Persona

API_VERSION = "2010-04-01"
ENDED = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


class CallInterrupt(Exception):
    """Thrown into a running call when a REST update changes its course."""


class Redirect(CallInterrupt):
    """`Url`/`Twiml` update: abandon the current TwiML and run the new one."""

    def __init__(self, url: str | None, method: str, twiml: str | None) -> None:
        super().__init__(url or "<Twiml>")
        self.url, self.method, self.twiml = url, method, twiml


class Hangup(CallInterrupt):
    """`Status=completed` on a live call."""


class Cancel(CallInterrupt):
    """`Status=canceled` (or `completed`) on a queued or ringing call."""


@dataclass
class SimCall:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    method: str
    twiml: str | None
    status_callback: str | None
    status_callback_method: str
    status_callback_events: tuple[str, ...]
    machine_detection: str | None
    async_amd: bool
    amd_callback: str | None
    amd_callback_method: str
    timeout: int
    persona: Persona
    date_created: datetime
    # Seconds a call may last once answered (Twilio's TimeLimit).
    time_limit: int = 4 * 3600
    # "outbound-api" (created over the REST API) or "inbound" (`PhoneNetwork.dial_in`).
    direction: str = "outbound-api"
    # The account's number an inbound call reached.
    phone_number_sid: str | None = None
    # DTMF the caller's side sent once connected (inbound; see `PhoneNetwork.dial_in`).
    send_digits: str = ""
    callee: Callee = field(init=False)
    status: str = "queued"
    answered_by: str | None = None
    date_updated: datetime | None = None
    start_time: datetime | None = None
    answered_at: datetime | None = None
    end_time: datetime | None = None
    sip_response_code: int | None = None
    # The final status callback was never delivered (PhoneNetwork.lose_final_callbacks).
    final_callback_lost: bool = False
    documents: list[DocumentFetch] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    key_presses: list[KeyPress] = field(default_factory=list)
    listening: list[Listening] = field(default_factory=list)
    speech: list[SpeechInput] = field(default_factory=list)
    callbacks: list[CallbackPost] = field(default_factory=list)
    app_errors: list[AppError] = field(default_factory=list)
    rest: list[RestExchange] = field(default_factory=list)
    recordings: list[dict[str, Any]] = field(default_factory=list)
    # Driver bookkeeping, guarded by the network lock.
    pending: CallInterrupt | None = field(default=None, repr=False)
    token: int = field(default=0, repr=False)
    running: bool = field(default=False, repr=False)
    sequence: int = field(default=0, repr=False)
    runner: Generator[float, None, None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.callee = self.persona.callee()
        self.date_updated = self.date_created

    # -- what tests read ----------------------------------------------------------
    @property
    def heard(self) -> list[str]:
        """The text of every `<Say>` played, interrupted or not, in order."""
        return [p.text for p in self.prompts if p.kind == "say"]

    @property
    def keys_sent(self) -> str:
        """Every key pressed on the other end of the line, in order (the callee's, or
        an inbound caller's, their platform's `send_digits` included)."""
        return "".join(k.key for k in self.key_presses)

    @property
    def said(self) -> list[str]:
        """What the other end of the line said at `<Gather>`s, in order, whether a
        recogniser heard it or not (`speech` tells which)."""
        return [s.text for s in self.speech]

    @property
    def status_events(self) -> list[str]:
        """CallStatus of each status callback posted, in order."""
        return [c.params["CallStatus"] for c in self.callbacks if c.kind == "status"]

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def duration(self) -> int | None:
        """Seconds from answer to hangup (0 if never answered); None while live."""
        if self.end_time is None:
            return None
        if self.answered_at is None:
            return 0
        return math.ceil((self.end_time - self.answered_at).total_seconds())

    # -- the REST representation --------------------------------------------------
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        duration = self.duration
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "duration": None if duration is None else str(duration),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": self.phone_number_sid,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "payments": f"{base}/Payments.json",
                "events": f"{base}/Events.json",
                "siprec": f"{base}/Siprec.json",
                "streams": f"{base}/Streams.json",
                "transcriptions": f"{base}/Transcriptions.json",
                "user_defined_message_subscriptions": f"{base}/UserDefinedMessageSubscriptions.json",
                "user_defined_messages": f"{base}/UserDefinedMessages.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": self.uri(),
        }

    def webhook_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every voice webhook of this call."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": self.status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }
        if self.direction == "inbound":
            params.update(geography(self.from_, ("From", "Caller")))
            params.update(geography(self.to, ("To", "Called")))
        if self.answered_by:
            params["AnsweredBy"] = self.answered_by
        return params


def geography(number: str, prefixes: tuple[str, ...]) -> dict[str, str]:
    """Twilio's location parameters of an inbound call's party, "if available": the
    country (ISO 3166 alpha-2) that the number's country code and prefix say; city,
    state and ZIP, which come from carrier data phonesim does not have, are empty, as
    Twilio sends them for numbers it cannot place (mobiles, withheld caller IDs)."""
    country = ""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        parsed = None  # "anonymous", "Restricted": no number to place
    if parsed is not None:
        country = phonenumbers.region_code_for_number(parsed) or ""
        country = "" if country == "ZZ" else country
    params: dict[str, str] = {}
    for prefix in prefixes:
        params.update(
            {
                f"{prefix}City": "",
                f"{prefix}State": "",
                f"{prefix}Zip": "",
                f"{prefix}Country": country,
            }
        )
    return params
