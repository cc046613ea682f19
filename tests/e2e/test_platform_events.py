"""The platforms' events as they really arrive, end to end: posted over HTTP to the live
app as each platform posts them, then the survey call placed through the Twilio SDK into
phonesim and answered. One call per customer conversation, after its last leg, rating
the last agent; nothing for a chat, an abandoned call or a redelivery.

Events are written in the shape each vendor documents (tests/dialer/contact_records.py
for Connect's contact records through Firehose; tests/dialer/receiver_events.py for
TaskRouter's callbacks and Genesys's detail events).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from core import apikeys
from core.models import SurveyRequest
from phonesim import Persona
from tests.conftest import AUTH_TOKEN
from tests.dialer.contact_records import PATH, contact_record, firehose_body
from tests.dialer.receiver_events import (
    flex_reservation_event,
    flex_task_event,
    genesys_acw,
    genesys_topic,
)

pytestmark = pytest.mark.e2e

CUSTOMER = "+14155550377"
FIRST, SECOND = "11111111-aaaa-4aaa-8aaa-0000000000e1", "22222222-bbbb-4bbb-8bbb-0000000000e2"


@pytest.fixture
def live(dialer):
    """The dialer, an intake key, and the live app's address."""
    with dialer.runtime.db.session() as session:
        dialer.key = apikeys.create_key(session, "platform", scopes=[apikeys.INTAKE])
    dialer.base = dialer.runtime.settings.public_base_url
    dialer.network.set_persona(CUSTOMER, Persona.answering(["9", "5"]))
    return dialer


def surveyed(live) -> list:
    """Run the campaign to its end; the calls phonesim carried to the customer."""
    live.run_to_completion()
    return [call for call in live.network.calls if call.to == CUSTOMER]


def the_request(live, source_call_id: str):
    with live.runtime.db.session() as session:
        return session.scalars(
            select(SurveyRequest).where(SurveyRequest.source_call_id == source_call_id)
        ).one()


def firehose(live, records) -> None:
    body = firehose_body(records)
    response = requests.post(
        live.base + PATH,
        data=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "X-Amz-Firehose-Request-Id": body["requestId"],
            "X-Amz-Firehose-Access-Key": live.key,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["requestId"] == body["requestId"]


@pytest.mark.parametrize("order", ["first leg first", "last leg first"])
def test_a_connect_transfer_is_surveyed_once_after_its_last_leg(live, order):
    end = live.now() - timedelta(minutes=10)
    alice = contact_record(
        FIRST, ended_at=end - timedelta(minutes=6), agent="alice.ng", phone=CUSTOMER,
        next_=SECOND, transfer_completed_at=end - timedelta(minutes=6),
    )  # fmt: skip
    bob = contact_record(
        SECOND, ended_at=end, agent="bob.ortiz", phone=CUSTOMER, initial=FIRST,
        previous=FIRST, method="TRANSFER",
    )  # fmt: skip
    legs = [alice, bob] if order == "first leg first" else [bob, alice]
    for leg in legs:
        firehose(live, [leg])
    firehose(live, legs)  # Firehose delivers the batch again
    assert len(surveyed(live)) == 1  # one call to the customer, however many legs
    request = the_request(live, FIRST)
    assert (request.agent, request.state.value) == ("bob.ortiz", "completed")
    assert {a.question_key: a.value for a in live.campaign.request(request.id).answers} == {
        "nps": 9, "csat": 5,
    }  # fmt: skip


def test_a_connect_chat_and_an_abandoned_call_are_not_surveyed(live):
    end = live.now() - timedelta(minutes=10)
    firehose(
        live,
        [
            contact_record("chat-e2e", ended_at=end, channel="CHAT", phone=CUSTOMER),
            contact_record("abandoned-e2e", ended_at=end, agent=None, phone=CUSTOMER),
        ],
    )
    assert surveyed(live) == []


def post_flex(live, form) -> None:
    url = live.base + "/api/v1/events/twilio-flex"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    response = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)
    assert response.status_code == 204, response.text


def test_a_flex_transfer_is_surveyed_once_rating_the_last_worker(live):
    task = "WT" + "7" * 32
    end = int((live.now() - timedelta(minutes=10)).timestamp())
    attributes = json.dumps({"from": CUSTOMER, "to": "+18005550100", "direction": "inbound"})

    def reservation(worker: str, sid: str, event_type: str, minutes: int):
        at = end - 60 * minutes
        return flex_reservation_event(
            task, EventType=event_type, WorkerName=worker, ReservationSid=sid, ResourceSid=sid,
            Timestamp=str(at), TimestampMs=str(at * 1000), TaskAttributes=attributes,
        )  # fmt: skip

    events = [
        reservation("alice", "WR" + "1" * 32, "reservation.accepted", 12),
        reservation("alice", "WR" + "1" * 32, "reservation.wrapup", 10),
        reservation("bob", "WR" + "2" * 32, "reservation.accepted", 9),
        reservation("bob", "WR" + "2" * 32, "reservation.wrapup", 0),
        flex_task_event(
            task, phone=CUSTOMER, Timestamp=str(end + 30), TimestampMs=str((end + 30) * 1000)
        ),
    ]
    for form in events + events[-1:]:
        post_flex(live, form)
    assert len(surveyed(live)) == 1  # one call to the customer, however many legs
    assert the_request(live, task).agent == "bob"


def post_genesys(live, event) -> None:
    response = requests.post(
        live.base + "/api/v1/events/genesys-cloud",
        json=event,
        headers={"Authorization": f"Bearer {live.key}"},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text


def test_a_genesys_transfer_is_surveyed_once_at_the_customer_s_end(live):
    conversation = "0e7b2a4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    end_ms = int((live.now() - timedelta(minutes=10)).timestamp()) * 1000
    ani = f"tel:{CUSTOMER}"
    alice = genesys_acw(conversation, ani, userId="alice-id", participantId="p-1",
                        eventTime=end_ms - 540_000, disconnectType="TRANSFER")  # fmt: skip
    bob = genesys_acw(conversation, ani, userId="bob-id", participantId="p-2",
                      eventTime=end_ms, disconnectType="PEER")  # fmt: skip
    customer = genesys_acw(conversation, ani, userId=None, queueId=None, eventTime=end_ms)
    for event in (
        genesys_topic(alice, "user.end"),
        genesys_topic(customer, "customer.end"),
        genesys_topic(bob, "user.end"),
        genesys_topic(bob, "user.end"),
    ):
        post_genesys(live, event)
    assert len(surveyed(live)) == 1  # one call to the customer, however many legs
    assert the_request(live, conversation).agent == "bob-id"


def test_a_plain_connect_call_is_surveyed_rating_its_agent(live):
    record = contact_record(
        FIRST, ended_at=live.now() - timedelta(minutes=10), agent="carol.li", phone=CUSTOMER
    )
    firehose(live, [record])
    assert len(surveyed(live)) == 1
    assert the_request(live, FIRST).agent == "carol.li"


def flex_form(live, task: str, **overrides) -> dict[str, str]:
    end = int((live.now() - timedelta(minutes=10)).timestamp())
    attributes = json.dumps({"from": CUSTOMER, "to": "+18005550100", "direction": "inbound"})
    return flex_task_event(
        task, phone=CUSTOMER, Timestamp=str(end), TimestampMs=str(end * 1000),
        TaskAttributes=attributes, **overrides,
    )  # fmt: skip


def test_a_plain_flex_task_is_surveyed_rating_its_worker(live):
    task = "WT" + "8" * 32
    accepted = flex_form(live, task, EventType="reservation.accepted", ReservationSid="WR" + "3" * 32,
                         WorkerName="dana", ResourceType="Reservation")  # fmt: skip
    wrapped = dict(accepted, EventType="reservation.wrapup")
    for form in (accepted, wrapped, flex_form(live, task)):
        post_flex(live, form)
    assert len(surveyed(live)) == 1
    assert the_request(live, task).agent == "dana"


def test_a_flex_chat_and_a_canceled_task_are_not_surveyed(live):
    post_flex(live, flex_form(live, "WT" + "9" * 32, TaskChannelUniqueName="chat"))
    post_flex(live, flex_form(live, "WT" + "0" * 32, EventType="task.canceled"))
    assert surveyed(live) == []


def test_a_plain_genesys_conversation_is_surveyed_and_a_chat_or_abandon_is_not(live):
    end_ms = int((live.now() - timedelta(minutes=10)).timestamp()) * 1000
    ani = f"tel:{CUSTOMER}"

    def events(conversation: str, **body):
        agent = genesys_acw(conversation, ani, userId="erin-id", participantId="p-9",
                            eventTime=end_ms - 1000, disconnectType="PEER", **body)  # fmt: skip
        customer = genesys_acw(conversation, ani, userId=None, queueId=None, eventTime=end_ms,
                               **body)  # fmt: skip
        return [genesys_topic(agent, "user.end"), genesys_topic(customer, "customer.end")]

    plain = "1e7b2a4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    for event in events(plain) + events("2e7b2a4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", mediaType="CHAT"):
        post_genesys(live, event)
    abandoned = genesys_acw("3e7b2a4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", ani, userId=None,
                            queueId=None, eventTime=end_ms)  # fmt: skip
    post_genesys(live, genesys_topic(abandoned, "customer.end"))
    assert len(surveyed(live)) == 1
    assert the_request(live, plain).agent == "erin-id"
