"""Signed webhooks with arbitrary parameters: always valid TwiML, never an error."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PUBLIC_BASE_URL, sign

ENDPOINTS = [
    "start", "questions/nps?try=1", "questions/nps?try=2&stage=after-one", "questions/csat?try=9",
    "questions/improve/recording?try=1", "questions/improve/transcription", "status", "amd",
    "voicemail",
]  # fmt: skip
TWILIO_NAMES = [
    "Digits", "AnsweredBy", "CallStatus", "Timestamp", "SequenceNumber", "CallDuration",
    "SipResponseCode", "RecordingUrl", "RecordingDuration", "TranscriptionText",
    "TranscriptionStatus", "ErrorCode",
]  # fmt: skip
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    own_call=st.booleans(),
    params=st.dictionaries(st.sampled_from(TWILIO_NAMES) | TEXT, TEXT, max_size=8),
)
def test_any_signed_webhook_gets_twiml(client, make_attempt, endpoint, own_call, params):
    attempt = make_attempt(source_call_id=f"fuzz-{make_attempt.counter}")
    make_attempt.counter += 1
    params = {k: v for k, v in params.items() if "\x00" not in k + v}
    params["CallSid"] = attempt.call_sid if own_call else "CA" + "9" * 32
    assert_twiml(client, f"{PUBLIC_BASE_URL}/voice/attempts/{attempt.id}/{endpoint}", params)


def assert_twiml(client, url: str, params: dict[str, str]) -> None:
    """Post `params` to `url`, signed as Twilio signs, and expect TwiML back."""
    response = client.post(
        url.removeprefix(PUBLIC_BASE_URL), data=params,
        headers={"X-Twilio-Signature": sign(url, params)},
    )  # fmt: skip
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/xml"
    assert ET.fromstring(response.data).tag == "Response"


INBOUND_ENDPOINTS = [
    "inbound", "inbound?listened=1", "inbound?token=123456789", "inbound?survey=nope",
    "inbound/status",
]  # fmt: skip
INBOUND_NAMES = ["From", "To", "Direction", "Digits", "CallStatus", "CallDuration", "Caller"]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    endpoint=st.sampled_from(INBOUND_ENDPOINTS),
    call_sid=st.sampled_from(["CA" + "7" * 32, "", "CA1"]) | TEXT,
    params=st.dictionaries(st.sampled_from(INBOUND_NAMES) | TEXT, TEXT, max_size=8),
)
def test_any_signed_transfer_to_the_survey_number_gets_twiml(client, endpoint, call_sid, params):
    """The survey number's webhooks (in-call surveys): whatever the caller ID, token,
    digits or CallSid, valid TwiML and never an error."""
    params = {k: v for k, v in {**params, "CallSid": call_sid}.items() if "\x00" not in k + v}
    assert_twiml(client, f"{PUBLIC_BASE_URL}/ivr/{endpoint}", params)
