"""The legs of a customer's conversation, kept until the conversation is over, and the
one rule every platform shares: who was with the customer last.

A transferred call is one conversation with several legs, reported one by one, in any
order and more than once: Amazon Connect writes a contact record per leg, Twilio Flex
gives each agent a reservation of the task, Genesys Cloud sends each agent
participant's `user.end` and `acw`. Each platform's receiver turns what it gets into a
`Leg` and keeps it here (`store_leg`, in `contact_legs`); its own rule then says when
the conversation is over (dialer.receivers.contact_records, twilio_flex, genesys_cloud),
and the conversation becomes one survey request: after its last leg, rating its last
agent (`rated_leg`: the agent whose after-contact work began last, else whose leg ended
last; AWS's rule for telling a transfer from a consult, and the order Flex and Genesys
wrap agents up in). The request's `source_call_id` is the conversation's id, so every
redelivery and every later copy of a leg is intake's duplicate.

A leg to an external party (Connect's EXTERNAL_OUTBOUND) is never rated: nobody of the
contact center is on it. A conversation whose last leg never arrives is never surveyed
(docs/integrations.md says so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.models import ContactLeg
from core.runtime import Runtime
from dialer.intake import CallEnded

# Legs whose far end is not the customer: AWS's data model says an external outbound
# leg's CustomerEndpoint is "the customer or external third party participant".
THIRD_PARTY_METHODS = frozenset({"EXTERNAL_OUTBOUND"})
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Leg:
    """One leg of a conversation, as much of it as the survey needs (contact_legs)."""

    platform: str
    conversation_id: str
    leg_id: str
    previous_leg_id: str | None = None
    next_leg_id: str | None = None
    channel: str = "VOICE"
    initiation_method: str | None = None
    phone: str | None = None
    agent: str | None = None
    queue: str | None = None
    team: str | None = None
    agent_connected_at: datetime | None = None
    after_contact_work_at: datetime | None = None
    transfer_completed_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    language: str | None = None
    survey: str | None = None
    is_end: bool = False
    call_metadata: dict[str, Any] = field(default_factory=dict)


def end_leg(platform: str, call: CallEnded, leg_id: str) -> Leg:
    """The platform's own word that the conversation is over (Flex's task event,
    Genesys's customer.end), with what it says of the call: the customer, when, and
    the fields the request takes from it."""
    return Leg(
        platform=platform, conversation_id=call.source_call_id[:256], leg_id=leg_id[:256],
        phone=call.phone, queue=call.queue, team=call.team, ended_at=call.ended_at,
        updated_at=call.ended_at, language=call.language, survey=call.survey, is_end=True,
        call_metadata=dict(call.metadata),
    )  # fmt: skip


_LEGS = ContactLeg.__table__
_LEG_FIELDS = tuple(f.name for f in fields(Leg))
_UPDATED = tuple(name for name in _LEG_FIELDS if name not in ("platform", "leg_id"))


class ConversationOngoing(Exception):
    """The conversation has a leg still to come: its survey waits for it."""

    def __init__(self, conversation_id: str, detail: str) -> None:
        super().__init__(detail)
        self.conversation_id = conversation_id
        self.detail = detail


def store_leg(session: Session, leg: Leg) -> None:
    """Keep `leg`, merged with what is known of it: where a copy the platform updated
    later (`updated_at`) and the stored one differ, the later one's values win; an older
    copy only fills what is still unknown (Flex's reservation.accepted arriving after
    its wrapup still tells when the agent took the call)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {name: getattr(leg, name) for name in _LEG_FIELDS}
    insert = dialect.insert(_LEGS).values(values)
    newer = or_(
        _LEGS.c.updated_at.is_(None),
        insert.excluded.updated_at > _LEGS.c.updated_at,
    )
    merged: dict[str, Any] = {
        name: case(
            (newer, func.coalesce(insert.excluded[name], _LEGS.c[name])),
            else_=func.coalesce(_LEGS.c[name], insert.excluded[name]),
        )
        for name in _UPDATED
        if name not in ("is_end", "call_metadata", "updated_at")
    }
    merged["is_end"] = _LEGS.c.is_end | insert.excluded.is_end
    merged["call_metadata"] = case(
        (newer, insert.excluded.call_metadata), else_=_LEGS.c.call_metadata
    )
    merged["updated_at"] = case((newer, insert.excluded.updated_at), else_=_LEGS.c.updated_at)
    session.execute(
        insert.on_conflict_do_update(index_elements=[_LEGS.c.platform, _LEGS.c.leg_id], set_=merged)
    )


def keep_leg(runtime: Runtime, leg: Leg) -> list[Leg]:
    """Keep `leg` and read every leg of its conversation known so far, in one unit of
    work (the decision that follows sees this leg, whatever else arrives meanwhile)."""
    with runtime.db.session() as session:
        store_leg(session, leg)
        return legs_of(session, leg.platform, leg.conversation_id)


def legs_of(session: Session, platform: str, conversation_id: str) -> list[Leg]:
    rows = session.execute(
        select(*(_LEGS.c[name] for name in _LEG_FIELDS)).where(
            _LEGS.c.platform == platform, _LEGS.c.conversation_id == conversation_id
        )
    ).all()
    return [Leg(**row._mapping) for row in rows]


def rated_leg(legs: Iterable[Leg]) -> Leg | None:
    """The leg whose agent was with the customer last (see the module's docstring)."""
    talked = [
        leg
        for leg in legs
        if leg.agent is not None
        and (leg.agent_connected_at or leg.after_contact_work_at) is not None
        and leg.initiation_method not in THIRD_PARTY_METHODS
    ]
    if not talked:
        return None
    return max(talked, key=lambda leg: (_latest(leg), leg.agent_connected_at or _NEVER))


def _latest(leg: Leg) -> datetime:
    """When the leg's agent was last with it: after-contact work began, else its end."""
    return leg.after_contact_work_at or leg.ended_at or leg.agent_connected_at or _NEVER
