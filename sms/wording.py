"""What aftercall's texts say, per language: each question worded for a text, the
re-ask, the thanks, and the compliance texts (HELP, the opt-out confirmation).

A question's text is its `text.<language>` from the survey file when it has one; else
its voice prompt without the sentences about the keypad ("Press or say ..."), followed by
the kind's reply instruction ("Reply with a number from 0 to 10."). Pure functions: no
database, no Twilio.
"""

from __future__ import annotations

import re

from core.survey import Question, QuestionKind, SurveyDefinition

DEFAULT_LANGUAGE = "en"

# Sentences of a voice prompt that speak of keys or saying: left out of a text.
_KEYPAD_WORDS = re.compile(
    r"\b(press|say|pound|keypad|tone|marque|diga|díganos|tecla|tono|naciśnij|powiedz|"
    r"wybierz|sygnale|krzyżyk)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")

_INSTRUCTIONS: dict[str, dict[QuestionKind, str]] = {
    "en": {
        QuestionKind.NPS: "Reply with a number from 0 to 10.",
        QuestionKind.CSAT: "Reply with a number from 1 (very dissatisfied) to 5 (very satisfied).",
        QuestionKind.CES: "Reply with a number from 1 (very difficult) to 7 (very easy).",
        QuestionKind.YESNO: "Reply YES or NO.",
        QuestionKind.COMMENT: "Reply with a few words, or SKIP.",
    },
    "es": {
        QuestionKind.NPS: "Responda con un número del 0 al 10.",
        QuestionKind.CSAT: "Responda con un número del 1 (muy insatisfecho) al 5 (muy satisfecho).",
        QuestionKind.CES: "Responda con un número del 1 (muy difícil) al 7 (muy fácil).",
        QuestionKind.YESNO: "Responda SÍ o NO.",
        QuestionKind.COMMENT: "Responda con unas palabras, o SKIP.",
    },
    "pl": {
        QuestionKind.NPS: "Odpowiedz liczbą od 0 do 10.",
        QuestionKind.CSAT: "Odpowiedz liczbą od 1 (bardzo niezadowolony) do 5 (bardzo zadowolony).",
        QuestionKind.CES: "Odpowiedz liczbą od 1 (bardzo trudno) do 7 (bardzo łatwo).",
        QuestionKind.YESNO: "Odpowiedz TAK lub NIE.",
        QuestionKind.COMMENT: "Odpowiedz kilkoma słowami albo SKIP.",
    },
}

_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "intro": "{company}: a short survey about your support call. Reply STOP to opt out.",
        "reask": "Sorry, we did not understand that.",
        "thanks": "Thank you for your feedback!",
        "help": "{company} customer survey after your support call. Reply STOP to opt out "
        "of survey calls and texts.",
        "opted_out": "You will get no more survey calls or texts from {company}.",
        "closed": "This survey has closed. Thank you for your time.",
        "company": "Customer support",
    },
    "es": {
        "intro": "{company}: una breve encuesta sobre su llamada de soporte. Responda STOP "
        "para no recibir más.",
        "reask": "Perdón, no lo entendimos.",
        "thanks": "¡Gracias por su opinión!",
        "help": "Encuesta de {company} tras su llamada de soporte. Responda STOP para no "
        "recibir más llamadas ni mensajes de encuesta.",
        "opted_out": "No recibirá más llamadas ni mensajes de encuesta de {company}.",
        "closed": "Esta encuesta ha terminado. Gracias por su tiempo.",
        "company": "Atención al cliente",
    },
    "pl": {
        "intro": "{company}: krótka ankieta o Twojej rozmowie z obsługą. Odpowiedz STOP, "
        "aby zrezygnować.",
        "reask": "Przepraszamy, nie zrozumieliśmy.",
        "thanks": "Dziękujemy za opinię!",
        "help": "Ankieta {company} po rozmowie z obsługą. Odpowiedz STOP, aby nie dostawać "
        "więcej telefonów ani wiadomości z ankietą.",
        "opted_out": "Nie dostaniesz już telefonów ani wiadomości z ankietą od {company}.",
        "closed": "Ta ankieta jest już zamknięta. Dziękujemy.",
        "company": "Obsługa klienta",
    },
}


def _language(language: str) -> str:
    code = (language or "").lower()[:2]
    return code if code in _PHRASES else DEFAULT_LANGUAGE


def phrase(
    definition: SurveyDefinition, language: str, name: str, company: str | None = None
) -> str:
    """One of the channel's own texts, naming the survey's company (else `company`, the
    deployment's COMPANY_NAME, as the voice greeting does)."""
    words = _PHRASES[_language(language)]
    named = definition.company_name or company or words["company"]
    return words[name].format(company=named)


def question_text(question: Question, language: str) -> str:
    """The question as a text: the survey's own wording, or the voice prompt's question
    with the kind's reply instruction."""
    own = question.texts.get(language)
    if own:
        return own
    prompt = question.prompts.get(language) or next(iter(question.prompts.values()))
    sentences = [s for s in _SENTENCE_END.split(prompt.strip()) if s]
    kept = [s for s in sentences if not _KEYPAD_WORDS.search(s)] or sentences[:1]
    return " ".join([*kept, _INSTRUCTIONS[_language(language)][question.kind]])


def opening_text(
    definition: SurveyDefinition, question: Question, language: str, company: str | None = None
) -> str:
    """The first text: who is asking, how to opt out (CTIA's messaging principles ask
    both of a first message), and the first question."""
    intro = phrase(definition, language, "intro", company)
    return intro + "\n" + question_text(question, language)


def reask_text(definition: SurveyDefinition, question: Question, language: str) -> str:
    return phrase(definition, language, "reask") + " " + question_text(question, language)
