"""What one domain tells another, without importing it.

A domain never imports another (docs/architecture.md). Where something one domain did
matters to another, it calls a function here, and whoever the entry point wired into the
Runtime (core.runtime.Wiring, built in aftercall.wiring) hears of it. Today:

- `answer_given`: ivr committed a customer's answer; scoring's detractor alert listens.

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


def answer_given(runtime: Runtime, event: AnswerGiven) -> None:
    """Tell the listeners about an answer. Call it after the commit: a listener may read
    the answer back from the database (the alert's job does)."""
    for listener in runtime.wiring.answer_listeners:
        listener(runtime, event)
