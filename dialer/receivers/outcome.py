"""One platform event's fate: a survey request (through dialer.intake), or why not.

`receive` is what every receiver route calls: map the event (the platform's module),
hand the call to intake exactly as the API would, and count the outcome by platform and
reason in `aftercall_receiver_events_total`, so events a receiver filters out are
counted like the calls intake suppresses. It writes only through dialer.intake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from core.models import SurveyMode
from core.runtime import Runtime
from dialer.intake import CallEnded, IntakeResult, accept_calls
from dialer.receivers.conversations import ConversationOngoing
from dialer.receivers.mapping import EventIgnored, InvalidEvent

log = logging.getLogger(__name__)

# registry=None: each app's /metrics registry registers it (tests build many apps); with
# PROMETHEUS_MULTIPROC_DIR, gunicorn workers' counts are combined from their files.
EVENTS = Counter(
    "aftercall_receiver_events",
    "Contact-center platform events received, by platform, outcome and reason.",
    ["platform", "outcome", "reason"],
    registry=None,
)


class Platform(StrEnum):
    TWILIO_FLEX = "twilio-flex"
    AMAZON_CONNECT = "amazon-connect"
    GENESYS_CLOUD = "genesys-cloud"


class Status(StrEnum):
    ACCEPTED = "accepted"  # a survey request, scheduled
    REJECTED = "rejected"  # intake said no (opted out, duplicate, ...); suppressions stored
    IGNORED = "ignored"  # not an event the receiver surveys on (chat, no agent, ...)
    WAITING = "waiting"  # a leg of a conversation not over yet: kept until its last leg
    INVALID = "invalid"  # cannot be mapped as sent


@dataclass(frozen=True)
class EventOutcome:
    platform: Platform
    status: Status
    reason: str | None = None
    detail: str | None = None
    result: IntakeResult | None = None  # accepted and rejected: intake's answer
    http_status: int | None = None  # invalid: 400 or 422

    @property
    def source_call_id(self) -> str | None:
        return self.result.source_call_id if self.result else None

    def summary(self) -> str:
        """'accepted', 'ignored:not_voice', ...: for a response header and the log."""
        return self.status.value + (f":{self.reason}" if self.reason else "")


def receive(
    runtime: Runtime,
    platform: Platform,
    to_call: Callable[[], CallEnded],
    api_key_id: int | None = None,
    mode: SurveyMode = SurveyMode.CALLBACK,
) -> EventOutcome:
    """Map one event with `to_call` and send the call to intake; never raises for the
    event's content. A database failure propagates (the route answers 503, so the
    platform delivers the event again later) after being counted."""
    try:
        call = to_call()
    except EventIgnored as exc:
        outcome = EventOutcome(platform, Status.IGNORED, exc.reason.value, exc.detail)
    except ConversationOngoing as exc:
        outcome = EventOutcome(platform, Status.WAITING, "later_leg_to_come", exc.detail)
    except InvalidEvent as exc:
        outcome = EventOutcome(
            platform, Status.INVALID, exc.code, exc.detail, http_status=exc.status
        )
    else:
        try:
            (result,) = accept_calls(runtime, [replace(call, api_key_id=api_key_id, mode=mode)])
        except SQLAlchemyError:
            EVENTS.labels(platform.value, "unavailable", "database").inc()
            raise
        status = Status.ACCEPTED if result.accepted else Status.REJECTED
        outcome = EventOutcome(platform, status, result.reason, result.detail, result=result)
    EVENTS.labels(platform.value, outcome.status.value, outcome.reason or "").inc()
    _log(outcome)
    return outcome


def _log(outcome: EventOutcome) -> None:
    call = f" call {outcome.source_call_id!r}" if outcome.source_call_id else ""
    if outcome.status is Status.INVALID:
        log.warning(
            "%s event refused%s: %s (%s)", outcome.platform, call, outcome.reason, outcome.detail
        )
    else:
        log.info("%s event%s: %s", outcome.platform, call, outcome.summary())
