"""What one domain tells another, without importing it.

A domain never imports another (docs/architecture.md). Where something one domain did
matters to another, it calls a function here, and whoever the entry point wired into the
Runtime (core.runtime.Wiring, built in aftercall.wiring) hears of it. Today:

- `answer_given`: ivr or sms committed a customer's answer; scoring's detractor alert
  listens.
- `text_due`: the dialer decided a request goes out by text now (its rules, messaging
  hours and pacing passed); the SMS channel opens the conversation.

The attempt's end needs no event: the status callbacks are the dialer's own
(dialer.attempts), and the dialer hands itself the follow-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.runtime import Runtime


@dataclass(frozen=True)
class AnswerGiven:
    """A customer's answer to a question of the survey, committed to the database."""

    request_id: int
    kind: str  # the question's kind (core.survey.QuestionKind's value)
    value: int | None


AnswerListener = Callable[["Runtime", AnswerGiven], object]
# Opens the text conversation of a request; returns what happened, for the job's result.
TextOpener = Callable[["Runtime", int], str]


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
