"""Genesys Cloud: analytics detail events from the Amazon EventBridge integration.

Genesys Cloud's EventBridge integration puts each notification on a partner event bus;
a rule with an API destination target posts it here as JSON, with aftercall's API key in
the Authorization header. The event's `detail` holds `topicName`
("v2.detail.events.conversation.<conversation id>.acw") and `eventBody`, the detail
event itself. Its fields (eventTime in Unix milliseconds, conversationId, mediaType,
direction, ani, dnis, userId, queueId, wrapupCode) are those of Genesys's
AfterCallWorkEvent, UserEndEvent and CustomerEndEvent models in its platform API
clients.

**One survey per conversation, after the customer's end, rating the last agent.** A
transferred conversation has an agent participant per agent: each sends `user.end`
(with `disconnectType`: `TRANSFER`, `CONSULT_TRANSFER`, ... when the agent handed the
customer on) and `acw` (the wrap-up, naming `userId` and `queueId`). Only `customer.end`
says the customer's conversation is over, and it names no agent. So by default
(`topics` = customer.end, user.end, acw) every agent participant's events are kept as a
leg of the conversation (dialer.receivers.conversations), and `customer.end` makes one
survey request rating the agent whose leg ended last among those who did not hand the
customer on. Events arrive in any order: while every agent known so far handed the
customer on, the last agent's events are still to come, and the survey waits for them.
A deployment that lists topics without `customer.end` keeps the older rule: each listed
event is a survey request of its own, the conversation's first one winning.

ANI and DNIS are URIs ("tel:+14155550123"); the customer's number is the ANI of an
inbound call and the DNIS of an outbound one. User and queue ids are shown in reports as
the names RECEIVERS_FILE gives them, else as the ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.runtime import Runtime
from dialer.intake import CallEnded
from dialer.receivers.conversations import (
    ConversationOngoing,
    Leg,
    end_leg,
    keep_leg,
    rated_leg,
)
from dialer.receivers.mapping import (
    EventIgnored,
    FieldMap,
    IgnoreReason,
    InvalidEvent,
    check_keys,
    display_name,
    eventbridge_detail,
    field_map_from_toml,
    find,
    first,
    flag_setting,
    metadata_of,
    moment,
    names_setting,
    to_call,
    upper_names_setting,
)
from dialer.receivers.outcome import Platform

TOPIC_PREFIX = "v2.detail.events.conversation."
# Detail events after which the call is over for the customer or the agent.
SUPPORTED_TOPICS = frozenset({"acw", "user.end", "customer.end"})
CUSTOMER_END = "customer.end"
AGENT_TOPICS = frozenset({"acw", "user.end"})
PLATFORM = Platform.GENESYS_CLOUD.value
# disconnectType values of a participant that handed the customer on (Genesys's
# UserEndEvent model); the agent the customer went to sends events of its own.
TRANSFERS = frozenset(
    {"TRANSFER", "CONFERENCE_TRANSFER", "CONSULT_TRANSFER", "FORWARD_TRANSFER",
     "NO_ANSWER_TRANSFER", "NOT_AVAILABLE_TRANSFER", "DND_TRANSFER"}
)  # fmt: skip

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

    topics: frozenset[str] = SUPPORTED_TOPICS
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


def call_after_event(runtime: Runtime, event: Any, receiver: GenesysReceiver) -> CallEnded:
    """The survey request a detail event completes (see the module's docstring); raises
    what dialer.receivers.outcome.receive counts."""
    if CUSTOMER_END not in receiver.topics:
        return call_ended(event, receiver)
    suffix = _selected_topic(event, receiver)
    _check_media(event, receiver)
    body = eventbridge_detail(event).get("eventBody")
    conversation_id = find(event, "detail.eventBody.conversationId")
    if not isinstance(body, Mapping) or not isinstance(conversation_id, str):
        raise InvalidEvent("invalid_event", "no detail.eventBody.conversationId", 400)
    if suffix == CUSTOMER_END:
        leg = _customer_end_leg(event, receiver)
    else:
        leg = _agent_leg(event, receiver, suffix, conversation_id[:256])
    legs = keep_leg(runtime, leg)
    return conversation_call(leg.conversation_id, legs, require_agent=receiver.require_agent)


def conversation_call(conversation_id: str, legs: list[Leg], *, require_agent: bool) -> CallEnded:
    """The survey request of a conversation whose customer has ended; ConversationOngoing
    while the customer has not, or while every agent known handed the customer on."""
    end = next((leg for leg in legs if leg.is_end), None)
    if end is None:
        raise ConversationOngoing(conversation_id, "the customer has not ended yet")
    agents = [leg for leg in legs if not leg.is_end]
    kept = [leg for leg in agents if leg.transfer_completed_at is None]
    if agents and not kept:
        raise ConversationOngoing(
            conversation_id, "the agent the customer was handed to is not in yet"
        )
    rated = rated_leg(kept)
    if rated is None and require_agent:
        raise EventIgnored(IgnoreReason.NO_AGENT, "no agent took the conversation")
    return CallEnded(
        phone=end.phone or "",
        source_call_id=conversation_id,
        ended_at=end.ended_at or (rated.ended_at if rated else None),
        agent=rated.agent if rated else None,
        queue=(rated.queue if rated else None) or end.queue,
        team=end.team,
        language=end.language or "en",
        survey=end.survey,
        metadata={**end.call_metadata, **(rated.call_metadata if rated else {})},
    )


def _selected_topic(event: Any, receiver: GenesysReceiver) -> str:
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
    return suffix


def _check_media(event: Any, receiver: GenesysReceiver) -> None:
    media = find(eventbridge_detail(event), "eventBody.mediaType")
    media = media.upper() if isinstance(media, str) else ""
    if receiver.media_types and media not in receiver.media_types:
        raise EventIgnored(IgnoreReason.NOT_VOICE, f"mediaType {media or '(none)'} is not voice")


def call_ended(event: Any, receiver: GenesysReceiver) -> CallEnded:
    """The older rule: the listed event itself is the survey request."""
    _selected_topic(event, receiver)
    _check_media(event, receiver)
    if receiver.require_agent and first(event, receiver.fields.agent) is None:
        raise EventIgnored(IgnoreReason.NO_AGENT, "no agent in the event")
    return to_call(event, receiver.fields)


def _customer_end_leg(event: Any, receiver: GenesysReceiver) -> Leg:
    call = to_call(event, replace(receiver.fields, agent=(), queue=()))
    return end_leg(PLATFORM, call, f"{call.source_call_id}:customer")


def _agent_leg(event: Any, receiver: GenesysReceiver, suffix: str, conversation_id: str) -> Leg:
    agent = display_name(event, receiver.fields.agent, receiver.fields.agents)
    if agent is None:
        raise EventIgnored(IgnoreReason.NO_AGENT, f"{suffix} names no agent")
    participant = find(event, "detail.eventBody.participantId") or agent
    found = first(event, receiver.fields.ended_at)
    if found is None:
        raise InvalidEvent("unmapped_field", f"{suffix} without eventTime")
    at = moment(found[1], found[0])
    disconnect = find(event, "detail.eventBody.disconnectType")
    handed_on = (
        suffix == "user.end" and isinstance(disconnect, str) and disconnect.upper() in TRANSFERS
    )
    metadata = metadata_of(event, receiver.fields.metadata) if suffix == "acw" else {}
    return Leg(
        platform=PLATFORM, conversation_id=conversation_id,
        leg_id=f"{conversation_id}:{participant}"[:256], agent=agent,
        queue=display_name(event, receiver.fields.queue, receiver.fields.queues),
        agent_connected_at=at, after_contact_work_at=at if suffix == "acw" else None,
        transfer_completed_at=at if handed_on else None,
        ended_at=at if suffix == "user.end" else None, updated_at=at, call_metadata=metadata,
    )  # fmt: skip
