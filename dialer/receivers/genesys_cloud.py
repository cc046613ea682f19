"""Genesys Cloud: analytics detail events from the Amazon EventBridge integration.

Genesys Cloud's EventBridge integration puts each notification on a partner event bus;
a rule with an API destination target posts it here as JSON, with aftercall's API key in
the Authorization header. The event's `detail` holds `topicName`
("v2.detail.events.conversation.<conversation id>.acw") and `eventBody`, the detail
event itself. Its fields (eventTime in Unix milliseconds, conversationId, mediaType,
direction, ani, dnis, userId, queueId, wrapupCode) are those of Genesys's
AfterCallWorkEvent, UserEndEvent and CustomerEndEvent models in its platform API
clients.

The default topic is `acw`: the agent finished wrap-up, so the event names the agent
(`userId`) and the queue; `customer.end` carries neither, so with it `require_agent`
must be turned off. ANI and DNIS are URIs ("tel:+14155550123"); the customer's number is
the ANI of an inbound call and the DNIS of an outbound one. User and queue ids are
shown in reports as the names RECEIVERS_FILE gives them, else as the ids.
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
    names_setting,
    to_call,
    upper_names_setting,
)

TOPIC_PREFIX = "v2.detail.events.conversation."
# Detail events after which the call is over for the customer or the agent.
SUPPORTED_TOPICS = frozenset({"acw", "user.end", "customer.end"})
DEFAULT_FIELDS = FieldMap(
    source_call_id=("detail.eventBody.conversationId",),
    phone=("detail.eventBody.ani",),
    outbound_phone=("detail.eventBody.dnis",),
    direction=("detail.eventBody.direction",),
    ended_at=("detail.eventBody.eventTime", "time"),
    agent=("detail.eventBody.userId",),
    queue=("detail.eventBody.queueId",),
    metadata={"wrapup_code": "detail.eventBody.wrapupCode"},
)


@dataclass(frozen=True)
class GenesysReceiver:
    """Which detail events become survey requests, and where their fields are."""

    topics: frozenset[str] = frozenset({"acw"})
    media_types: frozenset[str] = frozenset({"VOICE"})
    require_agent: bool = True
    fields: FieldMap = field(default_factory=lambda: DEFAULT_FIELDS)

    @classmethod
    def from_toml(cls, section: Mapping[str, Any], where: str) -> GenesysReceiver:
        check_keys(section, frozenset({"topics", "media_types", "require_agent"}), where)
        defaults = cls()
        return cls(
            topics=names_setting(section["topics"], f"{where}.topics", SUPPORTED_TOPICS)
            if "topics" in section
            else defaults.topics,
            media_types=upper_names_setting(section, "media_types", defaults.media_types, where),
            require_agent=flag_setting(section["require_agent"], f"{where}.require_agent")
            if "require_agent" in section
            else defaults.require_agent,
            fields=field_map_from_toml(DEFAULT_FIELDS, section, where),
        )


def call_ended(event: Any, receiver: GenesysReceiver) -> CallEnded:
    """The ended conversation a Genesys Cloud detail event reports, or why there is none."""
    detail = eventbridge_detail(event)
    topic = find(detail, "topicName") or event.get("detail-type")
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX):
        raise EventIgnored(
            IgnoreReason.OTHER_EVENT, f"topic {topic!r} is not a conversation detail event"
        )
    # "<conversation id>.acw" or "{id}.customer.end": what follows the id names the event.
    suffix = topic.removeprefix(TOPIC_PREFIX).partition(".")[2]
    if suffix not in receiver.topics:
        raise EventIgnored(
            IgnoreReason.NOT_SELECTED,
            f"{suffix or topic} is not one of {', '.join(sorted(receiver.topics))}",
        )
    media = find(detail, "eventBody.mediaType")
    media = media.upper() if isinstance(media, str) else ""
    if receiver.media_types and media not in receiver.media_types:
        raise EventIgnored(IgnoreReason.NOT_VOICE, f"mediaType {media or '(none)'} is not voice")
    if receiver.require_agent and first(event, receiver.fields.agent) is None:
        raise EventIgnored(IgnoreReason.NO_AGENT, "no agent in the event")
    return to_call(event, receiver.fields)
