"""What aftercall's texts say (sms.wording), and the survey file's SMS settings
(core.survey: `channel`, `[sms]`, per-question `text.<lang>`)."""

from __future__ import annotations

import textwrap
import tomllib
from dataclasses import replace
from datetime import time

import pytest

from core.config import DEFAULT_SURVEYS_DIR
from core.survey import (
    QuestionKind,
    SmsSettings,
    SurveyCatalog,
    SurveyDefinition,
    SurveyError,
)
from sms import wording


@pytest.fixture(scope="module")
def post_call() -> SurveyDefinition:
    return SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")


# The shipped survey's questions as texts: the voice prompt's question, without its
# keypad sentences, and the kind's reply instruction.
POST_CALL_TEXTS = {
    ("nps", "en"): "On a scale from 0 to 10, how likely are you to recommend us to a friend "
    "or colleague? Reply with a number from 0 to 10.",
    ("nps", "es"): "En una escala del 0 al 10, ¿qué probabilidad hay de que nos recomiende a "
    "un amigo o colega? Responda con un número del 0 al 10.",
    ("nps", "pl"): "W skali od 0 do 10, jak bardzo prawdopodobne jest, że polecisz nas "
    "znajomemu? Odpowiedz liczbą od 0 do 10.",
    ("csat", "en"): "How satisfied were you with the help you received today? Reply with a "
    "number from 1 (very dissatisfied) to 5 (very satisfied).",
    ("csat", "es"): "¿Qué tan satisfecho quedó con la ayuda que recibió hoy? Responda con un "
    "número del 1 (muy insatisfecho) al 5 (muy satisfecho).",
    ("csat", "pl"): "Jak bardzo jesteś zadowolony z pomocy, którą otrzymałeś dzisiaj? "
    "Odpowiedz liczbą od 1 (bardzo niezadowolony) do 5 (bardzo zadowolony).",
    ("improve", "en"): "What should we improve? Reply with a few words, or SKIP.",
    ("improve", "es"): "¿Qué deberíamos mejorar? Responda con unas palabras, o SKIP.",
    ("improve", "pl"): "Co powinniśmy poprawić? Odpowiedz kilkoma słowami albo SKIP.",
}


@pytest.mark.parametrize(("key", "language"), sorted(POST_CALL_TEXTS))
def test_the_shipped_survey_s_questions_as_texts(post_call, key, language):
    text = wording.question_text(post_call.question(key), language)
    assert text == POST_CALL_TEXTS[key, language]


@pytest.mark.parametrize("language", ["en", "es", "pl"])
def test_no_text_speaks_of_keys_or_tones(post_call, language):
    keypad = {"press", "say", "tone", "pound", "marque", "diga", "tono", "naciśnij", "powiedz"}
    for question in post_call.questions:
        words = {
            w.strip(".,;?¿!").lower() for w in wording.question_text(question, language).split()
        }
        assert not words & keypad, question.key


@pytest.mark.parametrize(
    ("language", "instruction"),
    [("fr", "Reply with a number from 0 to 10."), ("es-MX", "Responda con un número del 0 al 10.")],
)
def test_a_language_without_wording_falls_back(post_call, language, instruction):
    # No French prompt: the first prompt (English) and the default language's instruction;
    # es-MX is served by es.
    assert wording.question_text(post_call.question("nps"), language).endswith(instruction)


@pytest.mark.parametrize(
    ("kind", "instruction"),
    [
        (QuestionKind.NPS, "Reply with a number from 0 to 10."),
        (
            QuestionKind.CSAT,
            "Reply with a number from 1 (very dissatisfied) to 5 (very satisfied).",
        ),
        (QuestionKind.CES, "Reply with a number from 1 (very difficult) to 7 (very easy)."),
        (QuestionKind.YESNO, "Reply YES or NO."),
        (QuestionKind.COMMENT, "Reply with a few words, or SKIP."),
    ],
)
def test_each_kind_gets_its_reply_instruction(kind, instruction):
    definition = survey(f"""
        [[questions]]
        key = "q"
        kind = "{kind.value}"
        prompt.en = "Did we help? Press 1 for yes, 2 for no."
    """)
    assert wording.question_text(definition.questions[0], "en") == f"Did we help? {instruction}"


def test_a_prompt_that_is_all_keypad_keeps_its_first_sentence():
    definition = survey("""
        [[questions]]
        key = "q"
        kind = "yesno"
        prompt.en = "Would you say we solved it? Press 1 for yes, 2 for no."
    """)
    assert wording.question_text(definition.questions[0], "en") == (
        "Would you say we solved it? Reply YES or NO."
    )


def test_a_question_s_own_text_wins():
    definition = survey("""
        [[questions]]
        key = "resolved"
        kind = "yesno"
        prompt.en = "Was your problem solved? Press 1 for yes, 2 for no."
        prompt.es = "¿Se resolvió su problema? Marque 1 para sí, 2 para no."
        text.en = "Was your problem solved today? Reply YES or NO."
    """)
    question = definition.questions[0]
    assert wording.question_text(question, "en") == (
        "Was your problem solved today? Reply YES or NO."
    )
    # No Spanish text of its own: worded from the Spanish prompt.
    assert wording.question_text(question, "es") == "¿Se resolvió su problema? Responda SÍ o NO."


@pytest.mark.parametrize(
    ("language", "intro"),
    [
        ("en", "Acme: a short survey about your support call. Reply STOP to opt out."),
        (
            "es",
            "Acme: una breve encuesta sobre su llamada de soporte. Responda STOP para no "
            "recibir más.",
        ),
        (
            "pl",
            "Acme: krótka ankieta o Twojej rozmowie z obsługą. Odpowiedz STOP, aby zrezygnować.",
        ),
    ],
)
def test_the_opening_text_names_the_company_and_stop_then_asks(post_call, language, intro):
    acme = replace(post_call, company_name="Acme")
    first = acme.questions[0]
    lines = wording.opening_text(acme, first, language).split("\n")
    assert lines == [intro, POST_CALL_TEXTS["nps", language]]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "help",
            "Acme customer survey after your support call. Reply STOP to opt out of "
            "survey calls and texts.",
        ),
        ("opted_out", "You will get no more survey calls or texts from Acme."),
        ("closed", "This survey has closed. Thank you for your time."),
        ("thanks", "Thank you for your feedback!"),
    ],
)
def test_the_channel_s_own_texts(post_call, name, text):
    assert wording.phrase(replace(post_call, company_name="Acme"), "en", name) == text


@pytest.mark.parametrize("language", ["en", "es", "pl"])
def test_help_names_the_company_and_stop_in_every_language(post_call, language):
    help_text = wording.phrase(replace(post_call, company_name="Acme"), language, "help")
    assert "Acme" in help_text and "STOP" in help_text


def test_the_reask_says_sorry_then_asks_again(post_call):
    assert wording.reask_text(post_call, post_call.question("csat"), "es") == (
        "Perdón, no lo entendimos. " + POST_CALL_TEXTS["csat", "es"]
    )


# -- the survey file ---------------------------------------------------------------------

QUESTIONS = """
[[questions]]
key = "nps"
kind = "nps"
prompt.en = "How likely?"
prompt.es = "¿Qué probabilidad?"
"""


def survey(body: str) -> SurveyDefinition:
    """A survey named "s" from TOML: `body`'s top-level keys and tables, then its own."""
    return SurveyDefinition.from_dict(
        tomllib.loads('name = "s"\n' + textwrap.dedent(body)), "s.toml"
    )


def with_nps(settings: str) -> SurveyDefinition:
    """A one-question survey with `settings` (top-level keys and tables) before it."""
    return survey(textwrap.dedent(settings) + QUESTIONS)


def test_sms_settings_are_read():
    definition = with_nps(
        """
        channel = "sms"
        [sms]
        fallback = true
        hours = "08:00-21:00"
        expire_hours = 168
        """
    )
    assert definition.channel == "sms"
    assert definition.sms == SmsSettings(True, (time(8, 0), time(21, 0)), 168)
    again = SurveyDefinition.from_dict(definition.to_dict())
    assert again == definition


def test_sms_defaults():
    definition = with_nps("")
    assert definition.channel == "voice"
    assert definition.sms == SmsSettings(False, (time(9, 0), time(20, 0)), 24)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ('channel = "sms_fallback"', "channel", "expected one of voice, sms"),
        ('channel = "SMS"', "channel", "expected one of voice, sms"),
        ("channel = 1", "channel", "expected one of voice, sms"),
        ('sms = "yes"', "sms", "expected a table"),
        ('[sms]\nhours = "07:00-20:00"', "sms.hours", "may not be wider than 08:00-21:00"),
        ('[sms]\nhours = "09:00-21:30"', "sms.hours", "may not be wider than 08:00-21:00"),
        ('[sms]\nhours = "07:59-21:00"', "sms.hours", "may not be wider than 08:00-21:00"),
        ('[sms]\nhours = "20:00-09:00"', "sms.hours", "the window must open before it closes"),
        ('[sms]\nhours = "9-5"', "sms.hours", "expected local hours like '09:00-20:00'"),
        ('[sms]\nhours = "25:00-26:00"', "sms.hours", "not a time of day"),
        ("[sms]\nexpire_hours = 0", "sms.expire_hours", "expected a whole number from 1 to 168"),
        ("[sms]\nexpire_hours = 169", "sms.expire_hours", "expected a whole number from 1 to 168"),
        ("[sms]\nexpire_hours = 1.5", "sms.expire_hours", "expected a whole number from 1 to 168"),
        ('[sms]\nexpire_hours = "24"', "sms.expire_hours", "expected a whole number from 1 to 168"),
        ("[sms]\nexpire_hours = true", "sms.expire_hours", "expected a whole number from 1 to 168"),
        ('[sms]\nfallback = "yes"', "sms.fallback", "expected true or false"),
        ("[sms]\nfall_back = true", "sms.fall_back", "unknown field"),
        ("[sms]\ncalling_hours = '09:00-20:00'", "sms.calling_hours", "unknown field"),
    ],
)
def test_bad_sms_settings_are_refused_naming_the_field(body, field, message):
    with pytest.raises(SurveyError) as error:
        with_nps(body)
    assert (error.value.source, error.value.field_path) == ("s.toml", field)
    assert error.value.message.startswith(message)


@pytest.mark.parametrize(
    ("hours", "expire"), [("08:00-21:00", 1), ("09:00-20:00", 168), ("12:00-12:01", 24)]
)
def test_the_limits_themselves_are_accepted(hours, expire):
    definition = with_nps(f'[sms]\nhours = "{hours}"\nexpire_hours = {expire}')
    assert definition.sms.expire_hours == expire


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('text.fr = "Quelle probabilité ?"', "questions[0].text.fr", "no prompt in that language"),
        ('text.english = "How likely?"', "questions[0].text.english", "no prompt in that language"),
        ('text.en = ""', "questions[0].text.en", "expected non-empty text"),
        ('text.en = "   "', "questions[0].text.en", "expected non-empty text"),
        ("text.en = 7", "questions[0].text.en", "expected non-empty text"),
        (f'text.en = "{"x" * 601}"', "questions[0].text.en", "keep a text under 600 characters"),
        ('text = "How likely?"', "questions[0].text", "expected a table of texts by language"),
    ],
)
def test_bad_question_texts_are_refused_naming_the_field(text, field, message):
    with pytest.raises(SurveyError) as error:
        survey(f"""
            [[questions]]
            key = "nps"
            kind = "nps"
            prompt.en = "How likely?"
            prompt.es = "¿Qué probabilidad?"
            {text}
        """)
    assert error.value.field_path == field
    assert error.value.message.startswith(message)


def test_a_600_character_text_is_accepted_and_kept_trimmed():
    definition = survey(f"""
        [[questions]]
        key = "nps"
        kind = "nps"
        prompt.en = "How likely?"
        text.en = " {"x" * 598} "
    """)
    assert definition.questions[0].texts == {"en": "x" * 598}


# The shipped survey's digest as the code before the SMS channel computed it (commit
# 6493a93's core/survey.py, same post-call.toml): a survey that says nothing of SMS keeps
# its version, so no new survey_versions row appears on upgrade.
POST_CALL_DIGEST_BEFORE_SMS = "35d34ef8b33df3ebfff30bed3389dac99b4ba5bcb48e1be74ab43382c1770fdc"


def test_a_survey_without_sms_settings_keeps_its_digest(post_call):
    assert post_call.content_sha256() == POST_CALL_DIGEST_BEFORE_SMS
    stored = post_call.to_dict()
    assert "channel" not in stored and "sms" not in stored
    assert all("text" not in q for q in stored["questions"])


def test_sms_defaults_written_out_keep_the_digest():
    plain = with_nps("")
    spelled = with_nps(
        """
        channel = "voice"
        [sms]
        fallback = false
        hours = "09:00-20:00"
        expire_hours = 24
        """
    )
    assert spelled.content_sha256() == plain.content_sha256()


@pytest.mark.parametrize(
    "body",
    [
        'channel = "sms"',
        "[sms]\nfallback = true",
        '[sms]\nhours = "10:00-20:00"',
        "[sms]\nexpire_hours = 48",
    ],
)
def test_any_sms_setting_is_a_new_version(body):
    assert with_nps(body).content_sha256() != with_nps("").content_sha256()


def test_a_question_text_is_a_new_version():
    plain = with_nps("")
    worded = survey(QUESTIONS + 'text.en = "How likely, 0-10?"\n')
    assert worded.questions[0].texts == {"en": "How likely, 0-10?"}
    assert worded.content_sha256() != plain.content_sha256()
    assert SurveyDefinition.from_dict(worded.to_dict()) == worded
