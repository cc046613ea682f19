"""Amazon Connect: contact events from Amazon EventBridge, one ended voice contact each.

An EventBridge rule on "Amazon Connect Contact Event" with an API destination as its
target posts each event as JSON, with aftercall's API key in the Authorization header
(the destination's connection). Field names follow AWS's contact events data model
(docs.aws.amazon.com/connect/latest/adminguide/contact-events.html): `detail.eventType`,
`contactId`, `initialContactId`, `channel`, `initiationMethod`, `disconnectTimestamp`,
`agentInfo.agentArn`, `queueInfo.queueArn`. Paths match keys in any case, since AWS's own
samples write `AgentInfo.AgentArn` and `"channel": "Voice"`.

The customer's number is not among the fields AWS documents for contact events; the
default looks at `detail.customerEndpoint.address` (the Contact API's name for it) and a
deployment points `phone` wherever its events carry the number. An event without it is
an `InvalidEvent` (422), so a missing mapping is loud rather than silently surveyless.
Agents and queues arrive as ARNs: reports show the names RECEIVERS_FILE gives them, else
the ARN's last part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.intake import CallEnded
from dialer.receivers.mapping import (
    EventIgnored,
    FieldMap,
    IgnoreReason,
    check_keys,
    eventbridge_detail,
    field_map_from_toml,
    find,
    first,
    flag_setting,
    to_call,
    upper_names_setting,
)

DETAIL_TYPE = "Amazon Connect Contact Event"
# DISCONNECTED: the call ended; COMPLETED: after contact work too. Others are earlier.
SUPPORTED_EVENTS = frozenset({"DISCONNECTED", "COMPLETED"})
DEFAULT_FIELDS = FieldMap(
    source_call_id=("detail.contactId",),
    phone=("detail.customerEndpoint.address",),
    ended_at=("detail.disconnectTimestamp", "time"),
    agent=("detail.agentInfo.agentArn",),
    queue=("detail.queueInfo.queueArn",),
    metadata={"initiation_method": "detail.initiationMethod"},
)


@dataclass(frozen=True)
class ConnectReceiver:
    """Which contact events become survey requests, and where their fields are."""

    events: frozenset[str] = frozenset({"DISCONNECTED"})
    channels: frozenset[str] = frozenset({"VOICE"})
    # Contacts no agent took (abandoned in the queue or the flow) have no agent to rate.
    require_agent: bool = True
    # A supervisor listening in is a contact of its own, not a customer's call.
    skip_initiation_methods: frozenset[str] = frozenset({"MONITOR"})
    fields: FieldMap = field(default_factory=lambda: DEFAULT_FIELDS)

    @classmethod
    def from_toml(cls, section: Mapping[str, Any], where: str) -> ConnectReceiver:
        own = frozenset({"events", "channels", "require_agent", "skip_initiation_methods"})
        check_keys(section, own, where)
        defaults = cls()
        return cls(
            events=upper_names_setting(section, "events", defaults.events, where, SUPPORTED_EVENTS),
            channels=upper_names_setting(section, "channels", defaults.channels, where),
            require_agent=flag_setting(section["require_agent"], f"{where}.require_agent")
            if "require_agent" in section
            else defaults.require_agent,
            skip_initiation_methods=upper_names_setting(
                section, "skip_initiation_methods", defaults.skip_initiation_methods, where
            ),
            fields=field_map_from_toml(DEFAULT_FIELDS, section, where),
        )


def call_ended(event: Any, receiver: ConnectReceiver) -> CallEnded:
    """The ended contact an EventBridge event reports, or why there is none."""
    detail = eventbridge_detail(event)
    if event.get("detail-type") != DETAIL_TYPE:
        raise EventIgnored(
            IgnoreReason.OTHER_EVENT,
            f"detail-type {event.get('detail-type')!r} is not {DETAIL_TYPE!r}",
        )
    event_type = _upper(find(detail, "eventType"))
    if event_type not in receiver.events:
        raise EventIgnored(
            IgnoreReason.NOT_SELECTED,
            f"eventType {event_type or '(none)'} is not one of {', '.join(sorted(receiver.events))}",
        )
    channel = _upper(find(detail, "channel"))
    if receiver.channels and channel not in receiver.channels:
        raise EventIgnored(IgnoreReason.NOT_VOICE, f"channel {channel or '(none)'} is not voice")
    method = _upper(find(detail, "initiationMethod"))
    if method in receiver.skip_initiation_methods:
        raise EventIgnored(IgnoreReason.INITIATION_SKIPPED, f"initiationMethod {method}")
    if receiver.require_agent and first(event, receiver.fields.agent) is None:
        raise EventIgnored(IgnoreReason.NO_AGENT, "no agent took the contact")
    return to_call(event, receiver.fields)


def _upper(value: Any) -> str:
    return value.upper() if isinstance(value, str) else ""
