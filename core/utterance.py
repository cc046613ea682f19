"""What a customer said out loud, or typed in a text, means for a question.

Pure, deterministic functions over the `SpeechResult` and `Confidence` that Twilio posts
for `<Gather input="dtmf speech">` (issue 16), and over an SMS reply's body (the sms
channel reads it with no confidence); no Flask, no database. The words per language are
in `core.utterance_words`. The rules, in the order they apply:

1. Only the first MAX_SPEECH_CHARS of the result are kept and considered. Nothing
   (empty, whitespace) is NO_INPUT, as with the keypad.
2. An opt-out phrase ("stop calling me", "no me llamen", "nie dzwońcie") anywhere is
   an opt-out, exactly like the `*` key, whatever the confidence: a wrongly honoured
   opt-out costs one survey, an ignored one is a do-not-call complaint.
3. A result whose confidence is below CONFIDENCE_FLOOR is not trusted: asked again.
4. The words are folded (case, accents, Polish ł, punctuation) and read as numbers
   ("nine", "9", "nueve", "dziewiątkę"), scale labels ("very satisfied") and yes/no.
   "9 out of 10" / "nueve de diez" / "dziewięć na dziesięć" / "9/10" is 9; "on a scale
   of 1 to 10" is the question repeated, not an answer. A word a recogniser writes for
   a number ("for", "too", "tree") counts only when it stands alone ("I'd say for").
5. It is an answer only when exactly one value is heard (repeating it is fine) and it
   is on the scale; two values ("seven or eight", "nine, no, eight"), a fraction
   ("nine and a half"), a value off the scale, or nothing recognisable is asked again.
6. A negated answer ("not satisfied", "no estoy satisfecho", "I wouldn't give it a
   ten") is asked again rather than guessed: "not satisfied" may mean 1 or 2 and "not
   very satisfied" anything from 2 to 4, and one more question costs less than a score
   the customer did not give. The exception is Polish "nie zadowolony", which sounds
   exactly like the label "niezadowolony" (dissatisfied) and is read as it.
7. "One zero" is not 10: two values, asked again. A spoken "ten" comes back as "ten"
   or "10", and in speech "one... zero" is as likely a correction as a keypad habit.
8. An answer with a known confidence below CONFIRM_BELOW is confirmed before it is
   recorded ("I heard nine, is that right?"); `confirmation()` reads the reply.

This module does not render TwiML, count retries or record answers: the webhooks do,
treating NotUnderstood like a wrong key and SaidOptOut like the `*` key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import cache

from core.flow import Rejection
from core.survey import QuestionKind
from core.utterance_words import WORDS, LanguageWords, spelled_numbers

CONFIDENCE_FLOOR = 0.3
CONFIRM_BELOW = 0.6
MAX_SPEECH_CHARS = 200

# Twilio's limits on <Gather hints> (warning 13330): at most 500 comma-separated
# entries of at most 100 characters each.
MAX_HINTS = 500
MAX_HINT_CHARS = 100

DEFAULT_LANGUAGE = "en"
# How many words before an answer a negation reaches: "I wouldn't give it a ten".
NEGATION_REACH = 4
# A digit string longer than this is no score (and int() of a huge string is slow).
MAX_NUMBER_DIGITS = 4

_APOSTROPHES = dict.fromkeys(map(ord, "'’‘ʼ`´"), None)
# NFKD leaves these letters whole; customers and recognisers write them either way.
_UNDECOMPOSED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ß": "ss"})
_TOKEN = re.compile(r"[a-z]+|[0-9]+|/")
# A minus sign (hyphen-minus or U+2212) starting a number: at the start or after a space.
_MINUS = re.compile(r"(?:(?<=\s)|^)[-\u2212](?=\d)")
_CONFIDENCE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{0,12})?|\.[0-9]{1,12}")


@dataclass(frozen=True)
class Heard:
    """An answer on the question's scale."""

    value: int
    transcript: str
    confidence: float | None
    confirm: bool


@dataclass(frozen=True)
class NotUnderstood:
    """Asked again like a wrong key, within the same retry limit."""

    reason: Rejection
    transcript: str


@dataclass(frozen=True)
class SaidOptOut:
    """The customer asked not to be called again: the same as the `*` key."""

    transcript: str


SpokenAnswer = Heard | NotUnderstood | SaidOptOut


def parse_confidence(raw: str | None) -> float | None:
    """Twilio's `Confidence` ("0.9312") as a number from 0 to 1, or None.

    None when it is missing, empty, not a plain decimal (no signs, exponents, "nan" or
    "inf") or outside 0..1.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not _CONFIDENCE.fullmatch(text):
        return None
    value = float(text)
    return value if 0.0 <= value <= 1.0 else None


def interpret(
    kind: QuestionKind, language: str, speech: str | None, confidence: str | None
) -> SpokenAnswer:
    """What `speech` (Twilio's SpeechResult) answers to a question of `kind`."""
    scale = kind.scale
    if scale is None:
        raise ValueError(f"{kind} questions are recorded, not gathered")
    code = language_code(language)
    transcript = _kept(speech)
    if not transcript:
        return NotUnderstood(Rejection.NO_INPUT, transcript)
    tokens = _tokens(transcript)
    if _says_opt_out(tokens, code):
        return SaidOptOut(transcript)
    trust = parse_confidence(confidence)
    if trust is not None and trust < CONFIDENCE_FLOOR:
        return NotUnderstood(Rejection.INVALID, transcript)
    low, high = scale
    value = _one_value(tokens, _answer_table(kind, code), scale)
    if value is None or not low <= value <= high:
        return NotUnderstood(Rejection.INVALID, transcript)
    confirm = trust is not None and trust < CONFIRM_BELOW
    return Heard(value, transcript, trust, confirm)


def confirmation(language: str, speech: str | None, digits: str | None) -> bool | None:
    """The reply to "I heard nine, is that right? Press 1 or say yes, 2 or say no".

    True for yes ("1", "yes", "that's right"), False for no ("2", "no", "wrong"), None
    for anything else or nothing. Keys win over speech when both came. "Yes, nine" is
    yes: the number repeated is not a second answer. An opt-out ("*" or a phrase) is
    None here: the caller checks it with `ivr.keypad` / `interpret()` first.
    """
    keys = (digits or "").strip().rstrip("#")
    if keys:
        return {"1": True, "2": False}.get(keys)
    tokens = _tokens(_kept(speech))
    value = _one_value(tokens, _confirmation_table(language_code(language)), (1, 2))
    return {1: True, 2: False}.get(value) if value is not None else None


def hints(kind: QuestionKind, language: str) -> str:
    """Twilio `<Gather hints>` for a question of `kind`: what its answers sound like.

    The scale's numbers as words, the kind's labels (CSAT, CES) or yes/no, and the
    common opt-out phrases, so the recogniser favours them.
    """
    scale = kind.scale
    if scale is None:
        raise ValueError(f"{kind} questions are recorded, not gathered")
    code = language_code(language)
    words = WORDS[code]
    low, high = scale
    spelled = spelled_numbers(code)
    phrases = [spelled[n] for n in range(low, high + 1)]
    for value in range(low, high + 1):
        phrases.extend(words.labels.get(kind, {}).get(value, ()))
    phrases.extend(words.opt_out_hints)
    kept: list[str] = []
    for phrase in phrases:
        # Twilio wants the words of a phrase separated by spaces ("twenty-one" is not
        # a valid hint) and commas separate hints.
        hint = " ".join(phrase.replace("-", " ").replace(",", " ").split())
        if hint and len(hint) <= MAX_HINT_CHARS and hint not in kept:
            kept.append(hint)
    return ", ".join(kept[:MAX_HINTS])


# Reading the words.


class _Tier(Enum):
    ANSWER = "answer"  # a number word, digits, a label, yes/no
    SOUND_ALIKE = "sound_alike"  # "for": an answer only when it stands alone
    NO_ANSWER = "no_answer"  # "I don't know", "not bad": heard, means nothing
    FRACTION = "fraction"  # "half": the utterance is no whole point


@dataclass(frozen=True)
class _Meaning:
    tier: _Tier
    value: int | None = None
    number: bool = False  # may take part in "X out of Y" / "from 1 to Y"


@dataclass(frozen=True)
class _Table:
    phrases: dict[tuple[str, ...], _Meaning]
    longest: int
    digits: _Tier  # what a bare digit string is worth
    words: LanguageWords
    fillers: frozenset[str]  # folded like the tokens they are compared with
    negations: frozenset[str]


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    meaning: _Meaning


def language_code(language: str) -> str:
    """The language whose words read an answer: `language`'s, else English."""
    code = (language or "").strip().lower()[:2] if isinstance(language, str) else ""
    return code if code in WORDS else DEFAULT_LANGUAGE


def _kept(speech: str | None) -> str:
    """The transcript as kept: its first MAX_SPEECH_CHARS, trimmed, storable.

    A lone surrogate cannot be encoded as UTF-8 and PostgreSQL refuses NUL in text, so
    both become U+FFFD rather than failing the webhook that records the transcript.
    """
    if not isinstance(speech, str):
        return ""
    text = speech[:MAX_SPEECH_CHARS]
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text):
        text = "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)
    return text.strip()


def _tokens(text: str) -> tuple[str, ...]:
    """Lower-case ASCII words, digit runs and "/" ("Dziewięć/10!" -> dziewiec / 10). A
    minus sign before a number ("-5", typed) is the word "minus": no score is negative."""
    folded = text.casefold().translate(_APOSTROPHES).translate(_UNDECOMPOSED)
    folded = _MINUS.sub(" minus ", folded)
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c)
    )
    return tuple(_TOKEN.findall(plain.casefold()))


@cache
def _phrase(text: str) -> tuple[str, ...]:
    """A phrase of `core.utterance_words` as tokens (only ever called with that data)."""
    return _tokens(text)


@cache
def _opt_out_phrases(code: str) -> tuple[str, ...]:
    return tuple(f" {' '.join(_phrase(p))} " for p in WORDS[code].opt_outs)


def says_opt_out(text: str | None, language: str) -> bool:
    """Whether `text` holds one of the language's opt-out phrases ("stop calling me"):
    the SMS channel asks it of a typed comment, which is otherwise kept as written."""
    return _says_opt_out(_tokens(_kept(text)), language_code(language))


def _says_opt_out(tokens: tuple[str, ...], code: str) -> bool:
    said = " " + " ".join(tokens) + " "
    return any(phrase in said for phrase in _opt_out_phrases(code))


@cache
def _answer_table(kind: QuestionKind, code: str) -> _Table:
    words = WORDS[code]
    phrases: dict[tuple[str, ...], _Meaning] = {}
    # Later entries win: the weakest meanings go in first.
    for text in words.no_answer:
        phrases[_phrase(text)] = _Meaning(_Tier.NO_ANSWER)
    for text in words.fractions:
        phrases[_phrase(text)] = _Meaning(_Tier.FRACTION)
    for value, forms in words.sound_alikes.items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.SOUND_ALIKE, value, number=True)
    for value, text in spelled_numbers(code).items():
        phrases[_phrase(text)] = _Meaning(_Tier.ANSWER, value, number=True)
    for value, forms in words.more_numbers.items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.ANSWER, value, number=True)
    for value, forms in words.labels.get(kind, {}).items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.ANSWER, value)
    return _table(phrases, _Tier.ANSWER, code)


@cache
def _confirmation_table(code: str) -> _Table:
    words = WORDS[code]
    phrases: dict[tuple[str, ...], _Meaning] = {}
    for text in words.no_answer:
        phrases[_phrase(text)] = _Meaning(_Tier.NO_ANSWER)
    # "One" (press 1) and "two" are yes and no only on their own: in "yes, nine" or
    # "no, it was two" the number is the score being corrected, not the reply.
    for value, forms in words.sound_alikes.items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.SOUND_ALIKE, value)
    for value, text in spelled_numbers(code).items():
        phrases[_phrase(text)] = _Meaning(_Tier.SOUND_ALIKE, value)
    for value, forms in words.more_numbers.items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.SOUND_ALIKE, value)
    for value, forms in words.labels[QuestionKind.YESNO].items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.ANSWER, value)
    for answer, forms in words.confirmations.items():
        for text in forms:
            phrases[_phrase(text)] = _Meaning(_Tier.ANSWER, 1 if answer else 2)
    return _table(phrases, _Tier.SOUND_ALIKE, code)


def _table(phrases: dict[tuple[str, ...], _Meaning], digits: _Tier, code: str) -> _Table:
    phrases.pop((), None)
    words = WORDS[code]
    return _Table(
        phrases=phrases,
        longest=max(map(len, phrases), default=1),
        digits=digits,
        words=words,
        fillers=_word_set(words.fillers),
        negations=_word_set(words.negations),
    )


def _word_set(words: frozenset[str]) -> frozenset[str]:
    return frozenset(token for word in words for token in _phrase(word))


def _match_at(tokens: tuple[str, ...], i: int, table: _Table) -> _Match | None:
    for size in range(min(table.longest, len(tokens) - i), 0, -1):
        meaning = table.phrases.get(tokens[i : i + size])
        if meaning is not None:
            return _Match(i, i + size, meaning)
    token = tokens[i]
    if token.isdigit():
        # "000" or "2024" is no score: anything that long stands for "off the scale".
        value = int(token) if len(token) <= MAX_NUMBER_DIGITS else 10**MAX_NUMBER_DIGITS
        return _Match(i, i + 1, _Meaning(table.digits, value, number=True))
    return None


def _scan(tokens: tuple[str, ...], table: _Table) -> list[_Match]:
    """The phrases in `tokens`, longest first at each word, left to right."""
    matches: list[_Match] = []
    i = 0
    while i < len(tokens):
        match = _match_at(tokens, i, table)
        if match is None:
            i += 1
        else:
            matches.append(match)
            i = match.end
    return matches


def _one_value(tokens: tuple[str, ...], table: _Table, scale: tuple[int, int]) -> int | None:
    """The single value `tokens` stand for on `scale`'s table, or None."""
    matches = _scan(tokens, table)
    covered = [False] * len(tokens)
    for match in matches:
        covered[match.start : match.end] = [True] * (match.end - match.start)
    dropped = _question_echoes(tokens, matches, table.words, scale, covered)
    kept = [m for m in matches if id(m) not in dropped]

    if any(m.meaning.tier is _Tier.FRACTION for m in kept):
        return None
    scored = [m for m in kept if m.meaning.tier in (_Tier.ANSWER, _Tier.SOUND_ALIKE)]
    negations = table.negations
    for match in scored:
        before = range(max(0, match.start - NEGATION_REACH), match.start)
        if any(not covered[i] and tokens[i] in negations for i in before):
            return None

    values = {m.meaning.value for m in scored if m.meaning.tier is _Tier.ANSWER}
    if not values:
        # A sound-alike alone ("For.", "I'd say tree") is the number it sounds like;
        # beside other words ("I have to go") it is just a word.
        free = (tokens[i] for i in range(len(tokens)) if not covered[i])
        if all(token in table.fillers for token in free):
            values = {m.meaning.value for m in scored}
    if len(values) != 1:
        return None
    return values.pop()


def _question_echoes(
    tokens: tuple[str, ...],
    matches: list[_Match],
    words: LanguageWords,
    scale: tuple[int, int],
    covered: list[bool],
) -> set[int]:
    """The ids of matches that repeat the scale rather than answer on it.

    "9 out of 10" keeps 9 and drops "10"; "from 1 to 10" drops both ends. Marks the
    connecting words as covered.
    """
    low, high = scale
    dropped: set[int] = set()
    ends = {m.end: m for m in matches if m.meaning.number}
    for match in matches:
        meaning = match.meaning
        if not (meaning.number and meaning.tier is _Tier.ANSWER and meaning.value == high):
            continue
        for connectors, is_span in ((words.out_of, False), (words.scale_span, True)):
            for connector in connectors:
                link = _phrase(connector)
                start = match.start - len(link)
                if start < 0 or tokens[start : match.start] != link or start not in ends:
                    continue
                before = ends[start]
                if is_span and before.meaning.value not in (low, 1):
                    continue
                dropped.add(id(match))
                if is_span:
                    dropped.add(id(before))
                # A sound-alike inside the link ("to" in "one to ten") is the link.
                dropped.update(id(m) for m in matches if start <= m.start and m.end <= match.start)
                covered[start : match.start] = [True] * len(link)
                break
            if id(match) in dropped:
                break
    return dropped
