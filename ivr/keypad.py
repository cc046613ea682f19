"""What the keys a customer pressed mean for a question.

Pure functions over the `Digits` Twilio posts; no Flask, no database. The rules:

- `*` anywhere is the opt-out key: it can never be an answer on any scale.
- NPS (0-10) is asked one key at a time so nobody waits when the answer is already
  certain: "0" and "2"-"9" are final at once; a leading "1" may be 1 or the start of 10,
  so a second, short Gather listens for "0" (10), silence or "#" (1), and anything else
  (e.g. "11") is out of range.
- Every other scale is one key: final the moment it is pressed.
- Nothing pressed, "#" alone, letters, out-of-range or overlong input is not an answer:
  the caller is told what is expected and asked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.flow import Rejection
from core.survey import QuestionKind

OPT_OUT_KEY = "*"
FINISH_KEY = "#"
# The longest key string kept as the raw record of what was pressed.
MAX_KEYS_KEPT = 32


@dataclass(frozen=True)
class Answered:
    value: int
    keys: str


@dataclass(frozen=True)
class NeedsSecondDigit:
    """NPS "1" so far: it is 1 unless a "0" follows."""

    keys: str


@dataclass(frozen=True)
class OptedOut:
    keys: str


@dataclass(frozen=True)
class Rejected:
    reason: Rejection
    keys: str


KeypadResult = Answered | NeedsSecondDigit | OptedOut | Rejected


def interpret(kind: QuestionKind, digits: str | None, *, after_one: bool = False) -> KeypadResult:
    """Interpret `digits` for a question of `kind`.

    `after_one` is the NPS second stage: the customer already pressed "1".
    """
    scale = kind.scale
    if scale is None:
        raise ValueError(f"{kind} questions are recorded, not keyed")
    raw = (digits or "")[:MAX_KEYS_KEPT]
    keys = ("1" + raw) if after_one else raw
    if OPT_OUT_KEY in raw:
        return OptedOut(keys)
    entered = raw.rstrip(FINISH_KEY)
    if after_one:
        # Silence or "#" after a "1" means the customer meant 1.
        if entered == "":
            return Answered(1, keys)
        entered = "1" + entered
    if entered == "":
        return Rejected(Rejection.NO_INPUT, keys)
    if not entered.isascii() or not entered.isdigit() or len(entered) > 2:
        return Rejected(Rejection.INVALID, keys)
    low, high = scale
    if kind is QuestionKind.NPS and entered == "1" and not after_one:
        # "1#" is an explicit 1; a bare "1" may still become 10.
        return Answered(1, keys) if raw.endswith(FINISH_KEY) else NeedsSecondDigit(keys)
    value = int(entered)
    if entered != str(value) or not low <= value <= high:
        # "05" or "00" are not how anyone types a score; out of range is out of range.
        return Rejected(Rejection.INVALID, keys)
    return Answered(value, keys)
