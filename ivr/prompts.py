"""The words aftercall itself says on a call, in English, Spanish and Polish.

Question prompts come from the survey file; everything around them (greeting, "that is
not a valid answer", thanks, the opt-out confirmation, the voicemail message) is here,
and a survey can override any phrase per language in its `[phrases.<lang>]` table.

The greeting follows 47 CFR 64.1200(b) for artificial-voice calls: it names the company
first and, right after (well within two seconds), says how to opt out with a key that
can never be an answer. The voicemail message names the company and a number to call
to opt out, as 64.1200(b)(3) asks of a message left on a machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from string import Formatter

import phonenumbers

from core.survey import QuestionKind, SurveyDefinition, SurveyError


@dataclass(frozen=True)
class Voice:
    language: str  # the <Say language=...> tag
    voice: str  # the <Say voice=...> name (Amazon Polly through Twilio)


VOICES = {
    "en": Voice("en-US", "Polly.Joanna"),
    "es": Voice("es-US", "Polly.Lupe"),
    "pl": Voice("pl-PL", "Polly.Ewa"),
}

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "expects_nps_spoken": (
            "Please press or say a number from 0 to 10. For 10, press 1 then 0, or say ten."
        ),
        "expects_csat_spoken": "Please press or say a number from 1 to 5.",
        "expects_ces_spoken": "Please press or say a number from 1 to 7.",
        "expects_yesno_spoken": "Press 1 or say yes; press 2 or say no.",
        "confirm_answer": "I heard {answer}. Is that right? Press 1 or say yes; press 2 or say no.",
        "misheard": "Sorry about that. Let's try again.",
        "yes": "yes",
        "no": "no",
        "greeting_in_call": (
            "Thank you for staying on the line. This is a short automated survey from "
            "{company} about the call you just had. To stop these surveys, press star at "
            "any time."
        ),
        "already_surveyed": "Thank you, we already have your answers. Goodbye.",
        "released": "Thank you for calling {company}. Goodbye.",
        "greeting": (
            "Hello, this is {company}. To stop these calls, press star at any time. "
            "This is a short automated survey about your recent call with us. "
            "If you have any questions, call us at {callback}."
        ),
        "no_input": "Sorry, we did not get an answer.",
        "invalid": "Sorry, that is not a valid answer.",
        "expects_nps": "Please press a number from 0 to 10. For 10, press 1 then 0.",
        "expects_csat": "Please press a number from 1 to 5.",
        "expects_ces": "Please press a number from 1 to 7.",
        "expects_yesno": "Press 1 for yes, or 2 for no.",
        "moving_on": "Let's move on.",
        "opted_out": (
            "You will not receive survey calls from {company} again. Thank you, goodbye."
        ),
        "thanks": "Thank you for your feedback. Goodbye.",
        "voicemail": (
            "Hello, this is {company}, calling with a short survey about your recent "
            "call with us. To stop these calls, call {callback}. Thank you, goodbye."
        ),
        "unavailable": "Sorry, this survey is not available right now. Goodbye.",
    },
    "es": {
        "expects_nps_spoken": (
            "Marque o diga un número del 0 al 10. Para 10, marque 1 y luego 0, o diga diez."
        ),
        "expects_csat_spoken": "Marque o diga un número del 1 al 5.",
        "expects_ces_spoken": "Marque o diga un número del 1 al 7.",
        "expects_yesno_spoken": "Marque 1 o diga sí; marque 2 o diga no.",
        "confirm_answer": (
            "Entendí {answer}. ¿Es correcto? Marque 1 o diga sí; marque 2 o diga no."
        ),
        "misheard": "Disculpe. Intentémoslo de nuevo.",
        "yes": "sí",
        "no": "no",
        "greeting_in_call": (
            "Gracias por permanecer en la línea. Esta es una breve encuesta automática de "
            "{company} sobre la llamada que acaba de tener. Para no recibir más "
            "encuestas, marque asterisco en cualquier momento."
        ),
        "already_surveyed": "Gracias, ya tenemos sus respuestas. Adiós.",
        "released": "Gracias por llamar a {company}. Adiós.",
        "greeting": (
            "Hola, le llama {company}. Para no recibir más llamadas, marque asterisco "
            "en cualquier momento. Esta es una breve encuesta automática sobre su "
            "llamada reciente. Si tiene preguntas, llámenos al {callback}."
        ),
        "no_input": "Lo sentimos, no recibimos su respuesta.",
        "invalid": "Lo sentimos, esa respuesta no es válida.",
        "expects_nps": "Marque un número del 0 al 10. Para 10, marque 1 y luego 0.",
        "expects_csat": "Marque un número del 1 al 5.",
        "expects_ces": "Marque un número del 1 al 7.",
        "expects_yesno": "Marque 1 para sí o 2 para no.",
        "moving_on": "Continuemos.",
        "opted_out": "No recibirá más encuestas de {company}. Gracias, adiós.",
        "thanks": "Gracias por su opinión. Adiós.",
        "voicemail": (
            "Hola, le llama {company} con una breve encuesta sobre su llamada reciente. "
            "Para no recibir más llamadas, llame al {callback}. Gracias, adiós."
        ),
        "unavailable": "Lo sentimos, esta encuesta no está disponible ahora. Adiós.",
    },
    "pl": {
        "expects_nps_spoken": (
            "Wybierz lub powiedz liczbę od 0 do 10. Aby wybrać 10, naciśnij 1, a potem 0, "
            "albo powiedz dziesięć."
        ),
        "expects_csat_spoken": "Wybierz lub powiedz liczbę od 1 do 5.",
        "expects_ces_spoken": "Wybierz lub powiedz liczbę od 1 do 7.",
        "expects_yesno_spoken": "Naciśnij 1 lub powiedz tak; naciśnij 2 lub powiedz nie.",
        "confirm_answer": (
            "Usłyszałem: {answer}. Czy to prawda? Naciśnij 1 lub powiedz tak; "
            "naciśnij 2 lub powiedz nie."
        ),
        "misheard": "Przepraszamy. Spróbujmy jeszcze raz.",
        "yes": "tak",
        "no": "nie",
        "greeting_in_call": (
            "Dziękujemy za pozostanie na linii. To krótka automatyczna ankieta {company} "
            "o rozmowie, którą właśnie zakończyłeś. Aby nie otrzymywać więcej ankiet, "
            "naciśnij gwiazdkę w dowolnym momencie."
        ),
        "already_surveyed": "Dziękujemy, mamy już Twoje odpowiedzi. Do widzenia.",
        "released": "Dziękujemy za telefon do {company}. Do widzenia.",
        "greeting": (
            "Dzień dobry, tu {company}. Aby nie otrzymywać więcej takich połączeń, "
            "naciśnij gwiazdkę w dowolnym momencie. To krótka automatyczna ankieta o "
            "Twojej niedawnej rozmowie z nami. W razie pytań zadzwoń pod numer {callback}."
        ),
        "no_input": "Niestety nie otrzymaliśmy odpowiedzi.",
        "invalid": "Niestety to nie jest prawidłowa odpowiedź.",
        "expects_nps": "Wybierz liczbę od 0 do 10. Aby wybrać 10, naciśnij 1, a potem 0.",
        "expects_csat": "Wybierz liczbę od 1 do 5.",
        "expects_ces": "Wybierz liczbę od 1 do 7.",
        "expects_yesno": "Naciśnij 1, aby odpowiedzieć tak, lub 2, aby odpowiedzieć nie.",
        "moving_on": "Przejdźmy dalej.",
        "opted_out": "Nie otrzymasz już ankiet od {company}. Dziękujemy, do widzenia.",
        "thanks": "Dziękujemy za opinię. Do widzenia.",
        "voicemail": (
            "Dzień dobry, tu {company} z krótką ankietą o Twojej niedawnej rozmowie. "
            "Aby nie otrzymywać więcej połączeń, zadzwoń pod numer {callback}. "
            "Dziękujemy, do widzenia."
        ),
        "unavailable": "Niestety ankieta nie jest teraz dostępna. Do widzenia.",
    },
}


@dataclass(frozen=True)
class Phrasebook:
    """The phrases for one call: a language, the survey's overrides, the company."""

    language: str
    overrides: dict[str, str]
    company: str
    callback: str

    @classmethod
    def for_call(
        cls, definition: SurveyDefinition, language: str, company: str, callback: str
    ) -> Phrasebook:
        return cls(
            language=language,
            overrides=dict(definition.phrases.get(language, {})),
            company=definition.company_name or company,
            callback=spoken_number(definition.callback_number or callback),
        )

    @property
    def voice(self) -> Voice:
        return VOICES.get(self.language, VOICES["en"])

    def say(self, name: str, answer: str = "") -> str:
        template = self.overrides.get(name) or builtin_phrase(self.language, name)
        return template.format(company=self.company, callback=self.callback, answer=answer)

    def expects(self, kind: QuestionKind, *, spoken: bool = False) -> str:
        """What a valid answer is: "press a number ...", or, where the question takes
        spoken answers, "press or say a number ..."."""
        return self.say(f"expects_{kind.value}_spoken" if spoken else f"expects_{kind.value}")

    def spoken_value(self, kind: QuestionKind, value: int) -> str:
        """An answer as the confirmation says it back: yes or no, else the number."""
        if kind is QuestionKind.YESNO:
            return self.say("yes" if value == 1 else "no")
        return str(value)


def builtin_phrase(language: str, name: str) -> str:
    return PHRASES.get(language, PHRASES["en"]).get(name) or PHRASES["en"][name]


@lru_cache(maxsize=64)
def spoken_number(e164: str) -> str:
    """A phone number as text-to-speech should read it: digit by digit, in the groups
    people write it in ("(800) 555-0100" -> "8 0 0, 5 5 5, 0 1 0 0"), not as a quantity."""
    try:
        written = phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    except phonenumbers.NumberParseException:
        written = e164
    groups = re.findall(r"\d+", written)
    return ", ".join(" ".join(group) for group in groups)


def check_phrases(definition: SurveyDefinition, source: str) -> None:
    """Fail at start, naming the field, if a survey overrides a phrase wrongly."""

    for language, table in definition.phrases.items():
        for name, text in table.items():
            field = f"phrases.{language}.{name}"
            if name not in PHRASES["en"]:
                known = ", ".join(sorted(PHRASES["en"]))
                raise SurveyError(source, field, f"unknown phrase (known: {known})")
            problem = _placeholder_problem(text)
            if problem is not None:
                raise SurveyError(
                    source, field, f"{problem}; use {{company}}, {{callback}} or {{answer}}"
                )


_PLACEHOLDERS = frozenset({"company", "callback", "answer"})


def _placeholder_problem(text: str) -> str | None:
    """What is wrong with a phrase's placeholders, if anything. Only the bare names are
    allowed: str.format would also follow `{company.upper}` or `{company[0]}` and obey
    a width (`{company:>99999999}`), which a phrase has no use for and which could raise
    anything, or allocate without bound, on every call that says it."""
    try:
        fields = list(Formatter().parse(text))
    except ValueError as exc:
        return f"bad placeholder ({exc})"
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in _PLACEHOLDERS or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            return f"bad placeholder {shown[:60]}"
    return None
