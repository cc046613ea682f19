import textwrap
import tomllib
from pathlib import Path

import pytest

from core.config import DEFAULT_SURVEYS_DIR
from core.survey import (
    QuestionKind,
    SurveyCatalog,
    SurveyDefinition,
    SurveyError,
    UnknownSurvey,
    load_survey_file,
)

GOOD = """
name = "{name}"
[[questions]]
key = "nps"
kind = "nps"
prompt.en = "How likely?"
prompt.es = "¿Qué probabilidad?"
[[questions]]
key = "why"
kind = "comment"
when = "nps <= 6"
prompt.en = "Why?"
prompt.es = "¿Por qué?"
"""


def write(tmp_path: Path, body: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_shipped_post_call_survey():
    definition = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
    assert [q.kind for q in definition.questions] == [
        QuestionKind.NPS,
        QuestionKind.CSAT,
        QuestionKind.COMMENT,
    ]
    comment = definition.questions[2]
    assert comment.when is not None
    assert comment.when.holds({"nps": 6}) and not comment.when.holds({"nps": 7})
    assert not comment.when.holds({})  # NPS skipped: no comment question
    assert definition.languages == {"en", "es", "pl"}


def test_definition_round_trips_through_its_stored_form(tmp_path):
    definition = load_survey_file(write(tmp_path, GOOD.format(name="s")))
    again = SurveyDefinition.from_dict(definition.to_dict())
    assert again == definition
    assert again.content_sha256() == definition.content_sha256()


def test_language_fallback(tmp_path):
    definition = load_survey_file(write(tmp_path, GOOD.format(name="s")))
    assert definition.language_for("es-MX") == "es"
    assert definition.language_for("ES") == "es"
    assert definition.language_for("de") == "en"
    assert definition.language_for(None) == "en"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("name = 'x'\nquestions = 3", "questions", "at least one question"),
        ("name = 'Bad Name'\n" + GOOD.split("\n", 2)[2], "name", "lowercase"),
        (
            GOOD.format(name="s").replace('kind = "nps"', 'kind = "stars"'),
            "questions[0].kind",
            "unknown kind 'stars'",
        ),
        (
            GOOD.format(name="s").replace('key = "why"', 'key = "nps"'),
            "questions[1].key",
            "duplicate",
        ),
        (
            GOOD.format(name="s").replace("nps <= 6", "csat <= 2"),
            "questions[1].when",
            "not an earlier question",
        ),
        (
            GOOD.format(name="s").replace("nps <= 6", "nps is low"),
            "questions[1].when",
            "expected '<question key>",
        ),
        (
            GOOD.format(name="s").replace('prompt.es = "¿Por qué?"', ""),
            "questions[1].prompt",
            "languages",
        ),
        (
            GOOD.format(name="s").replace('prompt.en = "Why?"', 'prompt.en = "  "'),
            "questions[1].prompt.en",
            "non-empty",
        ),
        (GOOD.format(name="s") + "\ncolour = 'red'", "questions[1].colour", "unknown field"),
        ("colour = 'red'\n" + GOOD.format(name="s"), "colour", "unknown field"),
        ('name = "s"\nmax_tries = 0\n' + GOOD.split("\n", 2)[2], "max_tries", "1 to 5"),
        (
            'name = "s"\ndefault_language = "de"\n' + GOOD.split("\n", 2)[2],
            "default_language",
            "no prompts",
        ),
        (
            GOOD.format(name="s").replace('kind = "comment"', 'kind = "comment"\nmax_seconds = 1'),
            "questions[1].max_seconds",
            "5 to 300",
        ),
        (
            GOOD.format(name="s").replace('kind = "nps"', 'kind = "nps"\nmax_seconds = 30'),
            "questions[0].max_seconds",
            "only comment",
        ),
    ],
)
def test_invalid_files_name_the_file_and_field(tmp_path, body, field, message):
    path = write(tmp_path, body)
    with pytest.raises(SurveyError) as error:
        load_survey_file(path)
    assert error.value.source == "s.toml"
    assert error.value.field_path == field
    assert message in error.value.message
    assert str(error.value).startswith(f"s.toml: {field}: ")


def test_broken_toml_names_the_file(tmp_path):
    with pytest.raises(SurveyError, match=r"^s.toml: not valid TOML"):
        load_survey_file(write(tmp_path, "name = "))


def test_name_must_match_file(tmp_path):
    with pytest.raises(SurveyError, match="does not match the file name"):
        load_survey_file(write(tmp_path, GOOD.format(name="other")))


def test_catalog_unknown_survey(tmp_path):
    write(tmp_path, GOOD.format(name="s"))
    catalog = SurveyCatalog.from_directory(tmp_path)
    assert catalog.names() == ["s"]
    with pytest.raises(UnknownSurvey):
        catalog.get("nope")


@pytest.mark.parametrize(
    ("dialing", "field", "message"),
    [
        ('calling_hours = "07:00-20:00"', "dialing.calling_hours", "08:00-21:00"),
        ('calling_hours = "09:00-21:30"', "dialing.calling_hours", "08:00-21:00"),
        ('calling_hours = "20:00-09:00"', "dialing.calling_hours", "open before"),
        ('calling_hours = "9-5"', "dialing.calling_hours", "like '09:00-20:00'"),
        ("max_attempts = 5", "dialing.max_attempts", "1 to 3"),
        ("sample_percent = 120", "dialing.sample_percent", "0 to 100"),
        ("retry_minutes = []", "dialing.retry_minutes", "list of minutes"),
        ("retry_minutes = [0]", "dialing.retry_minutes", "list of minutes"),
        ("allow_sundays = 1", "dialing.allow_sundays", "true or false"),
        ("redial = true", "dialing.redial", "unknown field"),
    ],
)
def test_dialing_rules_are_validated(tmp_path, dialing, field, message):
    path = write(tmp_path, GOOD.format(name="s") + f"\n[dialing]\n{dialing}\n")
    with pytest.raises(SurveyError) as error:
        load_survey_file(path)
    assert error.value.field_path == field
    assert message in error.value.message


def test_dialing_rules_are_part_of_the_version(tmp_path):
    plain = load_survey_file(write(tmp_path, GOOD.format(name="s")))
    narrower = load_survey_file(
        write(tmp_path, GOOD.format(name="s") + '\n[dialing]\ncalling_hours = "10:00-18:00"\n')
    )
    assert narrower.dialing.calling_hours[0].hour == 10
    assert plain.content_sha256() != narrower.content_sha256()
    assert SurveyDefinition.from_dict(narrower.to_dict()) == narrower


def test_a_keys_only_survey_marks_its_scale_questions_and_round_trips():
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    data = tomllib.loads(source.replace("max_tries = 3\n", "max_tries = 3\nkeys_only = true\n"))
    definition = SurveyDefinition.from_dict(data)
    assert [(q.key, q.keys_only, q.takes_speech) for q in definition.questions] == [
        ("nps", True, False), ("csat", True, False), ("improve", False, False),
    ]  # fmt: skip
    assert SurveyDefinition.from_dict(definition.to_dict()) == definition


def test_a_survey_that_never_mentions_keys_only_keeps_its_digest():
    """Speech came after many surveys were stored: their versions must not change."""
    definition = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
    assert all("keys_only" not in q for q in definition.to_dict()["questions"])
    assert all(q.takes_speech for q in definition.questions if q.kind.scale is not None)


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [("survey", '"yes"', "keys_only: expected true or false"),
     ("comment", "true", "a comment is recorded: it takes no keys")],
)  # fmt: skip
def test_keys_only_is_validated(where, value, problem):
    source = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    if where == "survey":
        source = source.replace("max_tries = 3\n", f"max_tries = 3\nkeys_only = {value}\n")
    else:
        source = source.replace("max_seconds = 60\n", f"max_seconds = 60\nkeys_only = {value}\n")
    with pytest.raises(SurveyError, match=problem):
        SurveyDefinition.from_dict(tomllib.loads(source))
