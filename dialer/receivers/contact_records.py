"""Amazon Connect contact records (CTRs): one leg of a customer's conversation each.

Connect streams a contact record per contact through Kinesis. Amazon Data Firehose
delivers them to aftercall's HTTP endpoint (aftercall.web.firehose): one record
per Firehose record, compact JSON, sometimes followed by a newline. Unlike contact
events, the record carries what a survey needs: the customer's number
(`CustomerEndpoint.Address`), the agent's name (`Agent.Username`), the queue
(`Queue.Name`), when the leg ended (`DisconnectTimestamp`), and how the legs of a
transferred call link up (`InitialContactId`, `PreviousContactId`, `NextContactId`).
Field names follow AWS's contact record data model
(docs.aws.amazon.com/connect/latest/adminguide/ctr-data-model.html). Keys are matched
in any case, and an unset member may be JSON null or missing.

This module only reads one record into a `Leg`, or says why it is no leg of a survey.
Which leg ends the conversation and whom the survey rates is decided in
dialer.receivers.conversations, once every leg is in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from core.models import SurveyMode
from core.runtime import Runtime
from dialer.intake import CallEnded
from dialer.receivers.conversations import (
    THIRD_PARTY_METHODS,
    ConversationOngoing,
    Leg,
    keep_leg,
    rated_leg,
)
from dialer.receivers.mapping import (
    EventIgnored,
    IgnoreReason,
    InvalidEvent,
    address_number,
    arn_resource_id,
    find,
    moment,
)
from dialer.receivers.outcome import EventOutcome, Platform, receive

PLATFORM = Platform.AMAZON_CONNECT.value
SURVEYED_CHANNELS = frozenset({"VOICE"})
# A supervisor listening in is a contact of its own, not a leg of the customer's call.
SKIPPED_METHODS = frozenset({"MONITOR"})
_HIERARCHY_LEVELS = ("Level5", "Level4", "Level3", "Level2", "Level1")
_MAX_ID = 256


def receive_record(
    runtime: Runtime,
    data: bytes,
    api_key_id: int | None,
    mode: SurveyMode = SurveyMode.CALLBACK,
) -> list[EventOutcome]:
    """What became of one Firehose record's contact records: each leg kept, and a survey
    request made when it completed its conversation. Never raises for the record's
    content; a database failure propagates (Firehose then delivers the batch again)."""
    try:
        documents = records_in(data)
    except InvalidEvent as exc:
        return [receive(runtime, Platform.AMAZON_CONNECT, _raise(exc), api_key_id)]
    return [
        receive(
            runtime,
            Platform.AMAZON_CONNECT,
            _conversation_of(runtime, document),
            api_key_id,
            mode=mode,
        )
        for document in documents
    ]


def _conversation_of(runtime: Runtime, record: Any) -> Callable[[], CallEnded]:
    def to_call() -> CallEnded:
        leg = leg_of(record)
        return conversation_call(leg.conversation_id, keep_leg(runtime, leg))

    return to_call


def _raise(exc: Exception) -> Callable[[], CallEnded]:
    def to_call() -> CallEnded:
        raise exc

    return to_call


def conversation_call(conversation_id: str, legs: Iterable[Leg]) -> CallEnded:
    """The survey request a Connect conversation makes once complete: its first leg is
    in and every leg's next leg is in (ConversationOngoing before), ended at its latest
    leg's end (a handed-on leg's DisconnectTimestamp is when it was handed on), calling
    the first leg's customer number (an external leg's endpoint is a third party's).
    EventIgnored when no agent talked to the customer (abandoned)."""
    by_id = {leg.leg_id: leg for leg in legs}
    first = by_id.get(conversation_id)
    if first is None:
        raise ConversationOngoing(conversation_id, f"its first leg {conversation_id} is not in")
    for leg in by_id.values():
        if leg.next_leg_id is not None and leg.next_leg_id not in by_id:
            raise ConversationOngoing(
                conversation_id, f"leg {leg.leg_id} went on to {leg.next_leg_id}, not in yet"
            )
    rated = rated_leg(by_id.values())
    if rated is None:
        raise EventIgnored(IgnoreReason.NO_AGENT, f"no agent took conversation {conversation_id}")
    phone = first.phone if first.initiation_method not in THIRD_PARTY_METHODS else None
    ended = [leg.ended_at for leg in by_id.values() if leg.ended_at is not None]
    return CallEnded(
        phone=phone or rated.phone or "",
        source_call_id=conversation_id,
        ended_at=max(ended) if ended else (rated.after_contact_work_at or rated.agent_connected_at),
        agent=rated.agent,
        queue=rated.queue,
        team=rated.team,
        language=first.language or rated.language or "en",
        metadata={
            "contact_id": rated.leg_id,
            "legs": len(by_id),
            "initiation_method": first.initiation_method or "",
        },
    )


def records_in(data: bytes) -> list[Any]:
    """The JSON documents in one Firehose record's decoded data: usually one contact
    record, with or without a trailing newline; several when a producer joined them with
    newlines. InvalidEvent(invalid_event) when the data is not JSON text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("invalid_event", "the record is not UTF-8 text", 400) from None
    documents = []
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            break
        try:
            document, index = decoder.raw_decode(text, index)
        except ValueError as exc:
            raise InvalidEvent(
                "invalid_event", f"the record is not JSON ({exc.msg})", 400
            ) from None
        documents.append(document)
    if not documents:
        raise InvalidEvent("invalid_event", "the record is empty", 400)
    return documents


def leg_of(record: Any) -> Leg:
    """The leg a contact record describes; EventIgnored for a contact that is no leg of a
    customer's voice conversation (a chat, a supervisor's monitor), InvalidEvent when it
    is not a contact record as AWS documents it."""
    if not isinstance(record, Mapping) or find(record, "ContactId") is None:
        raise InvalidEvent("invalid_event", "not a contact record (no ContactId)", 400)
    leg_id = _id(record, "ContactId")
    channel = _upper(find(record, "Channel"))
    if channel not in SURVEYED_CHANNELS:
        raise EventIgnored(
            IgnoreReason.NOT_VOICE, f"contact {leg_id}: channel {channel or '(none)'}"
        )
    method = _upper(find(record, "InitiationMethod")) or None
    if method in SKIPPED_METHODS:
        raise EventIgnored(IgnoreReason.INITIATION_SKIPPED, f"contact {leg_id}: {method}")
    return Leg(
        platform=PLATFORM,
        conversation_id=_optional_id(record, "InitialContactId") or leg_id,
        leg_id=leg_id,
        previous_leg_id=_optional_id(record, "PreviousContactId"),
        next_leg_id=_optional_id(record, "NextContactId"),
        channel=channel,
        initiation_method=method,
        phone=_phone(record),
        agent=_text(find(record, "Agent.Username"), 200),
        queue=_queue(record),
        team=_team(record),
        agent_connected_at=_time(record, "Agent.ConnectedToAgentTimestamp"),
        after_contact_work_at=_time(record, "Agent.AfterContactWorkStartTimestamp"),
        transfer_completed_at=_time(record, "TransferCompletedTimestamp"),
        ended_at=_time(record, "DisconnectTimestamp"),
        updated_at=_time(record, "LastUpdateTimestamp"),
        # Connect has no language field: a contact flow's attribute says it, if any.
        language=_text(find(record, "Attributes.language"), 16),
    )


def _phone(record: Any) -> str | None:
    endpoint_type = _upper(find(record, "CustomerEndpoint.Type"))
    address = find(record, "CustomerEndpoint.Address")
    if not isinstance(address, str) or endpoint_type not in ("", "TELEPHONE_NUMBER"):
        return None
    return _text(address_number(address), 64)


def _queue(record: Any) -> str | None:
    name = _text(find(record, "Queue.Name"), 200)
    if name is not None:
        return name
    # A transfer to an agent goes through the agent's own queue, which has no name.
    arn = find(record, "Queue.ARN")
    if isinstance(arn, str) and "/queue/agent/" not in arn:
        return _text(arn_resource_id(arn), 200)
    return None


def _team(record: Any) -> str | None:
    """The agent's most specific hierarchy group: Connect's agent hierarchy is how a
    contact center writes down teams (Level1 is usually the site, the deepest the team)."""
    for level in _HIERARCHY_LEVELS:
        name = _text(find(record, f"Agent.HierarchyGroups.{level}.GroupName"), 200)
        if name is not None:
            return name
    return None


def _time(record: Any, path: str) -> datetime | None:
    value = find(record, path)
    if value is None:
        return None
    try:
        return moment(value, path)
    except InvalidEvent:
        # AWS writes an unset time as the epoch in some samples; no real leg ended
        # before 2000: as good as unset.
        return None


def _id(record: Any, path: str) -> str:
    value = _optional_id(record, path)
    if value is None:
        raise InvalidEvent("invalid_event", f"{path} is not a contact id", 400)
    return value


def _optional_id(record: Any, path: str) -> str | None:
    value = find(record, path)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        return None
    return value.strip()


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace("\x00", "")
    return text[:limit] or None


def _upper(value: Any) -> str:
    return value.upper() if isinstance(value, str) else ""
