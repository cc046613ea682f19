"""Simulated customers who text back: who replies, when, with what, and who texts STOP.

A `TextPersona` is an immutable script, the texting counterpart of `phonesim.persona`'s
`Persona`; each (customer, account number) pair gets its own `TextThread` that plays it.
The network hands the thread every text from the account that is *delivered* to the
customer (`PhoneNetwork._message_status`), and sends what the thread decides through
`PhoneNetwork.text_in` after the thread's delay, in simulated time, so every reply is an
ordinary inbound message: journaled, opt-out keywords handled by Twilio's rules, posted
signed to the number's SMS URL.

How a thread reads a text
-------------------------
- Only a question gets a reply: a text with a reply instruction (`phonesim.question`).
  A thank-you, a HELP reply, an opt-out confirmation, "This survey has closed" or
  Twilio's own keyword replies get none.
- The answer is on the question's own scale and coherent across questions: the thread
  draws one `phonesim.feeling.Feeling` for its `target` (promoter, passive or
  detractor), the same a calling persona uses, and every answer is that satisfaction on
  the question's scale, with a little noise. A 0-10 scale is read as NPS and stays in
  the target's band (9-10, 7-8, 0-6), so the target is what the product will score; a
  1-5 or 1-7 scale follows the same satisfaction.
- The answer is written as customers write: "9", "9/10", "nine", "9!", "9 out of 10",
  "yes", "Y", "Yes!", a short comment or SKIP, in the question's language (en, es, pl).
  A re-ask (a question beginning "Sorry"/"Perdón"/"Przepraszamy") after a valid answer
  gets the same value again, written plainly.
- One thread has at most one reply in flight: a question that arrives while the
  customer has not yet answered the last one (a reminder) gets no reply of its own.

What a thread does not do: read its texts in any order other than delivery, reply to a
text that was not delivered, or talk to a number whose texts it never received.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from phonesim.feeling import TARGETS, Feeling, Target
from phonesim.question import Question, read_question

Form = Literal["plain", "fraction", "word", "exclaimed", "out_of", "letter"]
# How a customer writes an answer. A form a kind has no use for is written plainly:
# a scale has no "letter", a yes/no no "fraction" or "out_of", a comment is a comment.
FORMS: tuple[Form, ...] = ("plain", "fraction", "word", "exclaimed", "out_of", "letter")
# What a confused customer texts first; "100" is off every survey scale.
NONSENSE = ("what?", "🤔", "100", "??", "who is this?")

# The numbers 0-10 as words, space-separated.
_NUMBER_WORDS = {
    "en": "zero one two three four five six seven eight nine ten",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve diez",
    "pl": "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć",
}
_OUT_OF = {"en": "{value} out of {top}", "es": "{value} de {top}", "pl": "{value} na {top}"}
_YES_NO = {"en": ("yes", "no"), "es": ("sí", "no"), "pl": ("tak", "nie")}
_YES_NO_LETTER = {"en": ("Y", "N"), "es": ("S", "N"), "pl": ("T", "N")}


@dataclass(frozen=True)
class TextPersona:
    """How one customer answers texts; build with the constructors below and combine
    behaviours with `with_` (`TextPersona.late(30).with_(stop_after=2)`)."""

    name: str = "answering"
    # False: reads everything, never replies.
    replies: bool = True
    # None: each thread draws one with phonesim.feeling.TARGET_WEIGHTS.
    target: Target | None = None
    # A reply comes this many simulated seconds after the question was delivered,
    # drawn uniformly between the two.
    reply_seconds: tuple[float, float] = (20.0, 300.0)
    # The reply to question `late_at` (1-based) comes after `late_seconds` instead:
    # the customer who reads the text the next day.
    late_seconds: float | None = None
    late_at: int = 1
    # Texted instead of the answer to question `nonsense_at`, then one at each re-ask
    # while any are left; the answer follows the re-ask after the last.
    nonsense: tuple[str, ...] = ()
    nonsense_at: int = 1
    # Texts STOP instead of answering, once this many questions are answered (0: at
    # the first question).
    stop_after: int | None = None
    # Texts HELP on question `help_at`, then answers it after reading the reply.
    help_at: int | None = None
    forms: tuple[Form, ...] = FORMS
    # The share of comment questions answered SKIP.
    skip_share: float = 0.15
    # How far (on a 0-1 satisfaction) one answer strays from the customer's feeling.
    noise: float = 0.06

    def __post_init__(self) -> None:
        low, high = self.reply_seconds
        if not 0 <= low <= high:
            raise ValueError(f"reply_seconds must be (low, high), 0 <= low <= high: {low, high}")
        if self.late_seconds is not None and self.late_seconds < 0:
            raise ValueError(f"late_seconds must not be negative, not {self.late_seconds}")
        if self.target is not None and self.target not in TARGETS:
            raise ValueError(f"target {self.target!r} is not one of {TARGETS}")
        if not self.forms or any(form not in FORMS for form in self.forms):
            raise ValueError(f"forms must be some of {FORMS}, not {self.forms}")
        for name in ("late_at", "nonsense_at", "help_at"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} counts questions from 1, not {value}")
        if self.stop_after is not None and self.stop_after < 0:
            raise ValueError(f"stop_after must not be negative, not {self.stop_after}")

    # -- constructors -------------------------------------------------------------
    @classmethod
    def answering(cls, target: Target | None = None, **options: Any) -> TextPersona:
        """Answers every question, on its scale, as a `target` customer would."""
        return cls(name="answering", target=target, **options)

    @classmethod
    def silent(cls, **options: Any) -> TextPersona:
        """Never replies: the survey that expires unanswered."""
        return cls(name="silent", replies=False, **options)

    @classmethod
    def late(cls, hours: float = 26.0, at_question: int = 1, **options: Any) -> TextPersona:
        """Answers question `at_question` `hours` after it arrived (the default is past
        a 24-hour expiry), the others at the usual pace."""
        return cls(name="late", late_seconds=hours * 3600.0, late_at=at_question, **options)

    @classmethod
    def nonsense_first(
        cls, nonsense: tuple[str, ...] = ("what?",), at_question: int = 1, **options: Any
    ) -> TextPersona:
        """Texts `nonsense` (one per try) to question `at_question`, then answers
        properly after the re-ask that follows the last of it."""
        return cls(name="nonsense_first", nonsense=nonsense, nonsense_at=at_question, **options)

    @classmethod
    def stops(cls, after: int = 0, **options: Any) -> TextPersona:
        """Texts STOP at the first question (`after=0`) or once `after` are answered."""
        return cls(name="stops", stop_after=after, **options)

    @classmethod
    def asks_help(cls, at_question: int = 1, **options: Any) -> TextPersona:
        """Texts HELP when question `at_question` arrives, then answers it."""
        return cls(name="asks_help", help_at=at_question, **options)

    def with_(self, **changes: Any) -> TextPersona:
        return replace(self, **changes)

    def thread(self, rng: random.Random) -> TextThread:
        """A new conversation played by this persona, its choices drawn from `rng`."""
        return TextThread(self, rng, Feeling.draw(rng, self.target, noise=self.noise))


@dataclass
class TextThread:
    """One customer's conversation with one of the account's numbers: how far the
    persona got and what it decided. Mutated only under the network's lock."""

    persona: TextPersona
    rng: random.Random
    feeling: Feeling
    asked: int = 0  # questions received, re-asks not counted
    answered: int = 0  # questions given a valid answer
    in_flight: int = 0  # texts decided and not yet sent
    stopped: bool = False
    question: Question | None = None
    # The answer decided for `question`: a scale value, True/False, or the comment;
    # `decision_sent` once a text carried it (a re-ask after it is the product's doubt).
    decision: int | bool | str = ""
    decision_sent: bool = False
    nonsense_left: list[str] = field(default_factory=list)

    def read(self, body: str) -> list[tuple[float, str]]:
        """What the customer texts back after reading `body`: (seconds from now, text)
        pairs, in order; none for a text that asks nothing."""
        persona = self.persona
        if not persona.replies or self.stopped or self.in_flight:
            return []
        question = read_question(body)
        if question is None:
            return []
        if question.reask and self._same_question(question):
            delay = self._delay(late=False)
            if self.nonsense_left:
                return self._send([(delay, self.nonsense_left.pop(0))])
            return self._send([(delay, self._answer(question, plain=True))])
        self.asked += 1
        self.question, self.decision = question, self._decide(question)
        self.decision_sent = False
        delay = self._delay(late=self.asked == persona.late_at)
        if persona.stop_after is not None and self.answered >= persona.stop_after:
            self.stopped = True
            return self._send([(delay, "STOP")])
        texts: list[tuple[float, str]] = []
        if self.asked == persona.help_at:
            texts.append((delay, "HELP"))
            delay += self._delay(late=False)
        if self.asked == persona.nonsense_at and persona.nonsense:
            self.nonsense_left = list(persona.nonsense[1:])
            texts.append((delay, persona.nonsense[0]))
        else:
            self.nonsense_left = []
            texts.append((delay, self._answer(question, plain=False)))
        return self._send(texts)

    def sent(self) -> None:
        """One of the texts `read` decided has gone out."""
        self.in_flight -= 1

    # -- deciding -----------------------------------------------------------------
    def _send(self, texts: list[tuple[float, str]]) -> list[tuple[float, str]]:
        self.in_flight += len(texts)
        return texts

    def _answer(self, question: Question, *, plain: bool) -> str:
        """The decided answer, written; counted once per question, however often the
        product asks again."""
        if not self.decision_sent:
            self.decision_sent = True
            self.answered += 1
        return self._write(question, plain=plain)

    def _same_question(self, question: Question) -> bool:
        asked = self.question
        return asked is not None and (asked.kind, asked.low, asked.high) == (
            question.kind,
            question.low,
            question.high,
        )

    def _delay(self, *, late: bool) -> float:
        if late and self.persona.late_seconds is not None:
            return self.persona.late_seconds
        # Whole seconds: Twilio's message dates have no finer resolution.
        return float(round(self.rng.uniform(*self.persona.reply_seconds)))

    @property
    def target(self) -> Target:
        return self.feeling.target

    def _decide(self, question: Question) -> int | bool | str:
        if question.kind == "yesno":
            return self.feeling.agrees(self.rng)
        if question.kind == "comment":
            if self.rng.random() < self.persona.skip_share:
                return "SKIP"
            return self.feeling.comment(question.language, self.rng)
        return self.feeling.value(question.low, question.high, self.rng)

    def _write(self, question: Question, *, plain: bool) -> str:
        """The decision for `question` as the customer types it."""
        form: Form = "plain" if plain else self.rng.choice(self.persona.forms)
        language, decision = question.language, self.decision
        if isinstance(decision, str):
            return decision
        if isinstance(decision, bool):
            word = _YES_NO[language][0 if decision else 1]
            if form == "letter":
                return _YES_NO_LETTER[language][0 if decision else 1]
            if form == "word":
                return word.capitalize()
            if form == "exclaimed":
                return word.capitalize() + "!"
            return word
        value = int(decision)
        if form == "fraction":
            return f"{value}/{question.high}"
        if form == "word" and 0 <= value <= 10:
            word = _NUMBER_WORDS[language].split()[value]
            return word.capitalize() if self.rng.random() < 0.5 else word
        if form == "exclaimed":
            return f"{value}!"
        if form == "out_of":
            return _OUT_OF[language].format(value=value, top=question.high)
        return str(value)


@dataclass(frozen=True)
class TextPersonaMix:
    """A weighted choice of texting personas for customers who were given none.

    The choice is seeded per number, so a customer gets the same persona whatever order
    the texts go out in. Personas named `random_*` are filled in from the same seed:
    how late, which nonsense, after how many answers the STOP comes.
    """

    weighted: tuple[tuple[float, TextPersona], ...]

    def choose(self, seed: int, number: str) -> TextPersona:
        rng = random.Random(f"{seed}:texter:{number}")
        total = sum(weight for weight, _ in self.weighted)
        pick = rng.uniform(0, total)
        for weight, persona in self.weighted:
            pick -= weight
            if pick <= 0:
                return _randomise(persona, rng)
        return _randomise(self.weighted[-1][1], rng)

    @classmethod
    def default(cls) -> TextPersonaMix:
        """Roughly what a survey by text meets: most answer, some late or never, a few
        are confused, text STOP or ask for HELP."""
        return cls(
            (
                (55.0, TextPersona(name="random_answering")),
                (10.0, TextPersona(name="random_late")),
                (17.0, TextPersona.silent()),
                (8.0, TextPersona(name="random_nonsense")),
                (6.0, TextPersona(name="random_stops")),
                (4.0, TextPersona(name="random_help")),
            )
        )


def _randomise(persona: TextPersona, rng: random.Random) -> TextPersona:
    """Fills the `random_*` personas' behaviour from `rng`."""
    if persona.name == "random_late":
        return persona.with_(
            late_seconds=round(rng.uniform(20.0, 40.0) * 3600), late_at=rng.randint(1, 2)
        )
    if persona.name == "random_nonsense":
        return persona.with_(nonsense=(rng.choice(NONSENSE),), nonsense_at=rng.randint(1, 2))
    if persona.name == "random_stops":
        return persona.with_(stop_after=rng.randrange(0, 3))
    if persona.name == "random_help":
        return persona.with_(help_at=rng.randint(1, 2))
    return persona
