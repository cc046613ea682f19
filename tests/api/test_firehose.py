"""POST /api/v1/events/amazon-connect/contact-records: Amazon Connect's contact records as
Amazon Data Firehose's HTTP endpoint delivery posts them, on both databases.

Requests and records are written in the shape AWS documents (tests/dialer/contact_records.py
names the documents): Firehose's headers and access key, base64 records, gzip or not, and
the response Firehose requires (JSON echoing requestId, an integer timestamp, 200 only
when the whole batch is taken).
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from aftercall.web import create_app
from core import apikeys
from core.models import ContactLeg, RequestState, SurveyMode, SurveyRequest
from tests.api.conftest import ENDED_AT, stored_requests
from tests.dialer.contact_records import PATH, contact_record, firehose_body, firehose_post

FIRST, SECOND = "11111111-aaaa-4aaa-8aaa-000000000001", "22222222-bbbb-4bbb-8bbb-000000000002"


@pytest.fixture
def access_key(runtime) -> str:
    with runtime.db.session() as session:
        return apikeys.create_key(session, "firehose", scopes=[apikeys.INTAKE])


def assert_firehose_answer(response, status: int, request_id: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert "Content-Encoding" not in response.headers
    body = json.loads(response.data)
    assert body["requestId"] == request_id
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_700_000_000_000
    assert ("errorMessage" in body) is (status != 200)
    return body


def transfer_legs():
    handed_on = ENDED_AT - timedelta(minutes=6)
    alice = contact_record(
        FIRST, ended_at=handed_on, agent="alice.ng", next_=SECOND, acw_at=handed_on,
        transfer_completed_at=handed_on,
    )  # fmt: skip
    bob = contact_record(
        SECOND, ended_at=ENDED_AT, agent="bob.ortiz", queue="Retention", initial=FIRST,
        previous=FIRST, method="TRANSFER",
    )  # fmt: skip
    return alice, bob


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("newline", [True, False])
def test_a_contact_record_becomes_a_survey_request(client, runtime, access_key, compress, newline):
    body = firehose_body([contact_record(FIRST, ended_at=ENDED_AT)], newline=newline)
    response = firehose_post(client, body, access_key, compress=compress)
    assert_firehose_answer(response, 200, body["requestId"])
    request = stored_requests(runtime)[FIRST]
    assert (request.phone, request.agent, request.queue, request.team) == (
        "+14155550123", "alice.ng", "Billing", "North",
    )  # fmt: skip
    assert request.call_ended_at == ENDED_AT
    with runtime.db.session() as session:
        key_id = session.scalar(select(SurveyRequest.api_key_id))
    assert key_id is not None  # the access key's: it can read the request back


@pytest.mark.parametrize("order", ["first leg first", "last leg first"])
def test_a_transfer_is_one_survey_after_the_last_leg_rating_the_last_agent(
    client, runtime, access_key, order
):
    alice, bob = transfer_legs()
    first, second = (alice, bob) if order == "first leg first" else (bob, alice)
    assert firehose_post(client, firehose_body([first]), access_key).status_code == 200
    assert stored_requests(runtime) == {}  # the conversation is not over
    assert firehose_post(client, firehose_body([second]), access_key).status_code == 200
    requests = stored_requests(runtime)
    assert list(requests) == [FIRST]
    assert (requests[FIRST].agent, requests[FIRST].queue) == ("bob.ortiz", "Retention")
    assert requests[FIRST].call_ended_at == ENDED_AT


def test_a_redelivered_batch_and_an_updated_record_create_nothing_new(client, runtime, access_key):
    alice, bob = transfer_legs()
    body = firehose_body([alice, bob])
    for _ in range(2):  # Firehose retries with the same request id
        assert_firehose_answer(firehose_post(client, body, access_key), 200, body["requestId"])
    updated = dict(bob, LastUpdateTimestamp="2026-11-29T09:00:00Z", Attributes={"late": "yes"})
    assert firehose_post(client, firehose_body([updated]), access_key).status_code == 200
    assert list(stored_requests(runtime)) == [FIRST]
    with runtime.db.session() as session:
        assert session.query(ContactLeg).count() == 2


def test_an_older_copy_of_a_leg_never_replaces_a_newer_one(client, runtime, access_key):
    newer = contact_record(FIRST, ended_at=ENDED_AT, agent="alice.ng", next_=SECOND)
    older = dict(newer, NextContactId=None, LastUpdateTimestamp="2026-11-01T00:00:00Z")
    for record in (newer, older):
        firehose_post(client, firehose_body([record]), access_key)
    with runtime.db.session() as session:
        assert session.scalar(select(ContactLeg.next_leg_id)) == SECOND
    assert stored_requests(runtime) == {}  # still waiting for the second leg


def test_records_that_are_no_survey_never_fail_the_batch(client, runtime, access_key):
    good = contact_record(FIRST, ended_at=ENDED_AT)
    body = firehose_body(
        [
            contact_record("chat-1", ended_at=ENDED_AT, channel="CHAT"),
            contact_record("abandoned-1", ended_at=ENDED_AT, agent=None),
            contact_record("monitor-1", ended_at=ENDED_AT, method="MONITOR"),
            good,
        ]
    )
    body["records"] += [{"data": "not base64!"}, {"data": base64.b64encode(b"{not json").decode()}]
    body["records"].append({"nodata": 1})
    assert_firehose_answer(firehose_post(client, body, access_key), 200, body["requestId"])
    assert list(stored_requests(runtime)) == [FIRST]


def test_an_empty_batch_is_delivered(client, access_key):
    body = {"requestId": "r-empty", "timestamp": 1764900000000, "records": []}
    assert_firehose_answer(firehose_post(client, body, access_key), 200, "r-empty")


@pytest.mark.parametrize(
    ("key", "status"),
    [("", 401), ("ak_not-a-key", 401), ("reports", 403)],
)
def test_a_wrong_access_key_is_refused_in_firehose_terms(client, runtime, key, status):
    if key == "reports":
        with runtime.db.session() as session:
            key = apikeys.create_key(session, "reader", scopes=[apikeys.REPORTS])
    body = firehose_body([contact_record(FIRST, ended_at=ENDED_AT)], request_id="r-key")
    assert_firehose_answer(firehose_post(client, body, key), status, "r-key")
    assert stored_requests(runtime) == {}


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (b"not json", {}),
        (b'["a list"]', {}),
        (b'{"requestId": "x", "records": "no list"}', {}),
        (b'{"requestId": "x"}', {}),
        (b"plain, not gzip", {"Content-Encoding": "gzip"}),
        (gzip.compress(b'{"records": []}', mtime=0)[:-6], {"Content-Encoding": "gzip"}),
    ],
)
def test_a_body_that_is_not_firehose_s_is_a_400(client, access_key, payload, headers):
    response = client.post(
        PATH,
        data=payload,
        headers={
            "Content-Type": "application/json",
            "X-Amz-Firehose-Request-Id": "r-bad",
            "X-Amz-Firehose-Access-Key": access_key,
            **headers,
        },
    )
    assert_firehose_answer(response, 400, "r-bad")


def test_a_database_outage_is_a_503_so_firehose_retries(client, runtime, access_key, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from dialer.receivers import conversations

    def broken(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("the database is down"))

    monkeypatch.setattr(conversations, "store_leg", broken)
    body = firehose_body([contact_record(FIRST, ended_at=ENDED_AT)], request_id="r-down")
    body_json = assert_firehose_answer(firehose_post(client, body, access_key), 503, "r-down")
    assert "down" not in body_json["errorMessage"]  # no insides in the answer


def test_contact_records_set_to_in_call_wait_for_the_transfer(runtime, access_key, tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text('[amazon-connect]\nmode = "in_call"\n')
    runtime.settings = runtime.settings.with_overrides(receivers_file=path)
    client = create_app(runtime=runtime).test_client()
    body = firehose_body([contact_record(FIRST, ended_at=ENDED_AT)])
    assert_firehose_answer(firehose_post(client, body, access_key), 200, body["requestId"])
    request = stored_requests(runtime)[FIRST]
    assert (request.mode, request.state) == (SurveyMode.IN_CALL, RequestState.AWAITING_TRANSFER)
