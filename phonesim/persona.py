"""Simulated callees: who picks up, what they press, when they hang up.

A `Persona` is an immutable script; each call gets its own `Callee` that plays it. On an
incoming call (`PhoneNetwork.dial_in`) the persona is the caller: it meets the app's
input verbs the same way; only who picks up (and how long it rings) plays no part.

How a persona meets input verbs (`<Gather>`, `<Record>`)
--------------------------------------------------------
- The scripted answers are used in order, one per *question*. A question is an input
  verb that asks something: one with a nested `<Say>`/`<Play>`, or one preceded by a
  `<Say>`/`<Play>` since the previous input verb. An input verb with no prompt of its own
  (an app's short follow-up `<Gather>` listening for the "0" of "10") gets no new
  answer: only keys typed ahead, else silence.
- Answers are key strings ("7", "10", "1#", "*"), "" for silence, a `Speech` (a spoken
  answer for a `<Gather>` that listens for speech), or a `Comment` (speech for a
  `<Record>`). A persona may mix them, one per question.
- Speech is heard only by a `<Gather>` whose `input` includes "speech"; at a keys-only
  `<Gather>` the persona says it anyway and the keypad stays silent (the app's no-input
  path runs). Keys at a speech-only `<Gather>` are pressed and ignored. A `Comment` at a
  `<Gather>` is not heard as an answer (it stays what it was: silence on the keypad); a
  `Speech` at a `<Record>` is recorded like a `Comment`.
- Typeahead: keys go into a buffer the keypad shares across verbs, as on a real phone.
  An input verb takes keys from the buffer until it is satisfied (`numDigits` reached or
  a `finishOnKey` pressed); keys beyond that stay buffered and are taken, at once, by
  the next input verb. So "10" at a `numDigits=1` `<Gather>` yields "1" there and "0"
  at the next one. The next scripted answer is only used when the buffer is empty.
- Keys typed ahead stop (barge in on) the next verb's nested prompts before they play;
  `barge_in_after` makes the persona press, or start speaking, during the question's
  last prompt instead of after it (`think_seconds` after the prompts).
- `hangs_up_after(k)`: after answering k questions the callee hangs up one second into
  the next question.
- A persona with a `feeling` (`phonesim.feeling`) answers the questions its script does
  not cover by listening to them (`phonesim.question.read_spoken`): a number on the
  scale the prompts name (keys, or said aloud with `speaks`), yes or no with the keys
  they name (always yes to "I heard nine. Is that right?"), a spoken comment at a
  `<Record>`, in the prompts' language; silence when it cannot make out what is asked.
  `opt_out_at` makes it press "*" at that question instead (1-based). The random
  personas of `PersonaMix` are all of this kind, so every key they press is one the
  question asked for.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from phonesim.feeling import Feeling
from phonesim.question import Question

Pickup = Literal["human", "machine", "fax", "busy", "no-answer", "failed"]

# AMD verdicts Twilio sends as AnsweredBy.
AMD_VERDICTS = (
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
)


@dataclass(frozen=True)
class Comment:
    """Speech left at a `<Record>`: what is said, for how long, and how it ends."""

    text: str
    seconds: float = 5.0
    # A key pressed after speaking (e.g. "#"); None: the speaker just goes quiet.
    finish_key: str | None = None


@dataclass(frozen=True)
class Speech:
    """A spoken answer at a `<Gather>` that listens for speech (`input` "speech" or
    "dtmf speech"), and what Twilio's recogniser makes of it.

    `text` is what the customer says and what the recogniser returns as SpeechResult;
    "" is an empty result, which Twilio treats as no input. `Speech.unrecognised(...)`
    is speech the recogniser cannot make out: the customer says something (journaled),
    the app gets no SpeechResult.
    """

    text: str
    # Twilio's Confidence (0-1); None: Twilio leaves it out, as its docs warn it may.
    confidence: float | None = 0.9
    seconds: float = 1.5  # how long the customer speaks
    recognised: bool = True

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be between 0 and 1, not {self.confidence}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, not {self.seconds}")

    @classmethod
    def unrecognised(cls, said: str = "(mumbles)", seconds: float = 1.5) -> Speech:
        """Speech the recogniser returns nothing for (noise, mumbling, another
        language): Twilio treats it as no input. `said` is only for the journal."""
        return cls(said, confidence=None, seconds=seconds, recognised=False)

    @property
    def result(self) -> str:
        """What the recogniser returns: the transcript, or "" when it made out nothing."""
        return self.text if self.recognised else ""


Answer = str | Comment | Speech


@dataclass(frozen=True)
class Persona:
    """How one callee behaves; build with the constructors below."""

    name: str = "answering"
    pickup: Pickup = "human"
    answers: tuple[Answer, ...] = ()
    ring_seconds: float = 6.0
    # Seconds after the prompts end before the first key or word; past the Gather
    # timeout they come too late (keys stay buffered for the next verb, words are lost).
    think_seconds: float = 1.0
    key_gap: float = 0.3
    # Seconds into a question's last prompt (the question itself, after any greeting
    # or apology before it) at which the persona starts typing or speaking.
    barge_in_after: float | None = None
    hang_up_after: int | None = None
    # The verdict AMD reaches; None derives it from `pickup`.
    amd_verdict: str | None = None
    amd_seconds: float = 3.5
    # For `failed`: the SIP response the carrier gave (404 unallocated, 500 ...).
    sip_response_code: int = 404
    # How the customer feels about the call: answers, past the script, on each
    # question's own scale; None: silence past the script.
    feeling: Feeling | None = None
    # With a feeling: says the answers instead of pressing them.
    speaks: bool = False
    # With a feeling: presses "*" at this question (1-based) instead of answering.
    opt_out_at: int | None = None
    # Seeds the answers' noise, so a call played again gets the same answers.
    seed: int = 0

    # -- constructors -------------------------------------------------------------
    @classmethod
    def answering(cls, answers: Iterable[Answer], **options: Any) -> Persona:
        return cls(name="answering", answers=tuple(answers), **options)

    @classmethod
    def invalid_first(
        cls, answers: Iterable[Answer], invalid: str = "15", **options: Any
    ) -> Persona:
        """Gives an out-of-range answer to the first question, then `answers`.

        "15" is out of range for an NPS 0-10 question asked one key at a time (the "1"
        then a "5" at the follow-up Gather); pass `invalid` for other questions.
        """
        return cls(name="invalid_first", answers=(invalid, *answers), **options)

    @classmethod
    def silent(cls, **options: Any) -> Persona:
        """Picks up and never presses a key."""
        return cls(name="silent", answers=(), **options)

    @classmethod
    def hangs_up_after(cls, k: int, answers: Iterable[Answer] = (), **options: Any) -> Persona:
        answers = tuple(answers)
        padded = (*answers, *([""] * max(0, k - len(answers))))
        return cls(name="hangs_up", answers=padded[:k], hang_up_after=k, **options)

    @classmethod
    def opts_out(
        cls, at_question: int = 1, answers: Sequence[Answer] = (), **options: Any
    ) -> Persona:
        """Answers `answers` then presses "*" at question `at_question` (1-based)."""
        before = tuple(answers[: at_question - 1])
        before = (*before, *([""] * (at_question - 1 - len(before))))
        return cls(name="opts_out", answers=(*before, "*"), **options)

    @classmethod
    def no_answer(cls, **options: Any) -> Persona:
        return cls(name="no_answer", pickup="no-answer", **options)

    @classmethod
    def busy(cls, **options: Any) -> Persona:
        return cls(name="busy", pickup="busy", **options)

    @classmethod
    def failing(cls, sip_response_code: int = 404, **options: Any) -> Persona:
        return cls(name="failing", pickup="failed", sip_response_code=sip_response_code, **options)

    @classmethod
    def machine(cls, verdict: str = "machine_end_beep", **options: Any) -> Persona:
        """A voicemail: listens, never presses; AMD says `verdict`."""
        return cls(name="machine", pickup="machine", amd_verdict=verdict, **options)

    @classmethod
    def fax(cls, **options: Any) -> Persona:
        return cls(name="fax", pickup="fax", amd_verdict="fax", **options)

    def with_(self, **changes: Any) -> Persona:
        return replace(self, **changes)

    # -- behaviour ----------------------------------------------------------------
    def verdict(self, mode: str) -> str:
        """The AnsweredBy AMD reports, for MachineDetection `mode`.

        `Enable` reports a machine as soon as it hears one (`machine_start`); only
        `DetectMessageEnd` waits for the greeting to end (`machine_end_*`).
        """
        verdict = self.amd_verdict or {"human": "human", "fax": "fax"}.get(
            self.pickup, "machine_end_beep"
        )
        if mode != "DetectMessageEnd" and verdict.startswith("machine_end"):
            return "machine_start"
        return verdict

    def callee(self) -> Callee:
        return Callee(self)


HANG_UP = object()
YES_NO_WORDS = {"en": ("yes", "no"), "es": ("sí", "no"), "pl": ("tak", "nie")}


@dataclass
class Callee:
    """One call's run of a persona: the keypad buffer and how far the script got."""

    persona: Persona
    buffer: str = ""
    answered: int = 0
    _next: int = field(default=0, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.persona.seed}:{self.persona.name}")

    @property
    def listens_only(self) -> bool:
        return self.persona.pickup != "human"

    def next_answer(
        self, question: Question | None = None, *, recording: bool = False, language: str = "en"
    ) -> Answer | object:
        """The answer to a new question: keys, a Speech, a Comment, "" (silence) or
        HANG_UP. `question` is what the prompts asked, as the callee made it out (None:
        nothing it could make out); `recording` when it is a `<Record>`, in
        `language`."""
        if self.listens_only:
            return ""
        limit = self.persona.hang_up_after
        if limit is not None and self.answered >= limit:
            return HANG_UP
        self.answered += 1
        if self._next < len(self.persona.answers):
            answer = self.persona.answers[self._next]
            self._next += 1
            return answer
        return self._felt(question, recording, language)

    def _felt(self, question: Question | None, recording: bool, language: str) -> Answer:
        """What a persona with a feeling answers, past its script."""
        persona, rng = self.persona, self._rng
        feeling = persona.feeling
        if feeling is None:
            return ""
        if self.answered == persona.opt_out_at:
            return "*"
        if recording:
            return Comment(feeling.comment(language, rng), seconds=rng.uniform(3.0, 8.0),
                           finish_key=rng.choice(["#", None]))  # fmt: skip
        if question is None or question.kind == "comment":
            return ""
        if question.kind == "yesno":
            yes = question.confirms or feeling.agrees(rng)
            if persona.speaks:
                return Speech(YES_NO_WORDS[question.language][0 if yes else 1])
            return question.yes_key if yes else question.no_key
        value = str(feeling.value(question.low, question.high, rng))
        if persona.speaks:
            # As a recogniser writes numbers (digits), some heard with little confidence.
            return Speech(value, confidence=round(rng.uniform(0.45, 0.99), 2))
        return value

    def take_key(self) -> str | None:
        if not self.buffer:
            return None
        key, self.buffer = self.buffer[0], self.buffer[1:]
        return key


@dataclass(frozen=True)
class PersonaMix:
    """A weighted choice of personas for numbers that were given none.

    The choice is seeded per number, so a number gets the same persona whatever order
    the calls are placed in.
    """

    weighted: tuple[tuple[float, Persona], ...]

    def choose(self, seed: int, number: str) -> Persona:
        rng = random.Random(f"{seed}:{number}")
        total = sum(weight for weight, _ in self.weighted)
        pick = rng.uniform(0, total)
        for weight, persona in self.weighted:
            pick -= weight
            if pick <= 0:
                return _randomise(persona, rng)
        return _randomise(self.weighted[-1][1], rng)

    @classmethod
    def speaking(cls, share: float = 15.0) -> PersonaMix:
        """The default mix, plus customers who say their answers (`random_speaks`) with
        weight `share`."""
        return cls(((share, Persona(name="random_speaks")), *cls.default().weighted))

    @classmethod
    def default(cls) -> PersonaMix:
        """Roughly what an outbound survey campaign meets."""
        return cls(
            (
                (55.0, Persona(name="random")),
                (8.0, Persona.silent()),
                (4.0, Persona(name="random_hangs_up", hang_up_after=2)),
                (3.0, Persona(name="random_opts_out")),
                (12.0, Persona.no_answer()),
                (5.0, Persona.busy()),
                (10.0, Persona.machine()),
                (3.0, Persona.failing()),
            )
        )


def _randomise(persona: Persona, rng: random.Random) -> Persona:
    """Gives the `random*` personas a feeling drawn from `rng` (phonesim.feeling), and
    what else they do: say their answers, opt out at one of the first questions, barge
    in."""
    if not persona.name.startswith("random"):
        return persona
    feeling = Feeling.draw(rng)
    opt_out_at = rng.randint(1, 3) if persona.name == "random_opts_out" else None
    return replace(
        persona,
        feeling=feeling,
        speaks=persona.name == "random_speaks",
        opt_out_at=opt_out_at,
        seed=rng.getrandbits(32),
        barge_in_after=rng.choice([None, 2.0]),
    )
