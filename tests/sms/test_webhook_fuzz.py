"""Signed messaging webhooks with arbitrary parameters: never a server error, and never an
exception swallowed by the webhook's safety net (which answers 200 but loses the text).

What the customer writes (Body) may hold anything a form can carry, NUL included. What
Twilio writes (From, MessageSid, ErrorCode) is any text but NUL, and From at most 20
characters: tests/sms/test_webhooks.py covers longer senders on their own.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.models import SmsMessage
from tests.conftest import PUBLIC_BASE_URL, sign
from tests.sms.conftest import CUSTOMER, empty_twiml, handed_to_twilio, open_survey

# Any character a form can carry (the test client cannot encode lone surrogates; Twilio
# sends UTF-8, which has none).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
INBOUND_NAMES = ["From", "To", "Body", "MessageSid", "SmsSid", "OptOutType", "NumMedia",
                 "AccountSid", "MessagingServiceSid", "NumSegments"]  # fmt: skip
STATUS_NAMES = ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode", "From", "To"]
BODIES = st.sampled_from(["9", "STOP", "start", "HELP", "yes", "SKIP", "¡Baja!", "10/10", ""])
OUR_SID = "SM" + "a" * 32
STATUSES = st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read", ""])
# Twilio's own fields: any text but NUL.
TWILIO_TEXT = TEXT.map(lambda text: text.replace("\x00", ""))
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def swallowed(caplog) -> list[str]:
    """The exceptions the webhook caught and logged, with where they were raised."""
    return [
        f"{r.getMessage()}: {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in caplog.records
        if r.name == "aftercall.web.sms" and r.levelno >= logging.ERROR
    ]


def stored(runtime, sid: str) -> bool:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).where(SmsMessage.message_sid == sid)) == 1


def post(client, path: str, params: dict[str, str]):
    return client.post(
        path, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params)}
    )


@FUZZ
@given(
    sender=st.sampled_from([CUSTOMER, "+14155550999", ""]) | TWILIO_TEXT.map(lambda t: t[:20]),
    body=BODIES | TEXT,
    opt_out_type=st.none() | st.sampled_from(["STOP", "START", "HELP"]) | TEXT,
    sid=st.uuids().map(lambda u: f"SM{u.hex}") | TWILIO_TEXT,
    params=st.dictionaries(st.sampled_from(INBOUND_NAMES) | TEXT, TEXT, max_size=6),
)
def test_any_signed_inbound_text_gets_empty_twiml(
    client, runtime, caplog, sender, body, opt_out_type, sid, params
):
    if not hasattr(runtime, "fuzzed_survey"):
        runtime.fuzzed_survey = open_survey(runtime)
    caplog.clear()
    # SmsSid stands in for an empty MessageSid: one of Twilio's fields too.
    form = {**params, "From": sender, "Body": body, "MessageSid": sid}
    form["SmsSid"] = form.get("SmsSid", "").replace("\x00", "")
    if opt_out_type is not None:
        form["OptOutType"] = opt_out_type
    kept_sid = (form["MessageSid"] or form["SmsSid"])[:64]
    new = bool(form["From"] and kept_sid) and not stored(runtime, kept_sid)
    empty_twiml(post(client, "/sms/inbound", form))
    assert swallowed(caplog) == []
    if new:  # nothing a customer writes is lost
        assert stored(runtime, kept_sid)


@FUZZ
@given(
    which=st.sampled_from(["ours", "unknown", "garbage"]),
    garbage=TEXT,
    sid=st.sampled_from(["ours", "other"]) | TWILIO_TEXT,
    status=STATUSES | TEXT,
    params=st.dictionaries(st.sampled_from(STATUS_NAMES) | TEXT, TEXT, max_size=6),
)
def test_any_signed_status_callback_gets_204(
    client, runtime, caplog, which, garbage, sid, status, params
):
    if not hasattr(runtime, "fuzzed_survey"):
        runtime.fuzzed_survey = open_survey(runtime)
        handed_to_twilio(runtime, runtime.fuzzed_survey.question_text_id, OUR_SID)
    caplog.clear()
    text_id = runtime.fuzzed_survey.question_text_id
    message = {"ours": str(text_id), "unknown": "987654321", "garbage": garbage}[which]
    form = {**params, "MessageStatus": status}
    form["MessageSid"] = {"ours": OUR_SID, "other": "SM" + "b" * 32}.get(sid, sid)
    for name in ("SmsSid", "ErrorCode"):
        form[name] = form.get(name, "").replace("\x00", "")
    response = post(client, f"/sms/status?message={quote(message)}", form)
    assert response.status_code == 204, response.data[:300]
    assert swallowed(caplog) == []
