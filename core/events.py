"""What one domain tells another, without importing it.

A domain never imports another (docs/architecture.md). Where something one domain did
matters to another, it calls a function here, and whoever the entry point wired into the
Runtime (core.runtime.Wiring, built in aftercall.wiring) hears of it. Today:

- `alert_due` and `owe_alert`: ivr or sms is storing a customer's answer; if the rule
  the entry point wired (scoring's: a detractor's answer, alerts configured) says the
  answer calls for an alert, the alert's outbox row (core.models.AlertOutbox) is written
  in the answer's own transaction, and scoring's worker-side drain queues the alert.
  ivr asks `alert_due()` and writes the row with the statement that stores the answer
  (ivr.calls.answer_question: the same statement on PostgreSQL); sms calls `owe_alert()`
  in its transaction.
- `answer_given`: ivr or sms committed a customer's answer; listeners that need no
  guarantee hear of it after the commit (none is wired today).
- `text_due`: the dialer decided a request goes out by text now (its rules, messaging
  hours and pacing passed); the SMS channel opens the conversation.

The attempt's end needs no event: the status callbacks are the dialer's own
(dialer.attempts), and the dialer hands itself the follow-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Insert, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from core.models import AlertOutbox

if TYPE_CHECKING:
    from core.runtime import Runtime


@dataclass(frozen=True)
class AnswerGiven:
    """A customer's answer to a question of the survey, committed to the database."""

    request_id: int
    kind: str  # the question's kind (core.survey.QuestionKind's value)
    value: int | None


AnswerListener = Callable[["Runtime", AnswerGiven], object]
# Whether an answer calls for an alert (scoring.alerts.alert_wanted, wired in
# aftercall.wiring). Cheap and pure: it runs on every answer, before it is stored.
AlertRule = Callable[["Runtime", AnswerGiven], bool]
# Opens the text conversation of a request; returns what happened, for the job's result.
TextOpener = Callable[["Runtime", int], str]


def alert_due(runtime: Runtime, event: AnswerGiven) -> bool:
    """Whether storing this answer must also write its alert's outbox row."""
    rule = runtime.wiring.alert_rule
    return rule is not None and rule(runtime, event)


_OUTBOX = AlertOutbox.__table__


def _owe(dialect: ModuleType) -> Insert:
    # One row per request: the unique constraint decides, in the same statement.
    return (
        dialect.insert(_OUTBOX)
        .values(request_id=bindparam("request_id"), created_at=bindparam("created_at"))
        .on_conflict_do_nothing(index_elements=[_OUTBOX.c.request_id])
    )


_OWE_ALERT = {"postgresql": _owe(postgresql), "sqlite": _owe(sqlite)}


def owe_alert(runtime: Runtime, connection: Connection, event: AnswerGiven, now: datetime) -> bool:
    """In the answer's own transaction, before its commit: write the alert's outbox row
    if the wired rule says this answer calls for one (a request owes one alert at most:
    a second one writes nothing). Returns whether the rule said so."""
    if not alert_due(runtime, event):
        return False
    connection.execute(
        _OWE_ALERT[connection.dialect.name], {"request_id": event.request_id, "created_at": now}
    )
    return True


def answer_given(runtime: Runtime, event: AnswerGiven) -> None:
    """Tell the listeners about an answer. Call it after the commit: a listener may read
    the answer back from the database (the alert's job does)."""
    for listener in runtime.wiring.answer_listeners:
        listener(runtime, event)


def text_due(runtime: Runtime, request_id: int) -> str:
    """Hand a request whose survey goes out by text to the SMS channel, now."""
    opener = runtime.wiring.text_opener
    if opener is None:
        raise LookupError("this Runtime has no SMS channel wired (core.runtime.Wiring)")
    return opener(runtime, request_id)
