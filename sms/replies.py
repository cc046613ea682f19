"""What a customer's text means: a keyword (STOP, START, HELP and their kin), or an
answer to the question the conversation is at.

Keywords follow the carriers' and Twilio's rules: the whole message is the keyword
("stop", " STOP ", "Stop." all are; "stop texting me" is not the keyword, though it
is an opt-out phrase, which the answer reader honours). English keywords are Twilio's
defaults (twilio.com/docs/messaging/tutorials/advanced-opt-out); the Spanish and Polish
ones are the words carriers and Twilio's localised opt-out handling accept. Twilio
itself acts on its English keywords before the text reaches us (and says so in
`OptOutType`); aftercall records them all the same and acts on every listed word,
since a local word reaches it without Twilio having blocked anything.

An answer is read by core.utterance, as a spoken one is, with no confidence: "9",
"9/10", "nine", "10!", "nueve", "9 out of 10" are 9 or 10; an emoji, two numbers, a
number off the scale or nothing is not understood. A yes/no question also takes "y"
and "n". A comment question takes any text, except "SKIP", as the comment.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from core import utterance
from core.flow import Rejection
from core.survey import QuestionKind

# The longest body kept (Twilio's own limit on a message is 1,600 characters).
MAX_BODY = 1600
# A typed comment is kept up to this length (the transcript column is text).
MAX_COMMENT = 1600


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


_KEYWORDS: dict[Keyword, frozenset[str]] = {
    Keyword.STOP: frozenset(
        {
            # Twilio's defaults, and the CTIA's list.
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            # Spanish and Polish.
            "PARAR",
            "BAJA",
            "CANCELAR",
            "DETENER",
            "ALTO",
            "REZYGNUJE",
            "WYPISZ",
            "KONIEC",
        }
    ),
    Keyword.START: frozenset({"START", "UNSTOP", "YES", "SUBSCRIBE", "ALTA", "INICIAR"}),
    Keyword.HELP: frozenset({"HELP", "INFO", "AYUDA", "POMOC"}),
}
# Twilio's OptOutType values, posted with a keyword it handled itself.
_OPT_OUT_TYPES = {"STOP": Keyword.STOP, "START": Keyword.START, "HELP": Keyword.HELP}
# Opt-out phrases of a text ("stop texting me", "no more messages"), beside the spoken
# ones core.utterance knows ("stop calling me"), which a text may use too.
# Whole requests only, at the start of the text (as core.utterance's spoken phrases are
# whole requests): "I never got the message" is a complaint, not an opt-out.
_TEXT_OPT_OUT = re.compile(
    r"^(please |pls |)(stop|quit|don'?t|do not|never)\W{0,3}(ever\W{1,3}|)"
    r"(text|texting|message|messaging|sms|contact)(ing|)\W{1,3}(me|us)\b"
    r"|^(please |pls |)(no more|stop the|stop all|stop these|stop your) "
    r"(texts|text messages|messages|sms)\W*$"
    r"|^(unsubscribe|remove) me\b"
    r"|^(por favor |)no me (escriban|manden|envien)\b|^no mas mensajes\b"
    r"|^(prosze |)nie (piszcie|wysylajcie)\b",
    re.IGNORECASE,
)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
# NFKD leaves these letters whole; customers write them either way.
_UNDECOMPOSED = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss"})
_SKIP = frozenset({"SKIP", "SALTAR", "POMIN"})
_YES_NO = {"Y": 1, "N": 2, "S": 1, "T": 1}  # yes, no, sí, tak


@dataclass(frozen=True)
class Answer:
    value: int | None  # None: a comment
    text: str  # what was kept of the reply


@dataclass(frozen=True)
class NotUnderstood:
    reason: Rejection
    text: str


@dataclass(frozen=True)
class OptOut:
    """The customer asked to hear no more (a phrase, not the STOP keyword)."""

    text: str


Reply = Answer | NotUnderstood | OptOut


def _folded(body: str) -> str:
    """Upper case, accents off, surrounding spaces and punctuation off: "¡Baja!" is BAJA."""
    text = body.strip().translate(_APOSTROPHES).translate(_UNDECOMPOSED)
    text = unicodedata.normalize("NFKD", text.upper())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"^[\W_]+|[\W_]+$", "", text)


def keyword(body: str | None, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword a text is, if it is one; Twilio's own word for it (OptOutType) wins.

    START (and YES, one of Twilio's opt-in words) re-subscribes only a number that is
    opted out; for anyone else it is a reply like any other (YES answers a yes/no
    question): the conversation decides (sms.conversation).
    """
    if opt_out_type and opt_out_type.upper() in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[opt_out_type.upper()]
    word = _folded(body or "")
    for meaning, words in _KEYWORDS.items():
        if word in words:
            return meaning
    return None


def interpret(kind: QuestionKind, language: str, body: str | None) -> Reply:
    """What a reply (not a keyword) answers to a question of `kind`."""
    text = (body or "")[:MAX_BODY].strip()
    if kind is QuestionKind.COMMENT:
        if _opts_out(text, language):
            return OptOut(storable(text)[:200])
        if not text:
            return NotUnderstood(Rejection.NO_INPUT, text)
        if _folded(text) in _SKIP:
            return Answer(None, "")
        return Answer(None, storable(text)[:MAX_COMMENT])
    if _opts_out(text, language):
        return OptOut(storable(text)[:200])
    if kind is QuestionKind.YESNO and _folded(text) in _YES_NO:
        return Answer(_YES_NO[_folded(text)], storable(text))
    result = utterance.interpret(kind, language, text, None)
    if isinstance(result, utterance.SaidOptOut):
        return OptOut(result.transcript)
    if isinstance(result, utterance.NotUnderstood):
        return NotUnderstood(result.reason, storable(text)[:200])
    return Answer(result.value, result.transcript)


def _opts_out(text: str, language: str) -> bool:
    """A text's opt-out phrase ("stop texting me"), or a spoken one ("stop calling me"),
    which a comment would otherwise keep as written."""
    return bool(_TEXT_OPT_OUT.search(_folded(text).lower())) or utterance.says_opt_out(
        text, language
    )


def storable(text: str) -> str:
    """`text` as the database can keep it: NUL and lone surrogates become U+FFFD."""
    # PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates.
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)
