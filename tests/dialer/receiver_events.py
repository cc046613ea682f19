"""Sample events as each platform sends them, after the platforms' documentation.

- Twilio Flex: TaskRouter's event callback parameters
  (twilio.com/docs/taskrouter/api/event/reference: EventType, AccountSid, WorkspaceSid,
  WorkspaceName, EventDescription, ResourceType, ResourceSid, Timestamp, TimestampMs, and
  the task's fields), with the TaskAttributes Flex puts on an inbound voice task.
- Amazon Connect: the "voice call disconnected" sample of AWS's contact events page
  (docs.aws.amazon.com/connect/latest/adminguide/contact-events.html), with the
  customer's number added at detail.customerEndpoint.address, where the receiver looks
  by default: AWS's sample does not carry it.
- Genesys Cloud: an AfterCallWorkEvent (fields of Genesys's platform API client model
  AcwDetailEventTopicAfterCallWorkEvent) in the envelope of the Amazon EventBridge
  integration (detail.topicName, detail.eventBody).

Times are two minutes before the API tests' pinned clock (tests.api.conftest.NOW).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

ENDED_AT = datetime(2026, 11, 23, 14, 58, tzinfo=UTC)
ENDED_EPOCH = int(ENDED_AT.timestamp())
ACCOUNT_SID = "AC" + "0" * 32
WORKSPACE_SID = "WS" + "1" * 32
CONNECT_INSTANCE = (
    "arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-123456789012"
)
CONNECT_AGENT_ID = "8d8a7b0c-2f6e-4c1e-9a57-0f3bcb1d9d11"
CONNECT_QUEUE_ID = "5e9c1c40-6b6a-4f8e-8c35-1c1f0c3b2a77"
GENESYS_USER_ID = "0b0e4f6a-7c1d-4a7e-9f2b-3d5c6e7f8a90"
GENESYS_QUEUE_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def flex_task_event(
    task_sid: str = "WT" + "a" * 32,
    phone: str = "+14155550123",
    event_type: str = "task.completed",
    channel: str = "voice",
    **overrides: str,
) -> dict[str, str]:
    """A TaskRouter event callback's form for a finished inbound Flex voice task."""
    attributes = {
        "from": phone,
        "to": "+18005550100",
        "direction": "inbound",
        "call_sid": "CA" + "b" * 32,
        "account_sid": ACCOUNT_SID,
        "caller": phone,
        "called": "+18005550100",
        "channelType": "voice",
        "type": "inbound",
        "conversations": {"conversation_id": task_sid},
    }
    form = {
        "EventType": event_type,
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": WORKSPACE_SID,
        "WorkspaceName": "Flex Task Assignment",
        "EventDescription": f"Task {task_sid} completed",
        "ResourceType": "Task",
        "ResourceSid": task_sid,
        "Timestamp": str(ENDED_EPOCH),
        "TimestampMs": str(ENDED_EPOCH * 1000),
        "TaskSid": task_sid,
        "TaskAttributes": json.dumps(attributes),
        "TaskAge": "312",
        "TaskPriority": "0",
        "TaskAssignmentStatus": "completed",
        "TaskCompletedReason": "Task completed",
        "TaskQueueSid": "WQ" + "2" * 32,
        "TaskQueueName": "billing",
        "TaskChannelSid": "TC" + "3" * 32,
        "TaskChannelUniqueName": channel,
        "WorkflowSid": "WW" + "4" * 32,
        "WorkflowName": "Assign to Anyone",
    }
    return form | overrides


def flex_reservation_event(task_sid: str = "WT" + "c" * 32, **overrides: str) -> dict[str, str]:
    """reservation.completed: the task's fields plus the worker who handled it."""
    form = flex_task_event(task_sid, event_type="reservation.completed")
    form.update(
        ResourceType="Reservation",
        ResourceSid="WR" + "5" * 32,
        ReservationSid="WR" + "5" * 32,
        WorkerSid="WK" + "6" * 32,
        WorkerName="alice",
        WorkerAttributes=json.dumps({"full_name": "Alice Example", "team_name": "north"}),
    )
    return form | overrides


def connect_disconnected(
    contact_id: str = "11111111-1111-1111-1111-111111111111",
    phone: str | None = "+14155550123",
    **detail: Any,
) -> dict[str, Any]:
    """An EventBridge "Amazon Connect Contact Event" for an inbound voice call that ended."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "abcabcab-abca-abca-abca-abcabcabcabc",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "111122223333",
        "time": "2026-11-23T14:58:02Z",
        "region": "us-west-2",
        "resources": [f"{CONNECT_INSTANCE}/contact/{contact_id}", CONNECT_INSTANCE],
        "detail": {
            "eventType": "DISCONNECTED",
            "contactId": contact_id,
            "initialContactId": "11111111-2222-3333-4444-555555555555",
            "previousContactId": "11111111-2222-3333-4444-555555555555",
            "channel": "VOICE",
            "instanceArn": CONNECT_INSTANCE,
            "initiationMethod": "INBOUND",
            "initiationTimestamp": "2026-11-23T14:49:53.000Z",
            "connectedToSystemTimestamp": "2026-11-23T14:49:55.000Z",
            "disconnectTimestamp": "2026-11-23T14:58:00.000Z",
            "queueInfo": {
                "queueArn": f"{CONNECT_INSTANCE}/queue/{CONNECT_QUEUE_ID}",
                "queueType": "STANDARD",
                "enqueueTimestamp": "2026-11-23T14:50:04.000Z",
            },
            "agentInfo": {
                "agentArn": f"{CONNECT_INSTANCE}/agent/{CONNECT_AGENT_ID}",
                "connectedToAgentTimestamp": "2026-11-23T14:50:09.000Z",
            },
            "tags": {"aws:connect:instanceId": "12345678-1234-1234-1234-123456789012"},
        },
    }
    if phone is not None:
        event["detail"]["customerEndpoint"] = {"address": phone, "type": "TELEPHONE_NUMBER"}
    event["detail"].update(detail)
    return event


def connect_as_in_aws_sample(contact_id: str = "22222222-2222-2222-2222-222222222222") -> dict:
    """The spelling of AWS's own sample: `AgentInfo.AgentArn`, `"channel": "Voice"`."""
    event = connect_disconnected(contact_id, phone="+14155550124")
    detail = event["detail"]
    detail["channel"] = "Voice"
    agent = detail.pop("agentInfo")
    detail["AgentInfo"] = {
        "AgentArn": agent["agentArn"],
        "connectedToAgentTimestamp": agent["connectedToAgentTimestamp"],
    }
    return event


def genesys_acw(
    conversation_id: str = "5f7a3b2c-1d4e-4f6a-8b9c-0d1e2f3a4b5c",
    ani: str = "tel:+14155550123",
    **body: Any,
) -> dict[str, Any]:
    """An AfterCallWorkEvent from Genesys Cloud's EventBridge integration."""
    event_body = {
        "eventTime": ENDED_EPOCH * 1000,
        "conversationId": conversation_id,
        "participantId": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "sessionId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "mediaType": "VOICE",
        "provider": "Edge",
        "direction": "INBOUND",
        "ani": ani,
        "dnis": "tel:+18005550100",
        "addressTo": "tel:+18005550100",
        "addressFrom": ani,
        "userId": GENESYS_USER_ID,
        "queueId": GENESYS_QUEUE_ID,
        "wrapupCode": "7fb334b0-0e9e-11e4-9191-0800200c9a66",
        "wrapupNotes": "",
        "wrapupDurationMs": 14000,
    }
    event_body.update(body)
    return {
        "version": "0",
        "id": "c3f5d8e2-7a1b-4c9d-8e2f-1a3b5c7d9e0f",
        "detail-type": "v2.detail.events.conversation.{id}.acw",
        "source": "aws.partner/genesys.com/cloud/00000000-0000-0000-0000-000000000000/aftercall",
        "account": "111122223333",
        "time": "2026-11-23T14:58:14Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": f"v2.detail.events.conversation.{conversation_id}.acw",
            "version": "2",
            "eventBody": event_body,
            "metadata": {"CorrelationId": "4d1c7a9e-2b3f-4e5a-8c6d-7e8f9a0b1c2d"},
            "timestamp": "2026-11-23T14:58:14.125Z",
        },
    }


def genesys_topic(event: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The same event under another detail-event topic (customer.end, user.end, ...)."""
    event = copy.deepcopy(event)
    conversation = event["detail"]["eventBody"]["conversationId"]
    event["detail"]["topicName"] = f"v2.detail.events.conversation.{conversation}.{suffix}"
    event["detail-type"] = f"v2.detail.events.conversation.{{id}}.{suffix}"
    return event
