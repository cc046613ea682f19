"""Twilio Flex: TaskRouter's event callback, one finished voice task at a time.

TaskRouter posts each event of a Workspace to its EventCallbackUrl, form-encoded, signed
with X-Twilio-Signature like any Twilio webhook, and wants an answer within 15 seconds
(twilio.com/docs/taskrouter/api/event/reference). The route checks the signature with
core.signature and always acknowledges what is signed, so this module only decides what
an event means: a finished voice task becomes a `CallEnded`; every other event type is
`EventIgnored`; a task whose attributes lack what the mapping looks for is an
`InvalidEvent`, which the route logs and acknowledges (TaskRouter sends the same
attributes again if it retries, so retrying cannot help).

TaskRouter's own fields (EventType, TaskSid, TaskChannelUniqueName, TaskQueueName,
Timestamp, TimestampMs, WorkerName on reservation events) are as Twilio documents them;
what is inside TaskAttributes depends on the Flex configuration. The defaults read the
attributes Flex sets on voice tasks (`from`, `to`, `direction`, `call_sid`); deployments
point them elsewhere in RECEIVERS_FILE.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from dialer.intake import CallEnded
from dialer.receivers.mapping import (
    EventIgnored,
    FieldMap,
    IgnoreReason,
    InvalidEvent,
    check_keys,
    field_map_from_toml,
    names_setting,
    to_call,
)

# Events after which a task's call is over. Task events carry no worker; reservation
# events carry WorkerName (the agent) with the task's fields.
SUPPORTED_EVENTS = frozenset(
    {"task.completed", "task.wrapup", "reservation.completed", "reservation.wrapup"}
)
DEFAULT_FIELDS = FieldMap(
    source_call_id=("TaskSid",),
    phone=("TaskAttributes.from",),
    # Flex's outbound calls: `from` is the contact center's own number.
    outbound_phone=("TaskAttributes.outbound_to", "TaskAttributes.to"),
    direction=("TaskAttributes.direction",),
    ended_at=("TimestampMs", "Timestamp"),
    agent=("WorkerName",),
    queue=("TaskQueueName",),
    metadata={"call_sid": "TaskAttributes.call_sid"},
)


@dataclass(frozen=True)
class FlexReceiver:
    """Which TaskRouter events become survey requests, and where their fields are."""

    events: frozenset[str] = frozenset({"task.completed"})
    # TaskChannelUniqueName values that are phone calls; empty: do not check.
    channels: frozenset[str] = frozenset({"voice"})
    fields: FieldMap = field(default_factory=lambda: DEFAULT_FIELDS)

    @classmethod
    def from_toml(cls, section: Mapping[str, Any], where: str) -> FlexReceiver:
        check_keys(section, frozenset({"events", "channels"}), where)
        defaults = cls()
        return cls(
            events=names_setting(section["events"], f"{where}.events", SUPPORTED_EVENTS)
            if "events" in section
            else defaults.events,
            channels=frozenset(
                name.lower() for name in names_setting(section["channels"], f"{where}.channels")
            )
            if "channels" in section
            else defaults.channels,
            fields=field_map_from_toml(DEFAULT_FIELDS, section, where),
        )


def auth_token(settings: Settings) -> str:
    """The token TaskRouter's callbacks are signed with: the Flex account's."""
    return settings.flex_auth_token or settings.twilio_auth_token


def call_ended(form: Mapping[str, str], receiver: FlexReceiver) -> CallEnded:
    """The finished call a TaskRouter event callback reports, or why there is none."""
    event_type = form.get("EventType", "")
    if not event_type:
        raise InvalidEvent("invalid_event", "no EventType: not a TaskRouter event callback", 400)
    if event_type not in receiver.events:
        raise EventIgnored(
            IgnoreReason.NOT_SELECTED,
            f"{event_type} is not one of {', '.join(sorted(receiver.events))}",
        )
    channel = form.get("TaskChannelUniqueName", "")
    if receiver.channels and channel.lower() not in receiver.channels:
        raise EventIgnored(
            IgnoreReason.NOT_VOICE,
            f"task channel {channel or '(none)'!r} is not {', '.join(sorted(receiver.channels))}",
        )
    event = {**form, "TaskAttributes": task_attributes(form.get("TaskAttributes", ""))}
    return to_call(event, receiver.fields)


def task_attributes(text: str) -> dict[str, Any]:
    """TaskAttributes, a JSON object in a form field; {} when absent."""
    if not text.strip():
        return {}
    try:
        attributes = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidEvent("invalid_event", "TaskAttributes is not JSON", 400) from None
    if not isinstance(attributes, dict):
        raise InvalidEvent("invalid_event", "TaskAttributes is not a JSON object", 400)
    return attributes
