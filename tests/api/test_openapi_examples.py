"""The examples in docs/openapi.yaml, posted as they are, get the answers the spec gives.

An example is what an admin copies to try a route: it must be a real event, with times
that agree with each other, and the spec must say truly what becomes of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from twilio.request_validator import RequestValidator

from tests.api.conftest import stored_requests
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.openapi import check_response, spec

FLEX = "/api/v1/events/twilio-flex"
CONNECT = "/api/v1/events/amazon-connect"
GENESYS = "/api/v1/events/genesys-cloud"


def example(path: str, name: str, media_type: str = "application/json") -> dict:
    content = spec()["paths"][path]["post"]["requestBody"]["content"][media_type]
    return content["examples"][name]["value"]


def post_json(client, path: str, body: dict, auth: dict[str, str]):
    response = client.post(
        path, data=json.dumps(body), headers=auth | {"Content-Type": "application/json"}
    )
    check_response(path, "POST", response.status_code, response.get_json())
    return response


def test_the_genesys_examples_make_one_survey_request(client, runtime, auth):
    """The agent's wrap-up waits for the customer's end, which makes the request rating
    that agent; each event happened shortly before the integration sent it."""
    acw, customer_end = example(GENESYS, "acw"), example(GENESYS, "customer_end")
    for event in (acw, customer_end):
        happened = datetime.fromtimestamp(event["detail"]["eventBody"]["eventTime"] / 1000, UTC)
        sent = datetime.fromisoformat(event["time"])
        assert timedelta(0) <= sent - happened <= timedelta(minutes=1)
    response = post_json(client, GENESYS, acw, auth)
    assert (response.status_code, response.get_json()["status"]) == (200, "waiting")
    assert post_json(client, GENESYS, customer_end, auth).status_code == 201
    (row,) = stored_requests(runtime).values()
    assert row.agent == acw["detail"]["eventBody"]["userId"]
    assert row.call_ended_at == datetime(2026, 11, 23, 14, 57, 40, tzinfo=UTC)


def test_the_connect_example_is_answered_as_the_spec_says(client, runtime, auth):
    """AWS's own sample carries no customer number: 422 unmapped_field, naming it."""
    response = post_json(client, CONNECT, example(CONNECT, "disconnected"), auth)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unmapped_field"
    assert "phone" in response.get_json()["error"]["message"]
    assert stored_requests(runtime) == {}


def test_the_flex_example_signed_becomes_a_survey_request(client, runtime):
    form = example(FLEX, "task.completed", "application/x-www-form-urlencoded")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + FLEX, form)
    response = client.post(FLEX, data=form, headers={"X-Twilio-Signature": signature})
    assert (response.status_code, response.headers["X-Aftercall-Outcome"]) == (204, "accepted")
    assert list(stored_requests(runtime)) == [form["TaskSid"]]


def test_the_survey_request_examples_are_accepted(client, auth):
    path = "/api/v1/survey-requests"
    content = spec()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    single, batch = content["schema"]["examples"]
    response = post_json(client, path, single, auth)
    assert response.status_code == 201
    response = post_json(client, path, batch, auth)
    assert response.get_json()["accepted"] == 2
