"""What a text asks of the customer who receives it, read the way a customer reads it.

A texting persona (`phonesim.texter`) replies only to a question, so this module reads
a text's reply instruction, the sentence that tells the customer how to answer: a
number range ("Reply with a number from 0 to 10.", "Responda con un número del 1 (muy
insatisfecho) al 5 (muy satisfecho).", "Odpowiedz liczbą od 1 do 7."), a yes/no choice
("Reply YES or NO.", "Responda SÍ o NO.", "Odpowiedz TAK lub NIE.") or free words
("Reply with a few words, or SKIP."). Ranges are read generically (any "from A to B",
"del A al B", "od A do B" starting at 0 or 1 or right after "number"/"scale", or a bare
"0-10" / "1 to 5" in a text that asks something), so a survey's own wording works too,
not only the product's standard sentences; opening hours ("from 9 to 17") and phone
numbers are not scales.

A text with none of these (a thank-you, a HELP reply, an opt-out confirmation, "This
survey has closed") asks nothing. A text that begins "Sorry" / "Perdón" /
"Przepraszamy" and asks something is a re-ask: the sender did not understand the last
reply. The language is the one the instruction is written in (en, es or pl), so the
customer answers in it.

A call's question is heard, not read (`read_spoken`): the prompts a `<Gather>` plays,
worded by the survey's author ("Press or say 1 for very dissatisfied, up to 5 for very
satisfied.") or by the product ("Please press a number from 1 to 5.", "I heard nine. Is
that right? Press 1 or say yes; press 2 or say no."). It finds the same ranges, a range
told by its ends ("1 ... up to 5", "1 ... hasta 5", "1 ... do 5" after "press"/"say"),
and yes/no told by keys ("press 1 ... yes ... 2 ... no"), with the keys it names; a
question that asks to confirm what was heard is marked so.

This module does not decide what to answer: that is the persona's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["scale", "yesno", "comment"]
LANGUAGES = ("en", "es", "pl")

# "from 1 (very dissatisfied) to 5 (very satisfied)": a label in brackets may follow
# either end. The connective pair names the language.
_LABEL = r"(?:\s*\([^)]{0,60}\))?"
_RANGE = re.compile(
    rf"\b(?P<from>from|del|de|od)\s+(?P<low>\d{{1,3}}){_LABEL}\s+"
    rf"(?P<to>to|al|a|do)\s+(?P<high>\d{{1,3}}){_LABEL}",
    re.IGNORECASE,
)
_RANGE_LANGUAGE = {"from": "en", "del": "es", "de": "es", "od": "pl"}
# "0-10", "1-5" (or an en dash), "0 to 10", "1 al 5", "1 do 7" without a "from": only
# from 0 or 1 and in a text that asks something, so that "open 9-5" or a phone number
# is not a question.
_BARE_RANGE = re.compile(
    r"(?<![\d/:.+-])(?P<low>[01])\s*(?:-|–|\bto\b|\bal\b|\bdo\b)\s*(?P<high>\d{1,3})(?![\d/:.-])",
    re.IGNORECASE,
)
# A scale starts at 0 or 1, unless the text says it is a number or a scale it asks
# for just before: "from 9 to 17" is opening hours, "a number from 2 to 9" a scale.
_SCALE_WORD = re.compile(r"\b(number|score|scale|número|numero|escala|liczbą|skali)\b", re.I)
_ASKS = re.compile(r"\?|\b(reply|answer|text back|responda|responde|odpowiedz)\b", re.IGNORECASE)
_YES_NO = re.compile(
    r"\b(?P<yes>yes|sí|si|tak)\b\s*(?:or|o|lub|albo|/)\s*\b(?P<no>no|nie)\b",
    re.IGNORECASE,
)
_YES_LANGUAGE = {"yes": "en", "sí": "es", "si": "es", "tak": "pl"}
_COMMENT = re.compile(
    r"\b(?P<words>(?:a\s+)?few\s+words|unas\s+palabras|kilkoma\s+słowami)\b", re.IGNORECASE
)
_WORDS_LANGUAGE = {"few words": "en", "unas palabras": "es", "kilkoma słowami": "pl"}
_REASK = re.compile(r"^\W*(sorry|perdón|perdon|przepraszamy)\b", re.IGNORECASE)
# Words that say which language a text is in when its instruction alone does not.
_MARKERS = {
    "en": frozenset({"reply", "with", "number", "from", "or", "words", "please", "your"}),
    "es": frozenset({"responda", "responde", "con", "número", "del", "al", "palabras", "su"}),
    "pl": frozenset({"odpowiedz", "liczbą", "od", "lub", "albo", "słowami", "twojej"}),
}


# "Press or say 1 for very dissatisfied, up to 5 for very satisfied": a range told by its
# two ends, the first right after a word for pressing or saying.
_PRESS = r"(?:press|say|marque|diga|naciśnij|powiedz|wybierz)"
_ENDS = re.compile(
    rf"\b{_PRESS}\s+(?P<low>[01])\b[^.;?!\d]{{1,70}}?\b(?P<to>up\s+to|to|hasta|al|do)\s+"
    r"(?P<high>\d{1,2})\b",
    re.IGNORECASE,
)
# "Press 1 or say yes; press 2 or say no", "Marque 1 para sí o 2 para no", "Naciśnij 1,
# aby odpowiedzieć tak, lub 2, aby odpowiedzieć nie".
_KEYED_YES_NO = re.compile(
    r"\b(?P<yes_key>\d)\b[^.?!\d]{0,40}?\b(?P<yes>yes|sí|si|tak)\b"
    r"[^.?!\d]{0,30}?\b(?P<no_key>\d)\b[^.?!\d]{0,40}?\b(?P<no>no|nie)\b",
    re.IGNORECASE,
)
# The language a range told by its ends is said in, by the word before its top.
_ENDS_LANGUAGE = {"hasta": "es", "al": "es", "do": "pl"}
_CONFIRMS = re.compile(
    r"\b(is that right|is that correct|did you say)|es correcto|czy to prawda", re.IGNORECASE
)


@dataclass(frozen=True)
class Question:
    """What a text asks: a number on a scale from `low` to `high`, yes or no, or a few
    words; in `language`; `reask` when it asks again after a reply it did not take."""

    kind: Kind
    language: str
    low: int = 0
    high: int = 0
    reask: bool = False
    # A yes/no question heard in a call: the keys that say yes and no, and whether it
    # asks to confirm what was heard ("I heard nine. Is that right?").
    yes_key: str = "1"
    no_key: str = "2"
    confirms: bool = False


def read_question(body: str) -> Question | None:
    """The question `body` asks, or None when it asks nothing a customer would answer.

    When a text holds more than one instruction, the last one wins: the product's
    texts end with theirs, after any greeting or opt-out notice.
    """
    found: list[tuple[int, Question]] = []
    reask = bool(_REASK.match(body))
    for match in _RANGE.finditer(body):
        low, high = int(match["low"]), int(match["high"])
        said = _SCALE_WORD.search(body, max(0, match.start() - 25), match.start())
        if low < high and (low <= 1 or said):
            language = _RANGE_LANGUAGE[match["from"].lower()]
            found.append((match.end(), Question("scale", language, low, high, reask)))
    if not found and _ASKS.search(body):
        for match in _BARE_RANGE.finditer(body):
            low, high = int(match["low"]), int(match["high"])
            if low < high:
                found.append((match.end(), Question("scale", language_of(body), low, high, reask)))
    for match in _YES_NO.finditer(body):
        language = _YES_LANGUAGE[match["yes"].lower()]
        found.append((match.end(), Question("yesno", language, reask=reask)))
    for match in _COMMENT.finditer(body):
        words = match["words"]
        if words:
            phrase = " ".join(words.lower().split()).removeprefix("a ")
            found.append((match.end(), Question("comment", _WORDS_LANGUAGE[phrase], reask=reask)))
    if not found and re.search(r"\bskip\b", body, re.IGNORECASE):
        # "or SKIP" alone offers to skip a question that asks for words; beside a
        # scale or yes/no it only offers to skip that question.
        found.append((0, Question("comment", language_of(body), reask=reask)))
    if not found:
        return None
    return max(found, key=lambda item: item[0])[1]


def read_spoken(text: str, language: str | None = None) -> Question | None:
    """The question a call's prompts `text` ask, or None when they ask nothing a caller
    would answer with a key or a word (a greeting alone, a goodbye). `language` (en, es
    or pl), when the `<Say>` names it, wins over the one the words suggest. The last
    instruction wins, as in `read_question`: a re-ask ends with what it wants."""
    found: list[tuple[int, Question]] = []
    reask = bool(_REASK.match(text))
    for match in _KEYED_YES_NO.finditer(text):
        question = Question(
            "yesno",
            language or _YES_LANGUAGE[match["yes"].lower()],
            reask=reask,
            yes_key=match["yes_key"],
            no_key=match["no_key"],
            confirms=bool(_CONFIRMS.search(text)),
        )
        found.append((match.end(), question))
    scales = [
        (match.end(), int(match["low"]), int(match["high"]), _RANGE_LANGUAGE[match["from"].lower()])
        for match in _RANGE.finditer(text)
        if int(match["low"]) <= 1
        or _SCALE_WORD.search(text, max(0, match.start() - 25), match.start())
    ]
    if not scales:
        scales = [
            (m.end(), int(m["low"]), int(m["high"]), _ENDS_LANGUAGE.get(m["to"].lower(), "en"))
            for m in _ENDS.finditer(text)
        ]
    found += [
        (end, Question("scale", language or said_in, low, high, reask))
        for end, low, high, said_in in scales
        if low < high
    ]
    if not found:
        return None
    return max(found, key=lambda item: item[0])[1]


def language_of(body: str) -> str:
    """en, es or pl: the language with the most marker words in `body` (en on a tie,
    Twilio's and the product's default)."""
    words = re.findall(r"\w+", body.lower())
    counts = {language: sum(word in _MARKERS[language] for word in words) for language in LANGUAGES}
    best = max(counts.values())
    return next(language for language in LANGUAGES if counts[language] == best)
