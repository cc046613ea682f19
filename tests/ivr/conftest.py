"""A test's stand-in for Twilio's side of one call: signed webhook posts, parsed TwiML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest
from flask.testing import FlaskClient

from core.models import CallAttempt
from tests.conftest import ACCOUNT_SID, FROM_NUMBER, PUBLIC_BASE_URL, sign


def without_ref(url: str) -> str:
    """A question URL without the call it names (ivr.calls.LiveCall.ref)."""
    return re.sub(r"&ref=[^&]*", "", url)


@dataclass
class Reply:
    status: int
    body: bytes
    root: ET.Element | None

    def says(self) -> list[str]:
        return [el.text or "" for el in self.root.iter("Say")]

    def verbs(self) -> list[str]:
        return [child.tag for child in self.root]


@dataclass
class SignedCall:
    client: FlaskClient
    attempt_id: int
    call_sid: str
    to: str
    replies: list[Reply] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{PUBLIC_BASE_URL}/voice/attempts/{self.attempt_id}"

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": FROM_NUMBER,
            "To": self.to,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def post(self, url: str, params: dict[str, str], signature: str | None = None) -> Reply:
        assert url.startswith(PUBLIC_BASE_URL), url
        if signature is None:
            signature = sign(url, params)
        response = self.client.post(
            url.removeprefix(PUBLIC_BASE_URL),
            data=params,
            headers={"X-Twilio-Signature": signature},
        )
        root = None
        if response.status_code == 200:
            assert response.mimetype == "text/xml"
            root = ET.fromstring(response.data)
            assert root.tag == "Response"
        reply = Reply(response.status_code, response.data, root)
        self.replies.append(reply)
        return reply

    def start(self, **extra: str) -> Reply:
        return self.post(f"{self.base}/start", self.params(**extra))

    def press(self, reply: Reply, digits: str) -> Reply:
        """Answer the Gather in `reply` (digits "" is a timeout with actionOnEmptyResult)."""
        gather = reply.root.find("./Gather")
        assert gather is not None, reply.body
        return self.post(gather.get("action"), self.params(Digits=digits))

    def fall_through(self, reply: Reply) -> Reply:
        """Twilio moving past the Gather/Record to the Redirect that follows it."""
        redirect = reply.root.find("./Redirect")
        assert redirect is not None, reply.body
        return self.post(redirect.text, self.params())

    def record(self, reply: Reply, digits: str = "#", seconds: int = 7) -> Reply:
        record = reply.root.find("./Record")
        assert record is not None, reply.body
        return self.post(
            record.get("action"),
            self.params(
                RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE1",
                RecordingSid="RE" + "1" * 32,
                RecordingDuration=str(seconds),
                Digits=digits,
            ),
        )

    def status(self, status: str, sequence: int, **extra: str) -> Reply:
        return self.post(
            f"{self.base}/status",
            self.params(**{**extra, "CallStatus": status, "SequenceNumber": str(sequence)}),
        )


@pytest.fixture
def call(client, make_attempt):
    """Make a request + attempt and return a function opening a signed call on it."""

    def open_call(**kwargs) -> SignedCall:
        attempt: CallAttempt = make_attempt(**kwargs)
        return SignedCall(client, attempt.id, attempt.call_sid, kwargs.get("phone", "+14155550123"))

    return open_call
