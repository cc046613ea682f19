"""The survey editor's form <-> survey dict mapping (aftercall.web.dashboard.survey_form),
without Flask: every field of a survey goes through the form and back unchanged, a bad
value is refused by the survey parser at the field path of its input, and the editing
moves (add, remove, move a question, add or remove a language) keep what was typed."""

from __future__ import annotations

import pytest

from aftercall.web.dashboard import survey_form
from aftercall.web.dashboard.survey_form import (
    FIELDS,
    SurveyForm,
    apply_action,
    check_form,
    error_anchor,
    form_from_definition,
    input_id,
    parse_form,
)
from core.config import DEFAULT_SURVEYS_DIR
from core.survey import SurveyCatalog, SurveyDefinition

# A survey that sets every field SurveyDefinition holds to something not its default.
EVERY_FIELD = {
    "name": "every-field",
    "title": "Every field set",
    "default_language": "es",
    "max_tries": 2,
    "leave_voicemail": True,
    "company_name": "Acme Care",
    "callback_number": "+18005550199",
    "channel": "sms",
    "phrases": {
        "en": {"greeting": "Hi, {company} here. Press star to stop. Call {callback}."},
        "es": {"thanks": "¡Gracias!"},
    },
    "dialing": {
        "sample_percent": 12.5,
        "fatigue_days": 14,
        "delay_minutes": 0,
        "valid_hours": 48,
        "calling_hours": "10:00-19:30",
        "allow_sundays": True,
        "max_attempts": 2,
        "retry_minutes": [15, 45, 90],
        "retry_voicemail": True,
        "callback_after_in_call_hangup": True,
    },
    "sms": {"fallback": True, "hours": "09:30-20:00", "expire_hours": 12},
    "follow_up": {
        "when": ["nps <= 5", "effort < 3"],
        "comment": True,
        "opt_out_after_low_score": True,
        "sla_hours": 24,
    },
    "questions": [
        {"key": "nps", "kind": "nps", "prompt": {"en": "Recommend us?", "es": "¿Nos recomienda?"},
         "keys_only": True, "text": {"en": "Recommend us, 0-10?"}},
        {"key": "happy", "kind": "csat", "prompt": {"en": "Happy?", "es": "¿Contento?"},
         "when": "nps >= 7"},
        {"key": "effort", "kind": "ces", "prompt": {"en": "Easy?", "es": "¿Fácil?"}},
        {"key": "solved", "kind": "yesno", "prompt": {"en": "Solved?", "es": "¿Resuelto?"},
         "text": {"es": "¿Resuelto? Sí o no."}},
        {"key": "why", "kind": "comment", "prompt": {"en": "Why?", "es": "¿Por qué?"},
         "when": "nps <= 6", "max_seconds": 120},
    ],
}  # fmt: skip


def every_field() -> SurveyDefinition:
    return SurveyDefinition.from_dict(EVERY_FIELD)


def post_call() -> SurveyDefinition:
    return SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")


def posted(form: SurveyForm) -> tuple[dict[str, str], list[str]]:
    """What a browser posts for the form as the editor renders it."""
    data: dict[str, str] = {}
    for path, spec in FIELDS.items():
        if spec.kind != "flag":
            data[path] = form.value(path)
        elif form.checked(path):
            data[path] = "on"
    for index, question in enumerate(form.questions):
        base = f"questions[{index}]"
        data.update({f"{base}.key": question.key, f"{base}.kind": question.kind,
                     f"{base}.when": question.when, f"{base}.max_seconds": question.max_seconds})  # fmt: skip
        if question.keys_only:
            data[f"{base}.keys_only"] = "on"
        for lang in form.languages:
            data[f"{base}.prompt.{lang}"] = question.prompts.get(lang, "")
            data[f"{base}.text.{lang}"] = question.texts.get(lang, "")
    for lang in form.phrase_languages:
        for name in survey_form.PHRASE_NAMES:
            data[f"phrases.{lang}.{name}"] = form.phrases.get(lang, {}).get(name, "")
    data["new_language"] = form.new_language
    return data, list(form.languages)


def through_the_form(form: SurveyForm) -> SurveyForm:
    return parse_form(*posted(form))


@pytest.mark.parametrize(
    "definition", [every_field(), post_call()], ids=["every-field", "post-call"]
)
def test_every_field_goes_through_the_form_unchanged(definition):
    checked = check_form(through_the_form(form_from_definition(definition)))
    assert checked.errors == ()
    assert checked.definition == definition
    assert checked.definition.to_dict() == definition.to_dict()
    assert checked.definition.content_sha256() == definition.content_sha256()


def test_the_blank_form_is_a_survey_once_its_name_and_prompt_are_typed():
    form = survey_form.blank_form()
    assert [e.field_path for e in check_form(form).errors] == ["name"]
    form.values["name"] = "fresh"
    assert [e.field_path for e in check_form(form).errors] == ["questions[0].prompt.en"]
    form.questions[0].prompts["en"] = "How likely are you to recommend us?"
    definition = check_form(form).definition
    assert definition is not None
    assert definition.dialing == every_field().dialing.__class__()  # the defaults


def edited(path: str, value: str) -> SurveyForm:
    data, languages = posted(form_from_definition(every_field()))
    if value == "<unchecked>":
        data.pop(path)
    else:
        data[path] = value
    return parse_form(data, languages)


@pytest.mark.parametrize(
    ("path", "value", "error_path", "message"),
    [
        ("name", "", "name", "use lowercase letters"),
        ("name", "Bad Name", "name", "use lowercase letters"),
        ("max_tries", "ten", "max_tries", "whole number from 1 to 5"),
        ("max_tries", "9", "max_tries", "whole number from 1 to 5"),
        ("max_tries", "2.5", "max_tries", "whole number from 1 to 5"),
        ("default_language", "de", "default_language", "'de' has no prompts"),
        ("channel", "fax", "channel", "expected one of voice, sms"),
        ("dialing.sample_percent", "101", "dialing.sample_percent", "number from 0 to 100"),
        ("dialing.sample_percent", "nan", "dialing.sample_percent", "number from 0 to 100"),
        ("dialing.calling_hours", "07:00-20:00", "dialing.calling_hours", "08:00-21:00"),
        ("dialing.calling_hours", "9 to 5", "dialing.calling_hours", "like '09:00-20:00'"),
        ("dialing.max_attempts", "4", "dialing.max_attempts", "from 1 to 3"),
        ("dialing.retry_minutes", "30, soon", "dialing.retry_minutes", "list of minutes"),
        ("dialing.retry_minutes", "", "dialing.retry_minutes", "list of minutes"),
        ("sms.hours", "20:00-09:00", "sms.hours", "open before it closes"),
        ("sms.expire_hours", "0", "sms.expire_hours", "1 to 168"),
        ("follow_up.when", "nps <= 5\nnobody > 1", "follow_up.when[1]", "not an earlier question"),
        ("follow_up.sla_hours", "-1", "follow_up.sla_hours", "1 to 2160"),
        ("questions[1].key", "nps", "questions[1].key", "duplicate question key"),
        ("questions[1].key", "1st", "questions[1].key", "starting with a letter"),
        ("questions[1].kind", "stars", "questions[1].kind", "unknown kind 'stars'"),
        ("questions[1].when", "why <= 3", "questions[1].when", "'why' is not an earlier"),
        ("questions[1].when", "sometimes", "questions[1].when", "<question key> <op>"),
        ("questions[4].when", "why <= 3", "questions[4].when", "'why' is not an earlier"),
        ("questions[4].max_seconds", "3", "questions[4].max_seconds", "from 5 to 300"),
        ("questions[4].keys_only", "on", "questions[4].keys_only", "takes no keys"),
        ("questions[2].prompt.es", "  ", "questions[2].prompt.es", "non-empty text"),
        ("questions[0].text.en", "x" * 601, "questions[0].text.en", "600 characters"),
        ("questions[0].prompt.en", "x" * 1001, "questions[0].prompt.en", "1000 characters"),
        ("phrases.en.greeting", "Hi {customer}", "phrases.en.greeting", "bad placeholder"),
        ("title", "t" * 5000, "title", "200 characters"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_at_its_field(path, value, error_path, message):
    form = edited(path, value)
    checked = check_form(form)
    assert checked.definition is None
    [error] = checked.errors[:1]
    assert (error.field_path, message in error.message) == (error_path, True), error
    assert error_anchor(error.field_path, form.field_paths()) == path


def test_a_value_past_the_hard_limit_is_cut_on_reading():
    form = edited("title", "t" * 50_000)
    assert len(form.value("title")) == survey_form.HARD_LIMIT


def test_names_the_form_does_not_have_are_ignored():
    data, languages = posted(form_from_definition(every_field()))
    data.update({
        "questions[999].key": "x", "questions[5]": "x", "questions[x].key": "x",
        "phrases.en.no_such_phrase": "x", "phrases.EN.greeting": "x", "dialing.nonsense": "1",
        "evil": "<script>", "questions[0].nonsense": "1",
    })  # fmt: skip
    checked = check_form(parse_form(data, [*languages, "english", "en", "xx-yy"]))
    assert checked.definition == every_field()


def test_a_question_left_without_fields_is_not_posted_at_all():
    data, languages = posted(form_from_definition(post_call()))
    form = parse_form({k: v for k, v in data.items() if not k.startswith("questions[")}, languages)
    assert form.questions == []
    assert [(e.field_path, e.message) for e in check_form(form).errors] == [
        ("questions", "a survey needs at least one question")
    ]


def test_adding_a_question_keeps_what_was_typed():
    form = form_from_definition(post_call())
    form.values["title"] = "typed, not saved"
    form.questions[0].prompts["es"] = "escrito"
    added, problem, focus = apply_action(form, "add_question")
    assert problem is None and focus == "questions[3].key"
    assert [q.key for q in added.questions] == ["nps", "csat", "improve", ""]
    assert added.questions[3].prompts == {"en": "", "es": "", "pl": ""}
    assert added.value("title") == "typed, not saved"
    assert added.questions[0].prompts["es"] == "escrito"
    # And through a browser's post and back.
    assert through_the_form(added).questions == added.questions


def test_moving_and_removing_questions():
    form = form_from_definition(post_call())
    down, _, focus = apply_action(form, "move_down:0")
    assert [q.key for q in down.questions] == [
        "csat",
        "nps",
        "improve",
    ] and focus == "questions[1].key"
    up, _, _ = apply_action(down, "move_up:1")
    assert [q.key for q in up.questions] == ["nps", "csat", "improve"]
    assert apply_action(form, "move_up:0")[0].questions == form.questions  # already first
    removed, _, focus = apply_action(form, "remove_question:1")
    assert [q.key for q in removed.questions] == ["nps", "improve"] and focus == "questions[1].key"
    for nonsense in ("remove_question:7", "remove_question:x", "move_down:-1", "explode:1"):
        assert apply_action(form, nonsense)[0] == form


@pytest.mark.parametrize(
    ("typed", "problem"),
    [("", "two-letter"), ("english", "two-letter"), ("e1", "two-letter"), ("es", "already has")],
)
def test_a_language_that_cannot_be_added(typed, problem):
    form = form_from_definition(post_call())
    form.new_language = typed
    same, error, focus = apply_action(form, "add_language")
    assert same == form and focus == "new_language"
    assert error is not None and error.field_path == "new_language" and problem in error.message


def test_adding_and_removing_a_language():
    form = form_from_definition(post_call())
    form.new_language = " DE "
    added, error, focus = apply_action(form, "add_language")
    assert error is None and focus == "questions[0].prompt.de"
    assert added.languages == ["en", "es", "pl", "de"] and added.new_language == ""
    assert all(q.prompts["de"] == "" for q in added.questions)
    assert [e.field_path for e in check_form(added).errors] == ["questions[0].prompt.de"]
    removed, _, _ = apply_action(added, "remove_language:en")
    assert removed.languages == ["es", "pl", "de"]
    assert removed.value("default_language") == "es"
    assert all("en" not in q.prompts for q in removed.questions)


def test_error_anchors_and_ids():
    paths = form_from_definition(every_field()).field_paths()
    assert error_anchor("questions[2].prompt", paths) == "questions[2].prompt.es"
    assert error_anchor("follow_up.when[1]", paths) == "follow_up.when"
    assert error_anchor("questions", paths) == "questions"
    assert error_anchor("nothing.like.it", paths) is None
    assert input_id("questions[1].prompt.es") == "f-questions-1-prompt-es"
    ids = [input_id(path) for path in paths]
    assert len(ids) == len(set(ids))
