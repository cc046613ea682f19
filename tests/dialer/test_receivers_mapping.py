"""dialer.receivers without Flask: what each platform's events map to, and the mapping file."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Settings
from dialer.receivers import amazon_connect, genesys_cloud, mapping_file, twilio_flex
from dialer.receivers.conversations import end_leg
from dialer.receivers.mapping import (
    EventIgnored,
    IgnoreReason,
    InvalidEvent,
    MappingError,
    address_number,
    arn_resource_id,
    find,
    moment,
)
from tests.dialer.receiver_events import (
    CONNECT_AGENT_ID,
    CONNECT_QUEUE_ID,
    ENDED_AT,
    GENESYS_QUEUE_ID,
    GENESYS_USER_ID,
    connect_as_in_aws_sample,
    connect_disconnected,
    flex_reservation_event,
    flex_task_event,
    genesys_acw,
    genesys_topic,
)

FLEX = twilio_flex.FlexReceiver()
CONNECT = amazon_connect.ConnectReceiver()
GENESYS = genesys_cloud.GenesysReceiver()
GENESYS_ACW_ONLY = genesys_cloud.GenesysReceiver(topics=frozenset({"acw"}))


def ignored(reason: IgnoreReason, map_event, *args) -> str:
    with pytest.raises(EventIgnored) as caught:
        map_event(*args)
    assert caught.value.reason is reason
    return caught.value.detail


def invalid(code: str, map_event, *args) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        map_event(*args)
    assert caught.value.code == code
    return caught.value


# -- shared mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T14:58:00.000Z", ENDED_AT),
        ("2026-11-23T09:58:00-05:00", ENDED_AT),
        (int(ENDED_AT.timestamp()), ENDED_AT),  # Unix seconds (TaskRouter's Timestamp)
        (str(int(ENDED_AT.timestamp())), ENDED_AT),
        (int(ENDED_AT.timestamp()) * 1000, ENDED_AT),  # milliseconds (Genesys eventTime)
        (f"{int(ENDED_AT.timestamp()) * 1000}", ENDED_AT),  # TaskRouter's TimestampMs
        (ENDED_AT.timestamp() + 0.5, datetime(2026, 11, 23, 14, 58, 0, 500000, tzinfo=UTC)),
    ],
)
def test_times_in_every_form_platforms_write_them(value, expected):
    assert moment(value, "t") == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("yesterday", "invalid_field"),
        ("2026-11-23T14:58:00", "invalid_field"),  # no offset
        ("0", "invalid_field"),  # 1970
        (10**30, "invalid_field"),
        (float("nan"), "invalid_field"),
        (True, "unmapped_field"),
        ({"seconds": 1}, "unmapped_field"),
    ],
)
def test_times_that_are_not_times_are_invalid(value, code):
    invalid(code, moment, value, "t")


@pytest.mark.parametrize(
    ("address", "number"),
    [
        ("tel:+14155550123", "+14155550123"),
        ("TEL:+14155550123", "+14155550123"),
        ("sip:+14155550123@carrier.example;user=phone", "+14155550123"),
        ("sips:+14155550123@carrier.example", "+14155550123"),
        ("+14155550123", "+14155550123"),
        (" +1 (415) 555-0123 ", "+1 (415) 555-0123"),
        ("client:alice", "client:alice"),  # not a number: intake says so
    ],
)
def test_telephone_addresses_become_numbers(address, number):
    assert address_number(address) == number


def test_arn_resource_ids():
    arn = f"arn:aws:connect:us-west-2:1:instance/i/agent/{CONNECT_AGENT_ID}"
    assert arn_resource_id(arn) == CONNECT_AGENT_ID
    assert arn_resource_id("alice") == "alice"


def test_paths_match_keys_in_any_case_and_index_lists():
    event = {"Detail": {"AgentInfo": {"AgentArn": "a"}}, "resources": ["x", "y"]}
    assert find(event, "detail.agentInfo.agentArn") == "a"
    assert find(event, "resources.1") == "y"
    assert find(event, "resources.2") is None
    assert find(event, "detail.agentInfo.agentArn.more") is None
    assert find({"a": ""}, "a") is None  # empty is missing


# -- Twilio Flex ------------------------------------------------------------------------


def test_a_completed_flex_voice_task_is_a_call():
    call = twilio_flex.call_ended(flex_task_event(), FLEX)
    assert call.phone == "+14155550123"
    assert call.source_call_id == "WT" + "a" * 32
    assert call.ended_at == ENDED_AT
    assert call.queue == "billing"
    assert call.agent is None  # task events carry no worker
    assert call.metadata == {"call_sid": "CA" + "b" * 32}


def test_the_task_rates_the_worker_whose_reservation_wrapped_up_last():
    # Reservations are legs of the task (the task events carry no worker): the rule
    # itself, on legs as the receiver keeps them.
    task = "WT" + "c" * 32
    end = end_leg(twilio_flex.PLATFORM, twilio_flex.call_ended(flex_task_event(task), FLEX), task)
    first = twilio_flex._reservation_leg(
        flex_reservation_event(task, WorkerName="alice", ReservationSid="WR1",
                               Timestamp="1795445000", TimestampMs=""),
        "reservation.wrapup",
    )  # fmt: skip
    last = twilio_flex._reservation_leg(
        flex_reservation_event(task, WorkerName="bob", ReservationSid="WR2",
                               Timestamp="1795445600", TimestampMs=""),
        "reservation.completed",
    )  # fmt: skip
    call = twilio_flex.task_call(task, [last, end, first])
    assert (call.agent, call.source_call_id, call.phone) == ("bob", task, "+14155550123")


def test_a_reservation_event_is_no_survey_trigger_of_its_own():
    with pytest.raises(MappingError):
        mapping_file.parse({"twilio-flex": {"events": ["reservation.completed"]}})


def test_an_outbound_flex_call_surveys_the_called_customer():
    attributes = {"from": "+18005550100", "to": "+14155550199", "direction": "outbound"}
    form = flex_task_event(TaskAttributes=json.dumps(attributes))
    assert twilio_flex.call_ended(form, FLEX).phone == "+14155550199"


@pytest.mark.parametrize(
    "event_type",
    ["task.created", "task.canceled", "reservation.accepted", "worker.activity.update",
     "task.wrapup"],
)  # fmt: skip
def test_other_flex_events_are_ignored(event_type):
    ignored(
        IgnoreReason.NOT_SELECTED,
        twilio_flex.call_ended,
        flex_task_event(event_type=event_type),
        FLEX,
    )


@pytest.mark.parametrize("channel", ["chat", "sms", "default", ""])
def test_flex_tasks_on_other_channels_are_ignored(channel):
    ignored(IgnoreReason.NOT_VOICE, twilio_flex.call_ended, flex_task_event(channel=channel), FLEX)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({}, "invalid_event"),
        (flex_task_event(TaskAttributes="{not json"), "invalid_event"),
        (flex_task_event(TaskAttributes="[1, 2]"), "invalid_event"),
        (flex_task_event(TaskAttributes="{}"), "unmapped_field"),  # no `from`
        (flex_task_event(TaskAttributes='{"from": {"number": "+14155550123"}}'), "unmapped_field"),
        (flex_task_event(TaskAttributes='{"from": "+1415555\\u00000123"}'), "invalid_field"),
        (flex_task_event(Timestamp="", TimestampMs=""), "unmapped_field"),
    ],
)
def test_flex_events_that_cannot_be_mapped_are_invalid(form, code):
    invalid(code, twilio_flex.call_ended, form, FLEX)


# -- Amazon Connect ---------------------------------------------------------------------


def test_a_disconnected_voice_contact_is_a_call():
    call = amazon_connect.call_ended(connect_disconnected(), CONNECT)
    assert call.phone == "+14155550123"
    assert call.source_call_id == "11111111-1111-1111-1111-111111111111"
    assert call.ended_at == ENDED_AT
    assert call.agent == CONNECT_AGENT_ID  # no name configured: the ARN's last part
    assert call.queue == CONNECT_QUEUE_ID
    assert call.metadata == {"initiation_method": "INBOUND"}


def test_the_spelling_of_aws_own_sample_is_understood():
    call = amazon_connect.call_ended(connect_as_in_aws_sample(), CONNECT)
    assert call.agent == CONNECT_AGENT_ID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventType": "CONNECTED_TO_AGENT"}, IgnoreReason.NOT_SELECTED),
        ({"eventType": "COMPLETED"}, IgnoreReason.NOT_SELECTED),  # not by default
        ({"channel": "CHAT"}, IgnoreReason.NOT_VOICE),
        ({"channel": "TASK"}, IgnoreReason.NOT_VOICE),
        ({"agentInfo": None}, IgnoreReason.NO_AGENT),  # abandoned in the queue
        ({"initiationMethod": "MONITOR"}, IgnoreReason.INITIATION_SKIPPED),
    ],
)
def test_connect_contacts_that_are_not_surveyed(change, reason):
    ignored(reason, amazon_connect.call_ended, connect_disconnected(**change), CONNECT)


def test_other_eventbridge_events_are_ignored():
    event = connect_disconnected()
    event["detail-type"] = "Amazon Connect Agent Event"
    ignored(IgnoreReason.OTHER_EVENT, amazon_connect.call_ended, event, CONNECT)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ([], "invalid_event"),
        ({"detail-type": "Amazon Connect Contact Event"}, "invalid_event"),
        ({"detail": "DISCONNECTED"}, "invalid_event"),
        (connect_disconnected(phone=None), "unmapped_field"),
        (connect_disconnected(contactId=None), "unmapped_field"),
        (connect_disconnected(contactId={"id": 1}), "unmapped_field"),
        (connect_disconnected(disconnectTimestamp="soon"), "invalid_field"),
    ],
)
def test_connect_events_that_cannot_be_mapped_are_invalid(event, code):
    error = invalid(code, amazon_connect.call_ended, event, CONNECT)
    assert error.status == (400 if code == "invalid_event" else 422)


def test_connect_without_a_disconnect_time_uses_the_event_time():
    call = amazon_connect.call_ended(connect_disconnected(disconnectTimestamp=None), CONNECT)
    assert call.ended_at == datetime(2026, 11, 23, 14, 58, 2, tzinfo=UTC)


def test_connect_mapping_overrides():
    receivers = mapping_file.parse(
        {
            "amazon-connect": {
                "events": ["disconnected", "COMPLETED"],
                "source_call_id": "detail.initialContactId",
                "phone": ["detail.attributes.customerNumber", "detail.customerEndpoint.address"],
                "survey": "post-call",
                "agents": {CONNECT_AGENT_ID: "alice"},
                "queues": {
                    f"arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-123456789012/queue/{CONNECT_QUEUE_ID}": "billing"
                },
                "metadata": {"contact": "detail.contactId"},
            }
        }
    )
    event = connect_disconnected(
        eventType="COMPLETED", attributes={"customerNumber": "+14155550177"}
    )
    call = amazon_connect.call_ended(event, receivers.amazon_connect)
    assert call.source_call_id == "11111111-2222-3333-4444-555555555555"
    assert call.phone == "+14155550177"
    assert (call.agent, call.queue, call.survey) == ("alice", "billing", "post-call")
    assert call.metadata == {"contact": "11111111-1111-1111-1111-111111111111"}


def test_connect_can_survey_contacts_without_an_agent_when_told():
    receivers = mapping_file.parse({"amazon-connect": {"require_agent": False}})
    call = amazon_connect.call_ended(connect_disconnected(agentInfo=None), receivers.amazon_connect)
    assert call.agent is None


# -- Genesys Cloud ----------------------------------------------------------------------


def test_an_after_call_work_event_is_a_call():
    call = genesys_cloud.call_ended(genesys_acw(), GENESYS)
    assert call.phone == "+14155550123"
    assert call.source_call_id == "5f7a3b2c-1d4e-4f6a-8b9c-0d1e2f3a4b5c"
    assert call.ended_at == ENDED_AT
    assert (call.agent, call.queue) == (GENESYS_USER_ID, GENESYS_QUEUE_ID)
    assert call.metadata == {"wrapup_code": "7fb334b0-0e9e-11e4-9191-0800200c9a66"}


def test_an_outbound_genesys_call_surveys_the_dialled_number():
    event = genesys_acw(direction="OUTBOUND", ani="tel:+18005550100", dnis="tel:+14155550188")
    assert genesys_cloud.call_ended(event, GENESYS).phone == "+14155550188"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (genesys_topic(genesys_acw(), "customer.end"), IgnoreReason.NOT_SELECTED),
        (genesys_topic(genesys_acw(), "acd.start"), IgnoreReason.NOT_SELECTED),
        (genesys_acw(mediaType="CHAT"), IgnoreReason.NOT_VOICE),
        (genesys_acw(mediaType="CALLBACK"), IgnoreReason.NOT_VOICE),
        (genesys_acw(userId=None), IgnoreReason.NO_AGENT),
    ],
)
def test_genesys_events_that_are_not_surveyed(event, reason):
    # The older rule (topics without customer.end): each listed event is a request.
    ignored(reason, genesys_cloud.call_ended, event, GENESYS_ACW_ONLY)


def test_other_genesys_topics_are_ignored():
    event = genesys_acw()
    event["detail"]["topicName"] = "v2.users.abc.presence"
    ignored(IgnoreReason.OTHER_EVENT, genesys_cloud.call_ended, event, GENESYS)


def test_customer_end_events_when_configured_without_an_agent():
    receivers = mapping_file.parse(
        {"genesys-cloud": {"topics": ["customer.end"], "require_agent": False,
                           "agents": {GENESYS_USER_ID: "alice"}}}
    )  # fmt: skip
    event = genesys_topic(genesys_acw(userId=None, queueId=None), "customer.end")
    call = genesys_cloud.call_ended(event, receivers.genesys_cloud)
    assert (call.phone, call.agent, call.queue) == ("+14155550123", None, None)
    named = genesys_cloud.call_ended(
        genesys_topic(genesys_acw(), "customer.end"), receivers.genesys_cloud
    )
    assert named.agent == "alice"


# -- the mapping file -------------------------------------------------------------------


def test_the_settings_come_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {"RECEIVERS_FILE": str(tmp_path / "r.toml"), "FLEX_AUTH_TOKEN": "flex-token",
         "TWILIO_AUTH_TOKEN": "voice-token"}
    )  # fmt: skip
    assert settings.receivers_file == tmp_path / "r.toml"
    assert twilio_flex.auth_token(settings) == "flex-token"
    assert twilio_flex.auth_token(Settings(twilio_auth_token="voice-token")) == "voice-token"
    assert Settings.from_env({}).receivers_file is None


def test_no_file_means_the_defaults(tmp_path):
    assert mapping_file.load(None) == mapping_file.Receivers()
    empty = tmp_path / "receivers.toml"
    empty.write_text("")
    assert mapping_file.load(empty) == mapping_file.Receivers()


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text(
        '[twilio-flex]\nphone = "TaskAttributes.customer.phone"\nchannels = ["Voice"]\n'
        '[genesys-cloud.queues]\n"q-1" = "billing"\n'
    )
    receivers = mapping_file.load(path)
    assert receivers.twilio_flex.fields.phone == ("TaskAttributes.customer.phone",)
    assert receivers.twilio_flex.channels == {"voice"}
    assert receivers.twilio_flex.fields.queue == ("TaskQueueName",)
    assert receivers.genesys_cloud.fields.queues == {"q-1": "billing"}
    assert receivers.amazon_connect == amazon_connect.ConnectReceiver()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[twillio-flex]\n", "twillio-flex"),
        ("[twilio-flex]\nphones = 'from'\n", "phones"),
        ("[twilio-flex]\nevents = ['task.created']\n", "task.created"),
        ("[twilio-flex]\nevents = 'task.completed'\n", "events"),
        ("[twilio-flex]\nphone = 3\n", "phone"),
        ("[twilio-flex]\nphone = ['TaskAttributes..from']\n", "TaskAttributes..from"),
        ("[amazon-connect]\nevents = ['QUEUED']\n", "QUEUED"),
        ("[amazon-connect]\nrequire_agent = 'yes'\n", "require_agent"),
        ("[amazon-connect.agents]\nabc = 1\n", "agents"),
        ("[genesys-cloud]\ntopics = ['acd.end']\n", "acd.end"),
        ("[genesys-cloud]\nsurvey = ''\n", "survey"),
        ("twilio-flex = 1\n", "twilio-flex"),
        ("[twilio-flex\n", "not valid TOML"),
    ],
)
def test_mistakes_in_the_file_are_named(tmp_path, text, names):
    path = tmp_path / "receivers.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=names.replace(".", r"\.").replace("[", r"\[")):
        mapping_file.load(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(MappingError, match="cannot be read"):
        mapping_file.load(tmp_path / "nope.toml")


# -- anything at all --------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
OUTCOMES = (EventIgnored, InvalidEvent)


def mutated(base: dict, data) -> dict:
    """`base` with some of its detail's (or eventBody's) values replaced by anything."""
    event = json.loads(json.dumps(base))
    target = event["detail"].get("eventBody", event["detail"])
    for key in data.draw(st.lists(st.sampled_from(sorted(target)), max_size=4)):
        target[key] = data.draw(JSON)
    return event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_eventbridge_event_maps_or_says_why_not(data):
    base = data.draw(st.sampled_from([connect_disconnected(), genesys_acw()]))
    event = mutated(base, data) if data.draw(st.booleans()) else data.draw(JSON)
    for map_event, receiver in ((amazon_connect.call_ended, CONNECT),
                                (genesys_cloud.call_ended, GENESYS)):  # fmt: skip
        try:
            call = map_event(event, receiver)
        except OUTCOMES:
            continue
        assert call.phone and call.source_call_id and call.ended_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(flex_task_event())) | st.text(max_size=10),
        st.text(max_size=40) | JSON.map(json.dumps),
        max_size=5,
    )
)
def test_any_flex_form_maps_or_says_why_not(changes):
    try:
        call = twilio_flex.call_ended(flex_task_event() | changes, FLEX)
    except OUTCOMES:
        return
    assert call.phone and call.source_call_id and call.ended_at.tzinfo is not None


def test_the_example_file_in_the_docs_is_valid():
    text = (Path(__file__).parents[2] / "docs" / "integrations.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    receivers = mapping_file.parse(tomllib.loads(example))
    assert receivers.amazon_connect.fields.agents == {CONNECT_AGENT_ID: "alice"}
    assert receivers.twilio_flex.fields.metadata == {"ticket": "TaskAttributes.crm.ticket_id"}
