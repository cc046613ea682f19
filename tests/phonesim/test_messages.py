"""Text messages: the Messages API through the real twilio SDK, status callbacks and
inbound messages posted to a live app (signatures checked by the `webapp` fixture),
and Twilio's default STOP/START handling."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from phonesim import DEFAULT_NUMBERS, OptOutChange, PhoneNetwork
from tests.phonesim.conftest import ACCOUNT_SID
from tests.phonesim.twiml_app import TwimlApp

SURVEY_NUMBER = DEFAULT_NUMBERS[0]
CUSTOMER = "+12125550142"
QUESTION = "Thanks for calling. How likely are you to recommend us, 0 to 10?"


@pytest.fixture
def statuses(webapp: TwimlApp) -> list[dict[str, str]]:
    posted: list[dict[str, str]] = []
    webapp.handlers["/sms-status"] = lambda params: posted.append(params)
    return posted


@pytest.fixture
def inbox(webapp: TwimlApp) -> list[dict[str, str]]:
    received: list[dict[str, str]] = []
    webapp.handlers["/sms"] = lambda params: received.append(params)
    return received


def test_a_message_is_created_queued_and_fetched_delivered(
    network: PhoneNetwork, twilio_client: Client
) -> None:
    created = twilio_client.messages.create(to=CUSTOMER, from_=SURVEY_NUMBER, body=QUESTION)

    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert (created.status, created.direction) == ("queued", "outbound-api")
    assert (created.to, created.from_, created.body) == (CUSTOMER, SURVEY_NUMBER, QUESTION)
    assert created.num_segments == "1"
    assert created.error_code is None and created.error_message is None
    assert created.account_sid == ACCOUNT_SID and created.date_created is not None
    assert created.date_sent is None

    network.run_until_idle()
    fetched = twilio_client.messages(created.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None
    assert [m.sid for m in twilio_client.messages.list(to=CUSTOMER)] == [created.sid]
    assert network.messages_to(CUSTOMER)[0].statuses == ["queued", "sent", "delivered"]
    assert [entry.status for entry in network.journal.messages] == [
        "queued",
        "sent",
        "delivered",
    ]


def test_status_callbacks_come_in_order_with_twilios_parameters(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    sid = twilio_client.messages.create(
        to=CUSTOMER, from_=SURVEY_NUMBER, body=QUESTION, status_callback=webapp.url("/sms-status")
    ).sid
    network.run_until_idle()

    # No callback for the initial "queued": Twilio posts only changes after it.
    assert [p["MessageStatus"] for p in statuses] == ["sent", "delivered"]
    assert all(p["SmsStatus"] == p["MessageStatus"] for p in statuses)
    assert statuses[-1]["MessageSid"] == statuses[-1]["SmsSid"] == sid
    assert (statuses[-1]["From"], statuses[-1]["To"]) == (SURVEY_NUMBER, CUSTOMER)
    assert statuses[-1]["AccountSid"] == ACCOUNT_SID
    assert "ErrorCode" not in statuses[-1]
    assert all(seen.signature_valid for seen in webapp.requests_to("/sms-status"))


@pytest.mark.parametrize(
    ("fate", "code", "expected"),
    [
        ("undelivered", 30003, ["sent", "undelivered"]),
        ("undelivered", 30006, ["sent", "undelivered"]),
        ("failed", 30008, ["failed"]),
    ],
)
def test_a_message_that_does_not_arrive_carries_its_error_code(
    network: PhoneNetwork,
    twilio_client: Client,
    webapp: TwimlApp,
    statuses: list[dict[str, str]],
    fate: str,
    code: int,
    expected: list[str],
) -> None:
    network.set_message_fate(CUSTOMER, fate, code)
    sid = twilio_client.messages.create(
        to=CUSTOMER, from_=SURVEY_NUMBER, body=QUESTION, status_callback=webapp.url("/sms-status")
    ).sid
    network.run_until_idle()

    assert [p["MessageStatus"] for p in statuses] == expected
    assert statuses[-1]["ErrorCode"] == str(code)
    fetched = twilio_client.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == (fate, code)
    assert fetched.error_message


@pytest.mark.parametrize(
    ("to", "from_", "body", "code"),
    [
        ("555-0142", SURVEY_NUMBER, QUESTION, 21211),
        ("+1212555014299999", SURVEY_NUMBER, QUESTION, 21211),
        (CUSTOMER, "+15550000000", QUESTION, 21606),  # not a number of the account
        (CUSTOMER, SURVEY_NUMBER, "", 21602),
        (CUSTOMER, SURVEY_NUMBER, "x" * 1601, 21617),
        ("+447700900123", SURVEY_NUMBER, QUESTION, 21408),  # blocked region (conftest)
    ],
)
def test_messages_twilio_refuses_at_once(
    network: PhoneNetwork, twilio_client: Client, to: str, from_: str, body: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as refused:
        twilio_client.messages.create(to=to, from_=from_, body=body)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert network.messages == []
    assert network.journal.rest[-1].error_code == code


def test_stop_blocks_later_messages_and_start_lets_them_through(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, inbox: list[dict[str, str]]
) -> None:
    network.configure_number(SURVEY_NUMBER, sms_url=webapp.url("/sms"))
    network.text_in(CUSTOMER, SURVEY_NUMBER, " stop ")
    network.run_until_idle()

    # The app still hears of the STOP, and Twilio itself replied to the customer.
    assert [(p["Body"], p["OptOutType"]) for p in inbox] == [(" stop ", "STOP")]
    reply = network.messages_to(CUSTOMER)[-1]
    assert (reply.direction, reply.from_, reply.status) == (
        "outbound-reply",
        SURVEY_NUMBER,
        "delivered",
    )
    assert "unsubscribed" in reply.body
    with pytest.raises(TwilioRestException) as refused:
        twilio_client.messages.create(to=CUSTOMER, from_=SURVEY_NUMBER, body=QUESTION)
    assert (refused.value.status, refused.value.code) == (400, 21610)

    network.text_in(CUSTOMER, SURVEY_NUMBER, "START")
    network.run_until_idle()
    sent = twilio_client.messages.create(to=CUSTOMER, from_=SURVEY_NUMBER, body=QUESTION)
    assert sent.status == "queued"
    assert [(c.keyword, c.opted_out) for c in network.journal.opt_outs] == [
        ("stop", True),
        ("START", False),
    ]
    assert all(isinstance(change, OptOutChange) for change in network.journal.opt_outs)


def test_stop_blocks_only_the_number_it_was_sent_to(
    network: PhoneNetwork, twilio_client: Client
) -> None:
    network.text_in(CUSTOMER, SURVEY_NUMBER, "UNSUBSCRIBE")
    other = DEFAULT_NUMBERS[1]
    assert twilio_client.messages.create(to=CUSTOMER, from_=other, body=QUESTION).sid
    assert network.opted_out(SURVEY_NUMBER, CUSTOMER)
    assert not network.opted_out(other, CUSTOMER)


def test_an_inbound_message_is_posted_with_twilios_parameters(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, inbox: list[dict[str, str]]
) -> None:
    network.configure_number(SURVEY_NUMBER, sms_url=webapp.url("/sms"))
    message = network.text_in(CUSTOMER, SURVEY_NUMBER, "9, great service")
    network.run_until_idle()

    (params,) = inbox
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"] == message.sid
    assert (params["From"], params["To"], params["Body"]) == (
        CUSTOMER,
        SURVEY_NUMBER,
        "9, great service",
    )
    assert (params["AccountSid"], params["NumMedia"], params["NumSegments"]) == (
        ACCOUNT_SID,
        "0",
        "1",
    )
    assert (params["SmsStatus"], params["FromCountry"], params["ToCountry"]) == (
        "received",
        "US",
        "US",
    )
    assert "OptOutType" not in params
    assert webapp.requests_to("/sms")[0].signature_valid
    assert network.messages_from(CUSTOMER) == [message]
    fetched = twilio_client.messages(message.sid).fetch()
    assert (fetched.direction, fetched.status) == ("inbound", "received")
    assert network.journal.callbacks[-1].kind == "sms"


def test_the_sms_url_is_configured_through_the_sdk(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, inbox: list[dict[str, str]]
) -> None:
    (number,) = twilio_client.incoming_phone_numbers.list(phone_number=SURVEY_NUMBER)
    updated = twilio_client.incoming_phone_numbers(number.sid).update(
        sms_url=webapp.url("/sms"), sms_method="post"
    )
    assert (updated.sms_url, updated.sms_method) == (webapp.url("/sms"), "POST")
    assert updated.voice_url is None  # the voice configuration is untouched

    network.text_in(CUSTOMER, SURVEY_NUMBER, "hello")
    network.run_until_idle()
    assert [p["Body"] for p in inbox] == ["hello"]


def test_segments_follow_the_encoding() -> None:
    from phonesim.message import segments

    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("é" * 160) == 1  # in the GSM-7 set
    assert segments("ő" * 70) == 1  # not: UCS-2
    assert segments("ő" * 71) == 2


def test_a_messaging_service_message_is_accepted_then_queued(
    network: PhoneNetwork, twilio_client: Client, webapp: TwimlApp, statuses: list[dict[str, str]]
) -> None:
    service = "MG" + "0" * 32
    created = twilio_client.messages.create(
        to=CUSTOMER,
        messaging_service_sid=service,
        body=QUESTION,
        status_callback=webapp.url("/sms-status"),
    )
    assert (created.status, created.num_segments, created.from_) == ("accepted", "0", None)
    network.run_until_idle()

    assert [p["MessageStatus"] for p in statuses] == ["queued", "sent", "delivered"]
    assert statuses[-1]["MessagingServiceSid"] == service
    assert twilio_client.messages(created.sid).fetch().from_ == SURVEY_NUMBER
