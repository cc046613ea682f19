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

**The agent, and transfers.** Task events carry no worker (Twilio's event reference
lists no Worker fields for them); reservation events do. A Flex transfer, cold or warm,
to a worker or a queue, keeps the task and gives each agent a reservation of it, and
the task wraps up only when its last reservation does. So every accepted reservation
is kept as a leg of the task's conversation (dialer.receivers.conversations), and the
task's end (`task.completed` by default) makes one survey request, once every accepted
reservation has wrapped up: it rates the worker whose reservation wrapped up last
(the transferee in a cold or warm transfer, the first agent after a consult he stayed
through) and counts the delay from that wrap-up, when the call ended. Reservation events
arrive in any order and more than once; the same worker may hold two reservations.
docs/integrations.md lists the events the Workspace must send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
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
    field_map_from_toml,
    first,
    moment,
    names_setting,
    to_call,
)
from dialer.receivers.outcome import Platform

PLATFORM = Platform.TWILIO_FLEX.value

# Events after which a task's call is over (task events carry no worker).
SUPPORTED_EVENTS = frozenset({"task.completed", "task.wrapup"})
# Reservation events: a worker took the task, and when it wrapped up.
ACCEPTED = "reservation.accepted"
WRAPPED = frozenset({"reservation.wrapup", "reservation.completed"})
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


def call_after_event(
    runtime: Runtime, form: Mapping[str, str], receiver: FlexReceiver
) -> CallEnded:
    """The survey request a TaskRouter event completes: a reservation event is kept as a
    leg of its task, a task's end as the task's end, and the task is decided
    (`task_call`) with what is known. Raises what `dialer.receivers.outcome.receive`
    counts: ConversationOngoing, EventIgnored, InvalidEvent."""
    event_type = form.get("EventType", "")
    if not event_type:
        raise InvalidEvent("invalid_event", "no EventType: not a TaskRouter event callback", 400)
    if event_type == ACCEPTED or event_type in WRAPPED:
        _check_channel(form, receiver)
        leg = _reservation_leg(form, event_type)
    else:
        call = call_ended(form, receiver)
        leg = end_leg(PLATFORM, call, call.source_call_id)
    return task_call(leg.conversation_id, keep_leg(runtime, leg))


def task_call(task_sid: str, legs: list[Leg]) -> CallEnded:
    """The survey request a task makes once it ended and every accepted reservation has
    wrapped up; ConversationOngoing before that. A task that ended with no reservation
    known (a Workspace that sends no reservation events, or a task event that overtook
    them all) is surveyed without an agent, as before reservations were read."""
    end = next((leg for leg in legs if leg.is_end), None)
    if end is None:
        raise ConversationOngoing(task_sid, f"task {task_sid} has not ended yet")
    taken = [leg for leg in legs if not leg.is_end]
    open_ = [leg.leg_id for leg in taken if leg.after_contact_work_at is None]
    if open_:
        raise ConversationOngoing(task_sid, f"reservation {open_[0]} has not wrapped up yet")
    rated = rated_leg(taken)
    return CallEnded(
        phone=end.phone or "",
        source_call_id=task_sid,
        ended_at=(rated.after_contact_work_at if rated else None) or end.ended_at,
        agent=rated.agent if rated else None,
        queue=(rated.queue if rated else None) or end.queue,
        team=end.team,
        language=end.language or "en",
        survey=end.survey,
        metadata=end.call_metadata,
    )


def _reservation_leg(form: Mapping[str, str], event_type: str) -> Leg:
    task_sid, reservation_sid = form.get("TaskSid", ""), form.get("ReservationSid", "")
    if not task_sid or not reservation_sid:
        raise InvalidEvent("invalid_event", f"{event_type} without TaskSid or ReservationSid", 400)
    found = first(form, ("TimestampMs", "Timestamp"))
    if found is None:
        raise InvalidEvent("unmapped_field", f"{event_type} without Timestamp")
    at = moment(found[1], found[0])
    worker = (form.get("WorkerName") or "").strip()[:200] or None
    if worker is None:
        raise InvalidEvent("unmapped_field", f"{event_type} without WorkerName")
    wrapped = event_type in WRAPPED
    return Leg(
        platform=PLATFORM, conversation_id=task_sid[:256], leg_id=reservation_sid[:256],
        agent=worker, queue=(form.get("TaskQueueName") or "").strip()[:200] or None,
        agent_connected_at=None if wrapped else at,
        after_contact_work_at=at if wrapped else None,
        ended_at=at if wrapped else None, updated_at=at,
    )  # fmt: skip


def _check_channel(form: Mapping[str, str], receiver: FlexReceiver) -> None:
    channel = form.get("TaskChannelUniqueName", "")
    if receiver.channels and channel.lower() not in receiver.channels:
        raise EventIgnored(
            IgnoreReason.NOT_VOICE,
            f"task channel {channel or '(none)'!r} is not {', '.join(sorted(receiver.channels))}",
        )


def call_ended(form: Mapping[str, str], receiver: FlexReceiver) -> CallEnded:
    """The finished task a TaskRouter task event reports (its agent comes from the
    task's reservations), or why there is none."""
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
