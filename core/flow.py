"""Which step of the survey comes next: the call flow as pure decisions.

Given the survey definition, the answers stored so far and what just happened, these
functions say what the caller hears next. They read no request and write no row, so the
same inputs always give the same step; that is what makes a redelivered webhook return
the same TwiML. Conditions only look at earlier questions (the survey loader enforces
it), so a later answer can never change what followed an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.survey import Question, SurveyDefinition


class Rejection(StrEnum):
    """Why an input was no answer: the same reasons whatever the channel."""

    NO_INPUT = "no_input"
    INVALID = "invalid"
    # A spoken answer the customer said was misheard, when asked to confirm it.
    MISHEARD = "misheard"


@dataclass(frozen=True)
class Ask:
    """Ask `question` (try number `attempt`), after whatever must be said first."""

    question: Question
    attempt: int = 1
    greet: bool = False
    retry_reason: Rejection | None = None
    moved_on: bool = False  # the previous question was given up on


@dataclass(frozen=True)
class ListenForZero:
    """An NPS "1" was pressed: listen briefly for a "0" that makes it 10."""

    question: Question
    attempt: int


@dataclass(frozen=True)
class Confirm:
    """A spoken answer heard with low confidence: "I heard nine, is that right?"."""

    question: Question
    value: int
    attempt: int
    transcript: str
    confidence: float | None


@dataclass(frozen=True)
class Finish:
    moved_on: bool = False


Step = Ask | ListenForZero | Confirm | Finish


def opening(definition: SurveyDefinition) -> Ask | Finish:
    step = _next_question(definition, None, {})
    return Ask(step.question, greet=True) if isinstance(step, Ask) else step


def after_answer(
    definition: SurveyDefinition, question_key: str, answers: Mapping[str, int | None]
) -> Ask | Finish:
    return _next_question(definition, question_key, answers)


def after_rejection(
    definition: SurveyDefinition,
    question: Question,
    attempt: int,
    reason: Rejection,
    answers: Mapping[str, int | None],
) -> Ask | Finish:
    """Ask again, or after the last allowed try, give up on the question and move on."""
    if attempt < definition.max_tries:
        return Ask(question, attempt=attempt + 1, retry_reason=reason)
    step = _next_question(definition, question.key, answers)
    if isinstance(step, Ask):
        return Ask(step.question, moved_on=True)
    return Finish(moved_on=True)


def may_finish_after(definition: SurveyDefinition, question_key: str) -> bool:
    """Whether the survey can end right after `question_key`, depending on the answers:
    true when every later question is conditional (or there is none)."""
    keys = [q.key for q in definition.questions]
    later = definition.questions[keys.index(question_key) + 1 :]
    return all(question.when is not None for question in later)


def _next_question(
    definition: SurveyDefinition, after_key: str | None, answers: Mapping[str, int | None]
) -> Ask | Finish:
    keys = [q.key for q in definition.questions]
    start = 0 if after_key is None else keys.index(after_key) + 1
    for question in definition.questions[start:]:
        if question.when is None or question.when.holds(answers):
            return Ask(question)
    return Finish()
