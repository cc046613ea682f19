"""The survey editor's form: posted HTML fields <-> the dict `SurveyDefinition.from_dict`
takes, and back from a definition.

Every input is named by its survey field path (`name`, `questions[1].prompt.es`,
`dialing.calling_hours`, `phrases.es.greeting`), so the `field_path` of a `SurveyError`
names the input it is about; `error_anchor` finds that input (or the nearest one: the
first prompt for `questions[2].prompt`, the conditions box for `follow_up.when[1]`).

Reading a posted form never fails. Names the form does not have are ignored, values are
cut at `HARD_LIMIT` characters (so a page never echoes a megabyte back), and a value
that is not what its field wants ("ten" as a number) is handed on as it was typed, for
the survey parser to refuse with its own message at its own field path: validation is
`core.survey`'s and `ivr.prompts.check_phrases`'s, the same as `aftercall surveys check`
runs, never a second copy. Only the lengths are checked here (`length_errors`), since a
TOML file has no form field to overflow.

The editing moves that work without JavaScript (add, remove, move a question, add or
remove a language) are `apply_action`: the form comes back with one more or one less,
and nothing typed is lost.

No Flask here: the blueprint (aftercall.web.dashboard.survey_editor) hands in the
posted fields as plain mappings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.survey import (
    CHANNELS,
    LANGUAGE_PATTERN,
    QuestionKind,
    SurveyDefinition,
    SurveyError,
)
from ivr.prompts import PHRASES, check_phrases

SOURCE = "form"
MAX_QUESTIONS = 30
MAX_LANGUAGES = 8
# Any value is cut here on reading; each field's own limit (shorter) is an error to fix.
HARD_LIMIT = 10_000
PROMPT_LIMIT = 1000
TEXT_LIMIT = 600  # core.survey refuses longer SMS texts itself
PHRASE_LIMIT = 1000
PHRASE_NAMES = tuple(PHRASES["en"])
KINDS = tuple(kind.value for kind in QuestionKind)
KIND_ANSWERS = {
    kind.value: (f"keys {kind.scale[0]} to {kind.scale[1]}" if kind.scale else "a recorded comment")
    for kind in QuestionKind
}
ACTIONS = ("save", "preview", "add_question", "add_language")
INDEXED_ACTIONS = ("remove_question", "move_up", "move_down")
_QUESTION_FIELD = re.compile(r"^questions\[(\d{1,3})\]\.(.+)$")
_PHRASE_FIELD = re.compile(r"^phrases\.([a-z]{2})\.([a-z_]{1,40})$")
_NUMBER = re.compile(r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$")
# A question's index in an editing move: ASCII digits (str.isdigit() takes "²" too).
_INDEX = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class Field:
    """One survey-wide input: its field path, label, how its text becomes a value."""

    path: str
    label: str
    kind: str  # text | whole | number | flag | choice | language | lines | minutes
    limit: int = 200
    hint: str = ""
    choices: tuple[str, ...] = ()


SECTIONS: tuple[tuple[str, str, tuple[Field, ...]], ...] = (
    (
        "survey",
        "The survey",
        (
            Field("name", "Name", "text", 100,
                  "Lowercase letters, digits, '-' and '_'. Intake and reports use it; "
                  "it cannot change once saved."),
            Field("title", "Title", "text", 200, "For people reading the dashboard."),
            Field("default_language", "Default language", "language",
                  hint="Used for a customer whose language the survey does not have."),
            Field("max_tries", "Tries per question", "whole", 5,
                  "How many times a question is asked when the answer is missing or not "
                  "valid: 1 to 5."),
            Field("leave_voicemail", "Leave a message on answering machines", "flag"),
            Field("company_name", "Company name said on the call", "text", 200,
                  "Empty: the app's COMPANY_NAME."),
            Field("callback_number", "Callback number said on the call", "text", 40,
                  "Empty: the app's CALLBACK_NUMBER."),
            Field("channel", "Default channel", "choice", choices=CHANNELS,
                  hint="How a request goes out unless intake says otherwise."),
        ),
    ),
    (
        "dialing",
        "Dialing rules",
        (
            Field("dialing.sample_percent", "Sample percent", "number", 12,
                  "The share of finished support calls that get a survey: 0 to 100."),
            Field("dialing.fatigue_days", "Re-survey fatigue, days", "whole", 12,
                  "No second survey to the same number within this many days: 0 to 365."),
            Field("dialing.delay_minutes", "Delay after the support call, minutes", "whole",
                  12, "0 to 1440."),
            Field("dialing.valid_hours", "Valid for, hours", "whole", 12,
                  "A request not called within this many hours expires: 1 to 168."),
            Field("dialing.calling_hours", "Calling hours", "text", 20,
                  "Local to the customer, like 09:00-20:00; never wider than 08:00-21:00."),
            Field("dialing.allow_sundays", "Call on Sundays", "flag"),
            Field("dialing.max_attempts", "Calls per request", "whole", 12, "1 to 3."),
            Field("dialing.retry_minutes", "Minutes before each retry", "minutes", 200,
                  "Before call 2, 3, ...; separated by commas, the last one repeats "
                  "(e.g. 30, 120)."),
            Field("dialing.retry_voicemail", "Call again after reaching an answering machine",
                  "flag"),
            Field("dialing.callback_after_in_call_hangup",
                  "In-call surveys: call back a customer who hung up before the first answer",
                  "flag"),
        ),
    ),
    (
        "sms",
        "Texts",
        (
            Field("sms.fallback", "Text the survey after the last unanswered call", "flag"),
            Field("sms.hours", "Messaging hours", "text", 20,
                  "Local, like 09:00-20:00; never wider than 08:00-21:00."),
            Field("sms.expire_hours", "A quiet text conversation closes after, hours",
                  "whole", 12, "1 to 168."),
        ),
    ),
    (
        "follow_up",
        "Follow-ups",
        (
            Field("follow_up.when", "Open a follow-up when", "lines", 2000,
                  "One condition per line, like nps <= 6. Empty: NPS 0-6 or CSAT 1-2."),
            Field("follow_up.comment", "Any recorded comment opens a follow-up", "flag"),
            Field("follow_up.opt_out_after_low_score",
                  "An opt-out after a low score opens a follow-up", "flag"),
            Field("follow_up.sla_hours", "Follow-up due within, hours", "whole", 12,
                  "1 to 2160."),
        ),
    ),
)  # fmt: skip
FIELDS = {f.path: f for _, _, fields in SECTIONS for f in fields}


@dataclass
class QuestionFields:
    key: str = ""
    kind: str = QuestionKind.NPS.value
    when: str = ""
    max_seconds: str = "60"
    keys_only: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


@dataclass
class SurveyForm:
    """What the form holds, as text: what was typed, whether or not it is valid."""

    values: dict[str, str] = field(default_factory=dict)  # survey-wide fields, by path
    languages: list[str] = field(default_factory=lambda: ["en"])
    questions: list[QuestionFields] = field(default_factory=list)
    phrases: dict[str, dict[str, str]] = field(default_factory=dict)
    new_language: str = ""

    def value(self, path: str) -> str:
        return self.values.get(path, "")

    def checked(self, path: str) -> bool:
        return self.values.get(path) == "on"

    @property
    def phrase_languages(self) -> list[str]:
        """The survey's languages, then any other language a phrase is overridden in."""
        return [*self.languages, *sorted(set(self.phrases) - set(self.languages))]

    def field_paths(self) -> list[str]:
        """Every input's name, in page order: where an error can be shown."""
        paths = [*FIELDS]
        paths.insert(paths.index("channel") + 1, "questions")
        position = paths.index("questions") + 1
        for index in range(len(self.questions)):
            base = f"questions[{index}]"
            paths[position:position] = [
                f"{base}.key", f"{base}.kind",
                *(f"{base}.prompt.{lang}" for lang in self.languages),
                *(f"{base}.text.{lang}" for lang in self.languages),
                f"{base}.when", f"{base}.max_seconds", f"{base}.keys_only",
            ]  # fmt: skip
            position = paths.index(f"{base}.keys_only") + 1
        paths.insert(position, "new_language")
        paths += [
            f"phrases.{lang}.{name}" for lang in self.phrase_languages for name in PHRASE_NAMES
        ]
        return paths


def blank_form() -> SurveyForm:
    """A new survey: one NPS question in English, every setting at its default."""
    definition = SurveyDefinition.from_dict(
        {"name": "new-survey", "questions": [{"key": "nps", "kind": "nps", "prompt": {"en": "-"}}]}
    )
    form = form_from_definition(definition)
    form.values["name"] = ""
    form.questions[0].prompts["en"] = ""
    return form


def form_from_definition(definition: SurveyDefinition) -> SurveyForm:
    data = {**definition.to_dict(), "channel": definition.channel}
    dialing = definition.dialing.to_dict()
    dialing["callback_after_in_call_hangup"] = definition.dialing.callback_after_in_call_hangup
    nested = {
        "dialing": dialing,
        "sms": definition.sms.to_dict(),
        "follow_up": definition.follow_up.to_dict(),
    }
    values: dict[str, str] = {}
    for path, spec in FIELDS.items():
        table, _, key = path.rpartition(".")
        raw = nested[table][key] if table else data.get(key)
        values[path] = _as_text(spec, raw)
    languages = sorted(
        definition.languages, key=lambda lang: (lang != definition.default_language, lang)
    )
    questions = [
        QuestionFields(
            key=question.key,
            kind=question.kind.value,
            when=str(question.when) if question.when else "",
            max_seconds=str(question.max_seconds),
            keys_only=question.keys_only,
            prompts={lang: question.prompts.get(lang, "") for lang in languages},
            texts={lang: question.texts.get(lang, "") for lang in languages},
        )
        for question in definition.questions
    ]
    phrases = {lang: dict(table) for lang, table in definition.phrases.items() if table}
    return SurveyForm(values=values, languages=languages, questions=questions, phrases=phrases)


def _as_text(spec: Field, raw: Any) -> str:
    if spec.kind == "flag":
        return "on" if raw else ""
    if raw is None:
        return ""
    if spec.kind == "lines":
        return "\n".join(raw)
    if spec.kind == "minutes":
        return ", ".join(str(minutes) for minutes in raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def parse_form(posted: Mapping[str, str], languages: Sequence[str]) -> SurveyForm:
    """The form as posted. `languages` are the hidden `languages` fields (in order)."""

    def text(name: str) -> str:
        value = posted.get(name, "")
        return value[:HARD_LIMIT] if isinstance(value, str) else ""

    chosen: list[str] = []
    for language in languages:
        if LANGUAGE_PATTERN.match(language) and language not in chosen:
            chosen.append(language)
    chosen = chosen[:MAX_LANGUAGES] or ["en"]

    values = {}
    for path, spec in FIELDS.items():
        raw = text(path)
        values[path] = ("on" if raw else "") if spec.kind == "flag" else raw

    indices = sorted(
        {int(m.group(1)) for name in posted if (m := _QUESTION_FIELD.match(name))}
        & set(range(MAX_QUESTIONS))
    )
    questions = []
    for index in indices:
        base = f"questions[{index}]"
        questions.append(
            QuestionFields(
                key=text(f"{base}.key"),
                kind=text(f"{base}.kind"),
                when=text(f"{base}.when"),
                max_seconds=text(f"{base}.max_seconds") or "60",
                keys_only=bool(text(f"{base}.keys_only")),
                prompts={lang: text(f"{base}.prompt.{lang}") for lang in chosen},
                texts={lang: text(f"{base}.text.{lang}") for lang in chosen},
            )
        )

    phrases: dict[str, dict[str, str]] = {}
    for name in posted:
        match = _PHRASE_FIELD.match(name)
        if match and match.group(2) in PHRASE_NAMES and len(phrases) <= MAX_LANGUAGES:
            phrases.setdefault(match.group(1), {})[match.group(2)] = text(name)
    return SurveyForm(
        values=values,
        languages=chosen,
        questions=questions,
        phrases=phrases,
        new_language=text("new_language")[:20],
    )


def survey_data(form: SurveyForm) -> dict[str, Any]:
    """The dict `SurveyDefinition.from_dict` takes, from what was typed."""
    data: dict[str, Any] = {"dialing": {}, "sms": {}, "follow_up": {}}
    for path, spec in FIELDS.items():
        table, _, key = path.rpartition(".")
        value = _as_value(spec, form.value(path))
        if value is None:
            continue
        (data[table] if table else data)[key] = value
    questions = []
    for question in form.questions:
        raw: dict[str, Any] = {
            "key": question.key.strip(),
            "kind": question.kind.strip(),
            # Every language's prompt, empty or not: the parser names the empty one.
            "prompt": {lang: question.prompts.get(lang, "") for lang in form.languages},
        }
        if question.when.strip():
            raw["when"] = question.when.strip()
        if question.kind == QuestionKind.COMMENT.value:
            raw["max_seconds"] = _number(question.max_seconds)
        if question.keys_only:
            raw["keys_only"] = True
        texts = {lang: text for lang, text in question.texts.items() if text.strip()}
        if texts:
            raw["text"] = texts
        questions.append(raw)
    data["questions"] = questions
    phrases = {
        lang: {name: text for name, text in table.items() if text.strip()}
        for lang, table in form.phrases.items()
    }
    data["phrases"] = {lang: table for lang, table in phrases.items() if table}
    return data


def _as_value(spec: Field, text: str) -> Any:
    if spec.kind == "flag":
        return text == "on"
    if spec.kind in ("whole", "number"):
        return _number(text)
    if spec.kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if spec.kind == "minutes":
        return [_number(part) for part in re.split(r"[,\s]+", text.strip()) if part]
    if spec.path in ("company_name", "callback_number") and not text.strip():
        return None
    return text


def _number(text: str) -> Any:
    """A whole number or a decimal as typed; anything else stays text, for the survey
    parser to refuse at its own field path ("expected a whole number from 1 to 5")."""
    stripped = text.strip()
    if not _NUMBER.match(stripped):
        return stripped
    return float(stripped) if "." in stripped else int(stripped)


def length_errors(form: SurveyForm) -> list[SurveyError]:
    """Values longer than their field takes, each at its field path."""
    limits: list[tuple[str, str, int]] = [
        (path, form.value(path), spec.limit) for path, spec in FIELDS.items()
    ]
    for index, question in enumerate(form.questions):
        base = f"questions[{index}]"
        limits += [(f"{base}.key", question.key, 64), (f"{base}.when", question.when, 100),
                   (f"{base}.max_seconds", question.max_seconds, 12)]  # fmt: skip
        limits += [
            (f"{base}.prompt.{lang}", t, PROMPT_LIMIT) for lang, t in question.prompts.items()
        ]
        limits += [(f"{base}.text.{lang}", t, TEXT_LIMIT) for lang, t in question.texts.items()]
    for lang, table in form.phrases.items():
        limits += [(f"phrases.{lang}.{name}", t, PHRASE_LIMIT) for name, t in table.items()]
    return [
        SurveyError(SOURCE, path, f"keep it to {limit} characters (this has {len(text)})")
        for path, text, limit in limits
        if len(text) > limit
    ]


@dataclass(frozen=True)
class Checked:
    """A form checked like `aftercall surveys check` checks a file."""

    definition: SurveyDefinition | None
    errors: tuple[SurveyError, ...]


def check_form(form: SurveyForm) -> Checked:
    too_long = length_errors(form)
    if too_long:
        return Checked(None, tuple(too_long))
    if not form.questions:
        return Checked(
            None, (SurveyError(SOURCE, "questions", "a survey needs at least one question"),)
        )
    try:
        definition = SurveyDefinition.from_dict(survey_data(form), SOURCE)
        check_phrases(definition, SOURCE)
    except SurveyError as error:
        return Checked(None, (error,))
    return Checked(definition, ())


def error_anchor(field_path: str, paths: Sequence[str]) -> str | None:
    """The input an error at `field_path` is shown beside: that input, else the first
    input under it (`questions[2].prompt` -> `questions[2].prompt.en`), else the nearest
    one above it (`follow_up.when[1]` -> `follow_up.when`)."""
    path = field_path
    while path:
        if path in paths:
            return path
        below = next((p for p in paths if p.startswith(path + ".")), None)
        if below is not None:
            return below
        path = re.sub(r"(\[\d+\]|\.[^.\[\]]*)$", "", path) if re.search(r"[.\[]", path) else ""
    return None


def input_id(path: str) -> str:
    """An element id for a field path: `questions[1].prompt.es` -> `f-questions-1-prompt-es`."""
    return "f-" + re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9_]", "-", path)).strip("-")


# -- editing moves without JavaScript ---------------------------------------------------


def apply_action(form: SurveyForm, action: str) -> tuple[SurveyForm, SurveyError | None, str]:
    """The form after one of the editor's moves; an error (about `new_language`) when
    the move cannot be made; and the field path to put the focus on."""
    name, _, argument = action.partition(":")
    questions = list(form.questions)
    if name == "add_question":
        if len(questions) >= MAX_QUESTIONS:
            return form, SurveyError(SOURCE, "questions", f"at most {MAX_QUESTIONS} questions"), ""
        questions.append(
            QuestionFields(
                prompts={lang: "" for lang in form.languages},
                texts={lang: "" for lang in form.languages},
            )
        )
        return replace(form, questions=questions), None, f"questions[{len(questions) - 1}].key"
    if name == "add_language":
        return _add_language(form)
    if name == "remove_language":
        return _remove_language(form, argument), None, "new_language"
    if name in INDEXED_ACTIONS and _INDEX.fullmatch(argument) and int(argument) < len(questions):
        index = int(argument)
        if name == "remove_question":
            del questions[index]
            focus = f"questions[{min(index, len(questions) - 1)}].key" if questions else ""
            return replace(form, questions=questions), None, focus
        other = index - 1 if name == "move_up" else index + 1
        if 0 <= other < len(questions):
            questions[index], questions[other] = questions[other], questions[index]
            return replace(form, questions=questions), None, f"questions[{other}].key"
    return form, None, ""


def _add_language(form: SurveyForm) -> tuple[SurveyForm, SurveyError | None, str]:
    language = form.new_language.strip().lower()
    problem = None
    if not LANGUAGE_PATTERN.match(language):
        problem = "expected a two-letter language code, like es"
    elif language in form.languages:
        problem = f"the survey already has {language!r}"
    elif len(form.languages) >= MAX_LANGUAGES:
        problem = f"at most {MAX_LANGUAGES} languages"
    if problem:
        return form, SurveyError(SOURCE, "new_language", problem), "new_language"
    questions = [
        replace(q, prompts={**q.prompts, language: ""}, texts={**q.texts, language: ""})
        for q in form.questions
    ]
    added = replace(
        form, languages=[*form.languages, language], questions=questions, new_language=""
    )
    return added, None, f"questions[0].prompt.{language}" if questions else "new_language"


def _remove_language(form: SurveyForm, language: str) -> SurveyForm:
    if language not in form.languages or len(form.languages) == 1:
        return form
    languages = [lang for lang in form.languages if lang != language]
    questions = [
        replace(
            q,
            prompts={k: v for k, v in q.prompts.items() if k != language},
            texts={k: v for k, v in q.texts.items() if k != language},
        )
        for q in form.questions
    ]
    values = dict(form.values)
    if values.get("default_language") == language:
        values["default_language"] = languages[0]
    phrases = {k: v for k, v in form.phrases.items() if k != language}
    return replace(form, values=values, languages=languages, questions=questions, phrases=phrases)


def with_name(form: SurveyForm, name: str) -> SurveyForm:
    return replace(form, values={**form.values, "name": name})
