"""POST /api/v1/events/*: platform events in, survey requests out, on both databases.

Twilio Flex posts are signed with twilio's own RequestValidator against the receiver's
public URL; Amazon Connect and Genesys Cloud posts carry an API key, as an EventBridge
API destination's connection sends it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from aftercall.web import create_app
from core import apikeys
from core.models import OptOut, RequestState, SurveyMode
from dialer.receivers import outcome as receiver_outcome
from dialer.receivers.mapping import MappingError
from dialer.scheduling import CALL_QUEUE, call_job_id
from tests.api.conftest import ENDED_AT, stored_requests
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.dialer.receiver_events import (
    CONNECT_AGENT_ID,
    ENDED_EPOCH,
    GENESYS_USER_ID,
    connect_as_in_aws_sample,
    connect_disconnected,
    flex_reservation_event,
    flex_task_event,
    genesys_acw,
    genesys_topic,
)
from tests.openapi import check_response

FLEX = "/api/v1/events/twilio-flex"
CONNECT = "/api/v1/events/amazon-connect"
GENESYS = "/api/v1/events/genesys-cloud"


def post_flex(client, form: dict[str, str], *, token: str = AUTH_TOKEN, url: str | None = None):
    """Post as TaskRouter does: form-encoded, signed over the public URL."""
    signature = RequestValidator(token).compute_signature(url or PUBLIC_BASE_URL + FLEX, form)
    return client.post(FLEX, data=form, headers={"X-Twilio-Signature": signature})


def assert_flex_answer(response, outcome: str) -> None:
    assert response.status_code == 204
    assert response.mimetype == "application/json"
    assert response.data == b""
    assert response.headers["X-Aftercall-Outcome"] == outcome


def post_event(client, path: str, event, auth: dict[str, str]):
    response = client.post(
        path, data=json.dumps(event), headers=auth | {"Content-Type": "application/json"}
    )
    check_response(path, "POST", response.status_code, response.get_json())
    return response


def counted(platform: str, outcome: str, reason: str = "") -> float:
    value = receiver_outcome.EVENTS.labels(platform, outcome, reason)._value.get()
    return value


@pytest.fixture
def app_with(runtime, tmp_path):
    """An app whose RECEIVERS_FILE says `text`."""

    def make(text: str):
        path = tmp_path / "receivers.toml"
        path.write_text(text)
        runtime.settings = runtime.settings.with_overrides(receivers_file=path)
        app = create_app(runtime=runtime)
        app.config["TESTING"] = True
        return app.test_client()

    return make


# -- Twilio Flex ------------------------------------------------------------------------


def test_a_signed_completed_voice_task_becomes_a_survey_request(client, runtime):
    before = counted("twilio-flex", "accepted")
    assert_flex_answer(post_flex(client, flex_task_event()), "accepted")
    row = stored_requests(runtime)["WT" + "a" * 32]
    assert row.state is RequestState.SCHEDULED
    assert (row.phone, row.queue, row.agent) == ("+14155550123", "billing", None)
    assert row.call_ended_at == ENDED_AT
    assert row.extra == {"call_sid": "CA" + "b" * 32}
    assert row.api_key_id is None
    assert counted("twilio-flex", "accepted") == before + 1


def test_receiver_outcomes_are_on_the_metrics_page(client):
    post_flex(client, flex_task_event())
    text = client.get("/metrics").get_data(as_text=True)
    assert 'aftercall_receiver_events_total{outcome="accepted",platform="twilio-flex"' in text


def test_an_accepted_event_queues_the_first_survey_call(runtime, redis_url):
    """With the real Redis: the call job is scheduled for the planned time, once."""
    from rq.job import Job

    runtime.settings = runtime.settings.with_overrides(redis_url=redis_url)
    client = create_app(runtime=runtime).test_client()
    form = flex_task_event()
    assert_flex_answer(post_flex(client, form), "accepted")
    assert_flex_answer(post_flex(client, form), "rejected:duplicate_source_call_id")
    row = stored_requests(runtime)[form["TaskSid"]]
    job_id = call_job_id(row.id, 1, row.due_at)
    assert Job.exists(job_id, connection=runtime.redis)
    assert runtime.queue(CALL_QUEUE).scheduled_job_registry.get_job_ids() == [job_id]


def test_a_repeated_flex_event_creates_nothing_new(client, runtime):
    form = flex_task_event()
    assert_flex_answer(post_flex(client, form), "accepted")
    assert_flex_answer(post_flex(client, form), "rejected:duplicate_source_call_id")
    assert len(stored_requests(runtime)) == 1


@pytest.mark.parametrize(
    "forgery", ["unsigned", "wrong-token", "changed-phone", "internal-url", "other-path"]
)
def test_forged_flex_events_are_refused_and_write_nothing(client, runtime, forgery):
    form = flex_task_event()
    changed = flex_task_event(phone="+14155550199")
    if forgery == "unsigned":
        response = client.post(FLEX, data=form)
    elif forgery == "wrong-token":
        response = post_flex(client, form, token="not-the-auth-token")
    elif forgery == "changed-phone":  # signed for one number, sent with another
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + FLEX, form)
        response = client.post(FLEX, data=changed, headers={"X-Twilio-Signature": signature})
    elif forgery == "internal-url":  # the address behind the proxy, not PUBLIC_BASE_URL
        response = post_flex(client, form, url="http://localhost" + FLEX)
    else:  # a voice webhook's signature replayed here
        response = post_flex(client, form, url=PUBLIC_BASE_URL + "/voice/attempts/1/status")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    check_response(FLEX, "POST", 403, response.get_json())
    assert stored_requests(runtime) == {}


def test_an_api_key_does_not_replace_the_signature(client, runtime, auth):
    response = client.post(FLEX, data=flex_task_event(), headers=auth)
    assert response.status_code == 403
    assert stored_requests(runtime) == {}


def test_flex_events_are_checked_with_the_flex_accounts_token(runtime):
    runtime.settings = runtime.settings.with_overrides(flex_auth_token="flex-account-token")
    client = create_app(runtime=runtime).test_client()
    assert post_flex(client, flex_task_event()).status_code == 403  # the dialing account's
    assert_flex_answer(post_flex(client, flex_task_event(), token="flex-account-token"), "accepted")


@pytest.mark.parametrize(
    ("form", "outcome"),
    [
        (flex_task_event(event_type="task.created"), "ignored:event_not_selected"),
        (flex_reservation_event(EventType="reservation.rejected"), "ignored:event_not_selected"),
        (flex_reservation_event(EventType="reservation.accepted"), "waiting:later_leg_to_come"),
        (flex_task_event(channel="chat"), "ignored:not_voice"),
        ({"EventType": "worker.activity.update", "WorkerSid": "WK" + "1" * 32},
         "ignored:event_not_selected"),
        (flex_task_event(TaskAttributes="{not json"), "invalid:invalid_event"),
        (flex_task_event(TaskAttributes=json.dumps({"to": "+18005550100"})),
         "invalid:unmapped_field"),
        (flex_task_event(phone="anonymous"), "rejected:invalid_phone"),
    ],
)  # fmt: skip
def test_flex_events_that_make_no_request_are_acknowledged(client, runtime, form, outcome):
    assert_flex_answer(post_flex(client, form), outcome)
    assert stored_requests(runtime) == {}


def flex_reservation(task_sid: str, worker: str, reservation: str, event_type: str, minute: int):
    """A reservation event of `worker` on the task, `minute` minutes before the call's end."""
    at = ENDED_EPOCH - 60 * minute
    return flex_reservation_event(
        task_sid, EventType=event_type, WorkerName=worker, ReservationSid=reservation,
        ResourceSid=reservation, Timestamp=str(at), TimestampMs=str(at * 1000),
    )  # fmt: skip


def test_the_task_names_the_agent_of_its_reservation(client, runtime):
    task = "WT" + "c" * 32
    events = [
        flex_reservation(task, "alice", "WR" + "1" * 32, "reservation.accepted", 5),
        flex_reservation(task, "alice", "WR" + "1" * 32, "reservation.wrapup", 0),
        flex_task_event(task),
    ]
    outcomes = [post_flex(client, form).headers["X-Aftercall-Outcome"] for form in events]
    assert outcomes == ["waiting:later_leg_to_come", "waiting:later_leg_to_come", "accepted"]
    request = stored_requests(runtime)[task]
    assert (request.agent, request.queue) == ("alice", "billing")
    assert request.call_ended_at == datetime.fromtimestamp(ENDED_EPOCH, UTC)


def flex_transfer(task: str, *, warm: bool) -> list[dict[str, str]]:
    """Alice takes the call and hands it to Bob on the same task (Flex keeps the task and
    gives Bob a reservation). Cold: Alice wraps up as she hands on. Warm: she stays until
    Bob has the customer, then leaves; Bob wraps up last either way."""
    alice, bob = "WR" + "a" * 32, "WR" + "b" * 32
    return [
        flex_reservation(task, "alice", alice, "reservation.accepted", 12),
        flex_reservation(task, "alice", alice, "reservation.wrapup", 8 if warm else 10),
        flex_reservation(task, "bob", bob, "reservation.accepted", 9),
        flex_reservation(task, "bob", bob, "reservation.wrapup", 0),
        flex_task_event(task, event_type="task.completed"),
    ]


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("order", ["as sent", "reservations reversed", "twice"])
def test_a_flex_transfer_is_one_survey_rating_the_last_worker(client, runtime, warm, order):
    task = "WT" + "e" * 32
    events = flex_transfer(task, warm=warm)
    if order == "reservations reversed":
        events = [*reversed(events[:-1]), events[-1]]
    elif order == "twice":
        events = events + events
    outcomes = [post_flex(client, form).headers["X-Aftercall-Outcome"] for form in events]
    assert outcomes.count("accepted") == 1
    assert (stored_requests(runtime)[task].agent, len(stored_requests(runtime))) == ("bob", 1)


def test_a_task_whose_last_reservation_has_not_wrapped_up_waits_for_it(client, runtime):
    task = "WT" + "f" * 32
    alice = "WR" + "9" * 32
    post_flex(client, flex_reservation(task, "alice", alice, "reservation.accepted", 3))
    assert_flex_answer(post_flex(client, flex_task_event(task)), "waiting:later_leg_to_come")
    assert stored_requests(runtime) == {}
    wrapped = flex_reservation(task, "alice", alice, "reservation.completed", 0)
    assert_flex_answer(post_flex(client, wrapped), "accepted")
    assert stored_requests(runtime)[task].agent == "alice"


def test_reservation_events_are_no_survey_trigger_of_their_own(app_with):
    with pytest.raises(MappingError):
        app_with('[twilio-flex]\nevents = ["reservation.completed"]\n')


def test_a_flex_attribute_mapping_override(app_with, runtime):
    client = app_with(
        '[twilio-flex]\nphone = ["TaskAttributes.customers.phone", "TaskAttributes.from"]\n'
        'team = "TaskAttributes.team"\nsurvey = "post-call"\n'
        '[twilio-flex.metadata]\nticket = "TaskAttributes.crm.ticket"\n'
    )
    attributes = {"from": "+18005550100", "customers": {"phone": "+14155550166"},
                  "team": "north", "crm": {"ticket": "T-77"}}  # fmt: skip
    form = flex_task_event("WT" + "d" * 32, TaskAttributes=json.dumps(attributes))
    assert_flex_answer(post_flex(client, form), "accepted")
    row = stored_requests(runtime)["WT" + "d" * 32]
    assert (row.phone, row.team, row.extra) == ("+14155550166", "north", {"ticket": "T-77"})


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(st.sampled_from(sorted(flex_task_event())) | TEXT, TEXT, max_size=6))
def test_any_signed_flex_form_is_acknowledged(client, changes):
    form = {k: v for k, v in (flex_task_event() | changes).items() if "\x00" not in k + v}
    response = post_flex(client, form)
    assert response.status_code == 204, response.data[:300]
    assert response.headers["X-Aftercall-Outcome"].split(":")[0] in {
        "accepted", "rejected", "ignored", "invalid",
    }  # fmt: skip


# -- Amazon Connect and Genesys Cloud: the API key --------------------------------------


@pytest.mark.parametrize("path", [CONNECT, GENESYS])
def test_eventbridge_receivers_need_an_intake_key(client, runtime, path):
    event = connect_disconnected() if path == CONNECT else genesys_acw()
    assert post_event(client, path, event, {}).status_code == 401
    wrong = {"Authorization": "Bearer ac_not_a_key"}
    assert post_event(client, path, event, wrong).status_code == 401
    with runtime.db.session() as session:
        reports_key = apikeys.create_key(session, "dashboard", ["reports"])
    response = post_event(client, path, event, {"Authorization": f"Bearer {reports_key}"})
    assert response.status_code == 403
    assert stored_requests(runtime) == {}


# -- Amazon Connect ---------------------------------------------------------------------


def test_an_ended_connect_voice_contact_becomes_a_survey_request(client, runtime, auth):
    response = post_event(client, CONNECT, connect_disconnected(), auth)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["status"], body["source_call_id"]) == (
        "accepted",
        "11111111-1111-1111-1111-111111111111",
    )
    row = stored_requests(runtime)[body["source_call_id"]]
    assert row.id == body["request_id"]
    assert (row.phone, row.agent, row.call_ended_at) == ("+14155550123", CONNECT_AGENT_ID, ENDED_AT)
    assert row.api_key_id is not None  # the key can read it back
    assert client.get(f"/api/v1/survey-requests/{row.id}", headers=auth).status_code == 200


def test_connect_delivers_at_least_once_and_completed_follows_disconnected(client, runtime, auth):
    event = connect_disconnected()
    assert post_event(client, CONNECT, event, auth).status_code == 201
    again = post_event(client, CONNECT, event, auth)
    assert (again.status_code, again.get_json()["reason"]) == (200, "duplicate_source_call_id")
    client_completed = connect_disconnected(eventType="COMPLETED")
    ignored = post_event(client, CONNECT, client_completed, auth).get_json()
    assert (ignored["status"], ignored["reason"]) == ("ignored", "event_not_selected")
    assert len(stored_requests(runtime)) == 1


def test_the_spelling_of_aws_own_sample_is_received(client, runtime, auth):
    assert post_event(client, CONNECT, connect_as_in_aws_sample(), auth).status_code == 201


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (connect_disconnected(channel="CHAT"), "not_voice"),
        (connect_disconnected(agentInfo=None), "no_agent"),
        (connect_disconnected(eventType="QUEUED"), "event_not_selected"),
        (connect_disconnected(initiationMethod="MONITOR"), "initiation_method_skipped"),
        (
            {**connect_disconnected(), "detail-type": "Amazon Connect Agent Event"},
            "other_event_type",
        ),
    ],
)
def test_connect_events_filtered_out_are_200_and_counted(client, runtime, auth, event, reason):
    before = counted("amazon-connect", "ignored", reason)
    response = post_event(client, CONNECT, event, auth)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert response.get_json()["reason"] == reason
    assert counted("amazon-connect", "ignored", reason) == before + 1
    assert stored_requests(runtime) == {}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (connect_disconnected(phone=None), 422, "unmapped_field"),
        (connect_disconnected(disconnectTimestamp="1999-12-31T23:59:59Z"), 422, "invalid_field"),
        ({"version": "0", "detail-type": "Amazon Connect Contact Event"}, 400, "invalid_event"),
        ([connect_disconnected()], 400, "invalid_event"),
        ("DISCONNECTED", 400, "invalid_event"),
    ],
)
def test_connect_events_that_cannot_be_mapped_are_4xx(client, runtime, auth, body, status, code):
    response = post_event(client, CONNECT, body, auth)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert stored_requests(runtime) == {}


@pytest.mark.parametrize("path", [CONNECT, GENESYS])
def test_eventbridge_bodies_must_be_json(client, runtime, auth, path):
    not_json = client.post(path, data="{", headers=auth | {"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.get_json()["error"]["code"]) == (400, "invalid_json")
    form = client.post(path, data={"detail": "x"}, headers=auth)
    assert form.status_code == 415
    check_response(path, "POST", 415, form.get_json())
    assert stored_requests(runtime) == {}


def test_a_suppressed_contact_is_stored_with_its_reason(client, runtime, auth):
    with runtime.db.session() as session:
        session.add(OptOut(phone="+14155550123", source="keypad"))
    body = post_event(client, CONNECT, connect_disconnected(), auth).get_json()
    assert (body["status"], body["reason"]) == ("rejected", "opted_out")
    assert stored_requests(runtime)[body["source_call_id"]].state is RequestState.SUPPRESSED


def test_connect_mapping_overrides_from_the_file(app_with, runtime, auth):
    client = app_with(
        '[amazon-connect]\nsource_call_id = "detail.initialContactId"\n'
        'phone = "detail.tags.customerNumber"\n'
        f'[amazon-connect.agents]\n"{CONNECT_AGENT_ID}" = "alice"\n'
    )
    event = connect_disconnected(phone=None, tags={"customerNumber": "+14155550155"})
    body = post_event(client, CONNECT, event, auth).get_json()
    assert body["source_call_id"] == "11111111-2222-3333-4444-555555555555"
    row = stored_requests(runtime)[body["source_call_id"]]
    assert (row.phone, row.agent) == ("+14155550155", "alice")
    # A transfer is a new contact with the same initial contact: surveyed once.
    transferred = connect_disconnected("33333333-3333-3333-3333-333333333333", phone=None,
                                       tags={"customerNumber": "+14155550155"})  # fmt: skip
    assert post_event(client, CONNECT, transferred, auth).get_json()["reason"] == (
        "duplicate_source_call_id"
    )
    assert len(stored_requests(runtime)) == 1


def test_a_database_failure_is_503_so_eventbridge_delivers_again(
    client, runtime, auth, monkeypatch
):
    def broken(*args, **kwargs):
        raise OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(receiver_outcome, "accept_calls", broken)
    response = client.post(CONNECT, json=connect_disconnected(), headers=auth)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    check_response(CONNECT, "POST", 503, response.get_json())
    assert post_flex(client, flex_task_event()).status_code == 503


# -- Genesys Cloud ----------------------------------------------------------------------


CONVERSATION = "5f7a3b2c-1d4e-4f6a-8b9c-0d1e2f3a4b5c"


def genesys_agent(user: str, participant: str, topic: str, minute: int, **body):
    """`topic` (user.end or acw) of one agent participant, `minute` minutes before the end."""
    event = genesys_acw(
        userId=user, participantId=participant, eventTime=(ENDED_EPOCH - 60 * minute) * 1000,
        **body,
    )  # fmt: skip
    return event if topic == "acw" else genesys_topic(event, topic)


def genesys_customer_end():
    return genesys_topic(genesys_acw(userId=None, queueId=None, wrapupCode=None), "customer.end")


def test_a_conversation_is_surveyed_at_the_customer_s_end_rating_its_agent(client, runtime, auth):
    for event in (
        genesys_agent(GENESYS_USER_ID, "p-1", "user.end", 0, disconnectType="PEER"),
        genesys_customer_end(),
    ):
        response = post_event(client, GENESYS, event, auth)
    assert response.status_code == 201
    row = stored_requests(runtime)[CONVERSATION]
    assert (row.phone, row.agent, row.call_ended_at) == ("+14155550123", GENESYS_USER_ID, ENDED_AT)


def genesys_transfer():
    """Alice (participant p-1) hands the customer to Bob (p-2): her user.end says TRANSFER;
    both wrap up; the customer ends with Bob."""
    alice, bob = GENESYS_USER_ID, "ffffffff-0000-4000-8000-000000000000"
    return [
        genesys_agent(alice, "p-1", "user.end", 9, disconnectType="TRANSFER"),
        genesys_agent(alice, "p-1", "acw", 8),
        genesys_agent(bob, "p-2", "user.end", 0, disconnectType="PEER"),
        genesys_customer_end(),
        genesys_agent(bob, "p-2", "acw", -1, wrapupCode="resolved"),
    ]


@pytest.mark.parametrize("order", ["as sent", "reversed", "twice"])
def test_a_transferred_conversation_is_one_survey_rating_the_last_agent(
    client, runtime, auth, order
):
    events = genesys_transfer()
    if order == "reversed":
        events.reverse()
    elif order == "twice":
        events = events + events
    statuses = [post_event(client, GENESYS, event, auth).get_json()["status"] for event in events]
    assert statuses.count("accepted") == 1
    assert list(stored_requests(runtime)) == [CONVERSATION]
    assert stored_requests(runtime)[CONVERSATION].agent == "ffffffff-0000-4000-8000-000000000000"


def test_the_customer_s_end_waits_for_the_agent_it_was_handed_to(client, runtime, auth):
    alice_left = genesys_agent(GENESYS_USER_ID, "p-1", "user.end", 9, disconnectType="TRANSFER")
    assert post_event(client, GENESYS, alice_left, auth).get_json()["status"] == "waiting"
    assert (
        post_event(client, GENESYS, genesys_customer_end(), auth).get_json()["status"] == "waiting"
    )
    assert stored_requests(runtime) == {}


def test_the_older_rule_survey_on_each_listed_event(app_with, runtime, auth):
    client = app_with('[genesys-cloud]\ntopics = ["acw"]\n')
    response = post_event(client, GENESYS, genesys_acw(), auth)
    assert response.status_code == 201
    row = stored_requests(runtime)[CONVERSATION]
    assert (row.phone, row.agent, row.call_ended_at) == ("+14155550123", GENESYS_USER_ID, ENDED_AT)
    assert row.extra == {"wrapup_code": "7fb334b0-0e9e-11e4-9191-0800200c9a66"}


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        (genesys_acw(mediaType="CHAT"), "ignored", "not_voice"),
        (genesys_topic(genesys_acw(), "user.start"), "ignored", "event_not_selected"),
        (genesys_acw(userId=None), "ignored", "no_agent"),
        (genesys_customer_end(), "ignored", "no_agent"),  # abandoned, or agents still to come
    ],
)
def test_genesys_events_that_make_no_request(client, runtime, auth, event, status, reason):
    body = post_event(client, GENESYS, event, auth).get_json()
    assert (body["status"], body["reason"]) == (status, reason)
    assert stored_requests(runtime) == {}


def test_genesys_without_an_ani_is_422(client, runtime, auth):
    customer_end = genesys_topic(genesys_acw(ani=None), "customer.end")
    response = post_event(client, GENESYS, customer_end, auth)
    assert response.status_code == 422
    assert "detail.eventBody.ani" in response.get_json()["error"]["message"]


def test_genesys_names_from_the_file(app_with, runtime, auth):
    client = app_with(f'[genesys-cloud.agents]\n"{GENESYS_USER_ID}" = "alice"\n')
    post_event(client, GENESYS, genesys_agent(GENESYS_USER_ID, "p-1", "acw", 0), auth)
    post_event(client, GENESYS, genesys_customer_end(), auth)
    assert stored_requests(runtime)[CONVERSATION].agent == "alice"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from([CONNECT, GENESYS]),
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=15,
    ),
)
def test_any_json_gets_a_documented_answer(client, auth, path, body):
    response = post_event(client, path, body, auth)
    assert response.status_code in (200, 400, 422)


# -- the mapping file -------------------------------------------------------------------


def test_a_mistake_in_the_mapping_file_stops_the_app_at_start(runtime, tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text('[amazon-connect]\nphone_number = "detail.x"\n')
    runtime.settings = runtime.settings.with_overrides(receivers_file=path)
    with pytest.raises(MappingError, match="phone_number"):
        create_app(runtime=runtime)


# -- in-call mode -----------------------------------------------------------------------


def test_a_connect_receiver_set_to_in_call_waits_for_the_transfer(app_with, runtime, auth):
    client = app_with('[amazon-connect]\nmode = "in_call"\n')
    body = post_event(client, CONNECT, connect_disconnected(), auth).get_json()
    assert body["status"] == "accepted"
    row = stored_requests(runtime)[body["source_call_id"]]
    assert (row.mode, row.state, row.due_at) == (
        SurveyMode.IN_CALL,
        RequestState.AWAITING_TRANSFER,
        None,
    )


def test_a_flex_receiver_set_to_in_call_waits_for_the_transfer(app_with, runtime):
    client = app_with('[twilio-flex]\nmode = "in_call"\n')
    assert_flex_answer(post_flex(client, flex_task_event()), "accepted")
    row = stored_requests(runtime)["WT" + "a" * 32]
    assert (row.mode, row.state) == (SurveyMode.IN_CALL, RequestState.AWAITING_TRANSFER)


def test_receivers_default_to_the_callback(client, runtime, auth):
    body = post_event(client, CONNECT, connect_disconnected(), auth).get_json()
    row = stored_requests(runtime)[body["source_call_id"]]
    assert (row.mode, row.state) == (SurveyMode.CALLBACK, RequestState.SCHEDULED)


@pytest.mark.parametrize("value", ['"in-call"', "true", '""'])
def test_an_unknown_receiver_mode_stops_the_app_at_start(runtime, tmp_path, value):
    path = tmp_path / "receivers.toml"
    path.write_text(f"[genesys-cloud]\nmode = {value}\n")
    runtime.settings = runtime.settings.with_overrides(receivers_file=path)
    with pytest.raises(MappingError, match="mode must be one of callback, in_call"):
        create_app(runtime=runtime)
