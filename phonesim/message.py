"""One SMS, as Twilio's Message resource describes it, and the rules that shape it.

`SimMessage` is what the Messages REST API answers (twilio.com/docs/messaging/api/
message-resource; the fields the twilio SDK's MessageInstance reads), what a status
callback carries and what an inbound message webhook carries. Segment counting and the
opt-out keywords live here too, because both decide what the resource says. Moving a
message through its statuses, and posting its webhooks, is `PhoneNetwork`'s job: this
module holds no clock and makes no requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from phonesim.call import API_VERSION, geography
from phonesim.clock import rfc2822

# Statuses after which nothing changes: Twilio posts the last status callback then.
FINAL = frozenset({"delivered", "undelivered", "failed", "received"})
FATES = ("delivered", "undelivered", "failed")
MAX_BODY = 1600  # Twilio's limit on a message body, in characters (error 21617)

# Twilio's default opt-out handling for long codes (twilio.com/docs/messaging/tutorials/
# advanced-opt-out): these single words, in any case, opt the sender out of messages
# from the number they texted; the opt-in and help words answer with Twilio's reply.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})
REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more "
    "messages from this number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. "
    "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}

# The GSM 03.38 basic character set (and its extension table, two septets each): a body
# of only these travels as GSM-7, 160 characters in one segment, 153 per segment when
# split; anything else makes the whole body UCS-2, 70 and 67.
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def opt_keyword(body: str) -> str | None:
    """STOP, START or HELP when `body` is one of Twilio's keywords (the whole message,
    surrounding spaces ignored): "Stop texting me" is a message, not an opt-out."""
    word = body.strip().upper()
    if word in OPT_OUT:
        return "STOP"
    if word in OPT_IN:
        return "START"
    if word in HELP:
        return "HELP"
    return None


def segments(body: str) -> int:
    """How many SMS segments `body` is sent as (what Twilio bills and reports)."""
    if all(char in GSM7 or char in GSM7_EXTENDED for char in body):
        septets = sum(2 if char in GSM7_EXTENDED else 1 for char in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


@dataclass
class SimMessage:
    """An outbound message (sent over the API, or Twilio's own opt-out reply) or an
    inbound one (`PhoneNetwork.text_in`). Mutated only under the network's lock."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    direction: str  # outbound-api, outbound-reply, inbound
    status: str  # accepted, queued, sent, delivered, undelivered, failed, received
    date_created: datetime
    date_updated: datetime
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    # Every status the message went through, in order, for tests to assert on.
    statuses: list[str] = field(default_factory=list)

    @property
    def num_segments(self) -> int:
        return segments(self.body)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def to_json(self) -> dict[str, Any]:
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        # A message sent through a Messaging Service reports 0 segments until a sender
        # is assigned (the Message resource's num_segments documentation).
        pending_sender = self.messaging_service_sid is not None and self.status == "accepted"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": None if pending_sender else self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "0" if pending_sender else str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{path}/Media.json",
                "feedback": f"{path}/Feedback.json",
            },
            "to": self.to,
            "uri": f"{path}.json",
        }

    def status_params(self) -> dict[str, str]:
        """What Twilio posts to the StatusCallback on each status after the first."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": self.from_,
            "MessageSid": self.sid,
            "MessageStatus": self.status,
            "SmsSid": self.sid,
            "SmsStatus": self.status,
            "To": self.to,
        }
        if self.messaging_service_sid:
            params["MessagingServiceSid"] = self.messaging_service_sid
        if self.error_code is not None:
            params["ErrorCode"] = str(self.error_code)
        return params

    def inbound_params(self) -> dict[str, str]:
        """What Twilio posts to the receiving number's SMS URL."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": self.body,
            "From": self.from_,
            "MessageSid": self.sid,
            "NumMedia": "0",
            "NumSegments": str(self.num_segments),
            "SmsMessageSid": self.sid,
            "SmsSid": self.sid,
            "SmsStatus": "received",
            "To": self.to,
        }
        params.update(geography(self.from_, ("From",)))
        params.update(geography(self.to, ("To",)))
        keyword = opt_keyword(self.body)
        if keyword is not None:
            params["OptOutType"] = keyword
        return params
