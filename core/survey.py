"""Survey definitions: what a survey asks, in which languages, in what order.

Surveys are TOML files, one per survey, in a folder (`SURVEYS_DIR`). Loading validates
everything a call will rely on and reports each problem with the file and the field
(`post-call.toml: questions[2].when: ...`), so a broken file fails at start, not in the
middle of a customer's call. A loaded definition round-trips through a plain dict: that
dict is what a `SurveyVersion` row freezes, and what a call in progress is played from.

This module does not know about Twilio or the database; `core.survey_versions`
stores definitions, `core.survey_store` keeps the surveys admins edit in the dashboard
(and lists them beside the files' in the catalog a process looks surveys up in),
`ivr/` plays them.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2}$")
# Not allowed in XML 1.0 (TwiML), or not encodable as UTF-8: C0 controls but tab and line
# breaks, lone surrogates, U+FFFE and U+FFFF.
_UNSPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class QuestionKind(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    YESNO = "yesno"
    COMMENT = "comment"

    @property
    def scale(self) -> tuple[int, int] | None:
        """The keypad range the kind accepts; None for a recorded answer."""
        return _SCALES.get(self)


_SCALES = {
    QuestionKind.NPS: (0, 10),
    QuestionKind.CSAT: (1, 5),
    QuestionKind.CES: (1, 7),
    QuestionKind.YESNO: (1, 2),
}

_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION_PATTERN = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+)\s*$")


class SurveyError(ValueError):
    """A survey file is wrong; `str()` names the file and the field."""

    def __init__(self, source: str, field_path: str, message: str) -> None:
        self.source = source
        self.field_path = field_path
        self.message = message
        where = f"{source}: {field_path}" if field_path else source
        super().__init__(f"{where}: {message}")


class UnknownSurvey(LookupError):
    """No survey of that name is defined."""


@dataclass(frozen=True)
class Condition:
    """`<question> <op> <number>`: ask only when an earlier answer satisfies it."""

    question_key: str
    op: str
    value: int

    def holds(self, answers: Mapping[str, int | None]) -> bool:
        # A skipped or unanswered question satisfies no condition.
        answer = answers.get(self.question_key)
        return answer is not None and _OPERATORS[self.op](answer, self.value)

    def __str__(self) -> str:
        return f"{self.question_key} {self.op} {self.value}"


@dataclass(frozen=True)
class Question:
    key: str
    kind: QuestionKind
    prompts: Mapping[str, str]
    when: Condition | None = None
    max_seconds: int = 60  # recording limit, comment questions only
    # Keys only: no spoken answers for this question (a scale question takes both).
    keys_only: bool = False
    # The question as a text message, per language (sms/); empty: the channel words it
    # from the kind's own wording (sms.wording).
    texts: Mapping[str, str] = field(default_factory=dict)

    @property
    def takes_speech(self) -> bool:
        """Whether the customer may say the answer (core.utterance): scale questions, unless
        the survey or the question says keys only."""
        return self.kind.scale is not None and not self.keys_only


@dataclass(frozen=True)
class DialingSettings:
    """When and how often the dialer may call for this survey (`[dialing]` table).

    Compliance floors that no setting can lower (calling hours never wider than
    08:00-21:00 local, at most 3 calls per number in 30 days) are enforced by dialer/,
    whatever is written here.
    """

    sample_percent: float = 100.0
    fatigue_days: int = 30
    delay_minutes: int = 5
    valid_hours: int = 24
    calling_hours: tuple[time, time] = (time(9, 0), time(20, 0))
    allow_sundays: bool = False
    max_attempts: int = 3
    # Minutes to wait before attempt 2, 3, ...; the last value repeats.
    retry_minutes: tuple[int, ...] = (30, 120)
    retry_voicemail: bool = False
    # In-call surveys: call the customer back when they hung up before the first answer.
    callback_after_in_call_hangup: bool = False

    def to_dict(self) -> dict[str, Any]:
        opens, closes = self.calling_hours
        # Written only when set: a survey that never mentions it keeps the content
        # digest, and so the version, it had before the setting existed.
        optional = (
            {"callback_after_in_call_hangup": True} if self.callback_after_in_call_hangup else {}
        )
        return {
            "sample_percent": self.sample_percent,
            "fatigue_days": self.fatigue_days,
            "delay_minutes": self.delay_minutes,
            "valid_hours": self.valid_hours,
            "calling_hours": f"{opens:%H:%M}-{closes:%H:%M}",
            "allow_sundays": self.allow_sundays,
            "max_attempts": self.max_attempts,
            "retry_minutes": list(self.retry_minutes),
            "retry_voicemail": self.retry_voicemail,
            **optional,
        }


# The channels a survey may go out on first (core.models.Channel's, less the fallback).
CHANNELS = ("voice", "sms")


@dataclass(frozen=True)
class SmsSettings:
    """The survey by text (`[sms]` table): its fallback, hours and expiry.

    Messaging hours are the customer's local time and, like calling hours, never wider
    than 08:00-21:00 (the TCPA's quiet hours; several US states are stricter).
    """

    # Text the survey after the last call attempt went unanswered (no-answer, busy,
    # failed, voicemail), when the number can take texts.
    fallback: bool = False
    hours: tuple[time, time] = (time(9, 0), time(20, 0))
    # A conversation with no reply for this long closes: partial, or no reply at all.
    expire_hours: int = 24

    def to_dict(self) -> dict[str, Any]:
        opens, closes = self.hours
        return {
            "fallback": self.fallback,
            "hours": f"{opens:%H:%M}-{closes:%H:%M}",
            "expire_hours": self.expire_hours,
        }


@dataclass(frozen=True)
class FollowUpRule:
    """Which answer sets open a follow-up (`[follow_up]` table; scoring.follow_ups).

    `when` are conditions on the survey's questions ("nps <= 6"); with none given, the
    default: any NPS answer of 6 or less, or CSAT of 2 or less, whatever its key.
    """

    when: tuple[Condition, ...] = ()
    comment: bool = False  # any recorded (or typed) comment opens one
    opt_out_after_low_score: bool = False  # an opt-out after a detractor's answer
    sla_hours: int = 48

    def to_dict(self) -> dict[str, Any]:
        return {
            "when": [str(condition) for condition in self.when],
            "comment": self.comment,
            "opt_out_after_low_score": self.opt_out_after_low_score,
            "sla_hours": self.sla_hours,
        }


@dataclass(frozen=True)
class SurveyDefinition:
    name: str
    questions: tuple[Question, ...]
    default_language: str = "en"
    title: str = ""
    max_tries: int = 3
    leave_voicemail: bool = False
    company_name: str | None = None
    callback_number: str | None = None
    # Per-language overrides of the built-in phrases (greeting, thanks, ...).
    phrases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    dialing: DialingSettings = field(default_factory=DialingSettings)
    # How a request goes out unless intake says otherwise: "voice" or "sms".
    channel: str = "voice"
    sms: SmsSettings = field(default_factory=SmsSettings)
    follow_up: FollowUpRule = field(default_factory=FollowUpRule)

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    def language_for(self, requested: str | None) -> str:
        """The survey language to use for a customer who speaks `requested`.

        "es-MX" is served by "es"; a language the survey has no prompts in falls back
        to the survey's default rather than leaving the customer in silence.
        """
        base = (requested or "").strip().lower()[:2]
        return base if base in self.languages else self.default_language

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.questions[0].prompts) if self.questions else frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "default_language": self.default_language,
            "max_tries": self.max_tries,
            "leave_voicemail": self.leave_voicemail,
            "company_name": self.company_name,
            "callback_number": self.callback_number,
            "phrases": {lang: dict(p) for lang, p in self.phrases.items()},
            "dialing": self.dialing.to_dict(),
            # Written only when not the default: a survey that never mentions SMS keeps
            # the content digest, and so the version, it had before the channel existed.
            **({"channel": self.channel} if self.channel != "voice" else {}),
            **({"sms": self.sms.to_dict()} if self.sms != SmsSettings() else {}),
            **({"follow_up": self.follow_up.to_dict()} if self.follow_up != FollowUpRule() else {}),
            "questions": [
                {
                    "key": q.key,
                    "kind": q.kind.value,
                    "prompt": dict(q.prompts),
                    **({"when": str(q.when)} if q.when else {}),
                    **({"max_seconds": q.max_seconds} if q.kind is QuestionKind.COMMENT else {}),
                    # Written only when set, so that older surveys keep their digest.
                    **({"keys_only": True} if q.keys_only else {}),
                    **({"text": dict(q.texts)} if q.texts else {}),
                }
                for q in self.questions
            ],
        }

    def content_sha256(self) -> str:
        # Computed once per definition object (the dataclass is frozen, so the content
        # cannot change under the cached digest).
        digest = self.__dict__.get("_content_sha256")
        if digest is None:
            canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            self.__dict__["_content_sha256"] = digest
        return digest

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<definition>") -> SurveyDefinition:
        return _Parser(source).survey(data)


def load_survey_file(path: Path) -> SurveyDefinition:
    source = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyError(source, "", f"cannot read file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SurveyError(source, "", f"not valid TOML ({exc})") from exc
    definition = _Parser(source).survey(data)
    if definition.name != path.stem:
        raise SurveyError(
            source, "name", f"{definition.name!r} does not match the file name {path.stem!r}"
        )
    return definition


class SurveyCatalog:
    """Every survey defined in one folder, validated, by name."""

    def __init__(self, definitions: Mapping[str, SurveyDefinition]) -> None:
        self._definitions = dict(definitions)

    @classmethod
    def from_directory(cls, directory: Path) -> SurveyCatalog:
        if not directory.is_dir():
            raise SurveyError(str(directory), "", "survey folder does not exist")
        definitions = {}
        for path in sorted(directory.glob("*.toml")):
            definition = load_survey_file(path)
            definitions[definition.name] = definition
        return cls(definitions)

    def get(self, name: str) -> SurveyDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownSurvey(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def names(self) -> list[str]:
        return sorted(self._definitions)

    def definitions(self) -> dict[str, SurveyDefinition]:
        """Every survey by name, as one snapshot (a names() then a get() per name could
        miss one retired in between, in a catalog that also lists database surveys)."""
        return dict(self._definitions)

    # What a catalog that also lists the surveys kept in the database answers
    # (core.survey_store.CombinedSurveyCatalog); a catalog of files alone answers them too,
    # so that callers need not ask which kind they hold.

    def file_names(self) -> list[str]:
        """The surveys that files define (read-only in the dashboard)."""
        return self.names()

    def source_of(self, name: str) -> str:
        """Where the survey `name` is defined: "file" or "database"."""
        if name not in self._definitions:
            raise UnknownSurvey(name)
        return "file"

    def refresh(self) -> None:
        """Read the surveys kept in the database again at the next lookup; a catalog of
        files alone has nothing to read again."""


class _Parser:
    """Validates raw TOML data, collecting the field path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_path: str, message: str) -> SurveyError:
        return SurveyError(self.source, field_path, message)

    def survey(self, data: Mapping[str, Any]) -> SurveyDefinition:
        known = {
            "name", "title", "default_language", "max_tries", "leave_voicemail",
            "company_name", "callback_number", "phrases", "questions", "dialing", "keys_only",
            "channel", "sms", "follow_up",
        }  # fmt: skip
        for unknown in sorted(set(data) - known):
            raise self.fail(unknown, "unknown field")
        self.refuse_unspeakable(data, "")
        name = self.string(data, "name", "name")
        if not NAME_PATTERN.match(name):
            raise self.fail("name", "use lowercase letters, digits, '-' and '_' only")
        default_language = self.string(data, "default_language", "default_language", "en")
        if not LANGUAGE_PATTERN.match(default_language):
            raise self.fail("default_language", "expected a two-letter language code")
        max_tries = data.get("max_tries", 3)
        if not isinstance(max_tries, int) or isinstance(max_tries, bool) or not 1 <= max_tries <= 5:
            raise self.fail("max_tries", "expected a whole number from 1 to 5")
        leave_voicemail = data.get("leave_voicemail", False)
        if not isinstance(leave_voicemail, bool):
            raise self.fail("leave_voicemail", "expected true or false")

        keys_only = data.get("keys_only", False)
        if not isinstance(keys_only, bool):
            raise self.fail("keys_only", "expected true or false")

        raw_questions = data.get("questions")
        if not isinstance(raw_questions, list) or not raw_questions:
            raise self.fail("questions", "a survey needs at least one question")
        questions: list[Question] = []
        for index, raw in enumerate(raw_questions):
            question = self.question(raw, f"questions[{index}]", questions)
            # A survey's `keys_only = true` is every question's: stored per question, so
            # that a version's definition says, question by question, what was asked.
            if keys_only and question.kind.scale is not None:
                question = replace(question, keys_only=True)
            questions.append(question)

        languages = set(questions[0].prompts)
        for index, question in enumerate(questions):
            if set(question.prompts) != languages:
                raise self.fail(
                    f"questions[{index}].prompt",
                    f"languages {sorted(question.prompts)} differ from the first question's "
                    f"{sorted(languages)}; every question needs the same languages",
                )
        if default_language not in languages:
            raise self.fail(
                "default_language",
                f"{default_language!r} has no prompts (have {sorted(languages)})",
            )

        return SurveyDefinition(
            name=name,
            title=self.string(data, "title", "title", ""),
            questions=tuple(questions),
            default_language=default_language,
            max_tries=max_tries,
            leave_voicemail=leave_voicemail,
            company_name=self.optional_string(data, "company_name"),
            callback_number=self.optional_string(data, "callback_number"),
            phrases=self.phrases(data.get("phrases", {})),
            dialing=self.dialing(data.get("dialing", {})),
            channel=self.channel(data.get("channel", "voice")),
            sms=self.sms(data.get("sms", {})),
            follow_up=self.follow_up(data.get("follow_up", {}), questions),
        )

    def question(self, raw: Any, path: str, earlier: list[Question]) -> Question:
        if not isinstance(raw, Mapping):
            raise self.fail(path, "expected a table with key, kind and prompt")
        for unknown in sorted(
            set(raw) - {"key", "kind", "prompt", "when", "max_seconds", "keys_only", "text"}
        ):
            raise self.fail(f"{path}.{unknown}", "unknown field")
        key = self.string(raw, "key", f"{path}.key")
        if not KEY_PATTERN.match(key):
            raise self.fail(
                f"{path}.key", "use lowercase letters, digits and '_', starting with a letter"
            )
        if any(q.key == key for q in earlier):
            raise self.fail(f"{path}.key", f"duplicate question key {key!r}")
        kind_name = self.string(raw, "kind", f"{path}.kind")
        try:
            kind = QuestionKind(kind_name)
        except ValueError:
            allowed = ", ".join(k.value for k in QuestionKind)
            raise self.fail(
                f"{path}.kind", f"unknown kind {kind_name!r} (expected one of {allowed})"
            ) from None

        prompts = raw.get("prompt")
        if not isinstance(prompts, Mapping) or not prompts:
            raise self.fail(
                f"{path}.prompt", 'expected a table of prompts by language, e.g. en = "..."'
            )
        for language, text in prompts.items():
            if not LANGUAGE_PATTERN.match(language):
                raise self.fail(f"{path}.prompt.{language}", "expected a two-letter language code")
            if not isinstance(text, str) or not text.strip():
                raise self.fail(f"{path}.prompt.{language}", "expected non-empty text")

        texts = raw.get("text", {})
        if not isinstance(texts, Mapping):
            raise self.fail(
                f"{path}.text", 'expected a table of texts by language, e.g. en = "..."'
            )
        for language, text in texts.items():
            if language not in prompts:
                raise self.fail(f"{path}.text.{language}", "no prompt in that language")
            if not isinstance(text, str) or not text.strip():
                raise self.fail(f"{path}.text.{language}", "expected non-empty text")
            if len(text) > 600:
                raise self.fail(f"{path}.text.{language}", "keep a text under 600 characters")

        when = None
        if "when" in raw:
            when = self.condition(raw["when"], f"{path}.when", earlier)

        max_seconds = raw.get("max_seconds", 60)
        if "max_seconds" in raw and kind is not QuestionKind.COMMENT:
            raise self.fail(f"{path}.max_seconds", "only comment questions are recorded")
        if (
            not isinstance(max_seconds, int)
            or isinstance(max_seconds, bool)
            or not 5 <= max_seconds <= 300
        ):
            raise self.fail(
                f"{path}.max_seconds", "expected a whole number of seconds from 5 to 300"
            )

        keys_only = raw.get("keys_only", False)
        if not isinstance(keys_only, bool):
            raise self.fail(f"{path}.keys_only", "expected true or false")
        if keys_only and kind.scale is None:
            raise self.fail(f"{path}.keys_only", "a comment is recorded: it takes no keys")

        return Question(
            key=key,
            kind=kind,
            prompts={lang: text.strip() for lang, text in prompts.items()},
            when=when,
            max_seconds=max_seconds,
            keys_only=keys_only,
            texts={lang: text.strip() for lang, text in texts.items()},
        )

    def channel(self, raw: Any) -> str:
        if raw not in CHANNELS:
            raise self.fail("channel", f"expected one of {', '.join(CHANNELS)}")
        return raw

    def sms(self, raw: Any) -> SmsSettings:
        if not isinstance(raw, Mapping):
            raise self.fail("sms", "expected a table, e.g. [sms]")
        defaults = SmsSettings()
        known = set(defaults.to_dict())
        for unknown in sorted(set(raw) - known):
            raise self.fail(f"sms.{unknown}", f"unknown field (known: {', '.join(sorted(known))})")
        fallback = raw.get("fallback", defaults.fallback)
        if not isinstance(fallback, bool):
            raise self.fail("sms.fallback", "expected true or false")
        expire = raw.get("expire_hours", defaults.expire_hours)
        if isinstance(expire, bool) or not isinstance(expire, int) or not 1 <= expire <= 168:
            raise self.fail("sms.expire_hours", "expected a whole number from 1 to 168")
        hours = self.calling_hours(raw.get("hours", "09:00-20:00"), "sms.hours")
        return SmsSettings(fallback=fallback, hours=hours, expire_hours=expire)

    def follow_up(self, raw: Any, questions: list[Question]) -> FollowUpRule:
        if not isinstance(raw, Mapping):
            raise self.fail("follow_up", "expected a table, e.g. [follow_up]")
        defaults = FollowUpRule()
        known = set(defaults.to_dict())
        for unknown in sorted(set(raw) - known):
            raise self.fail(
                f"follow_up.{unknown}", f"unknown field (known: {', '.join(sorted(known))})"
            )
        when = raw.get("when", [])
        if not isinstance(when, list):
            raise self.fail("follow_up.when", "expected a list of conditions, e.g. ['nps <= 6']")
        conditions = tuple(
            self.condition(item, f"follow_up.when[{index}]", questions)
            for index, item in enumerate(when)
        )
        flags = {}
        for name in ("comment", "opt_out_after_low_score"):
            value = raw.get(name, getattr(defaults, name))
            if not isinstance(value, bool):
                raise self.fail(f"follow_up.{name}", "expected true or false")
            flags[name] = value
        sla = raw.get("sla_hours", defaults.sla_hours)
        if isinstance(sla, bool) or not isinstance(sla, int) or not 1 <= sla <= 24 * 90:
            raise self.fail("follow_up.sla_hours", "expected a whole number of hours, 1 to 2160")
        return FollowUpRule(when=conditions, sla_hours=sla, **flags)

    def condition(self, raw: Any, path: str, earlier: list[Question]) -> Condition:
        match = _CONDITION_PATTERN.match(raw) if isinstance(raw, str) else None
        if not match:
            raise self.fail(path, "expected '<question key> <op> <number>', e.g. 'nps <= 6'")
        key, op, value = match.group(1), match.group(2), int(match.group(3))
        referenced = next((q for q in earlier if q.key == key), None)
        if referenced is None:
            raise self.fail(path, f"{key!r} is not an earlier question")
        if referenced.kind.scale is None:
            raise self.fail(path, f"{key!r} is a recorded comment; conditions need a keypad answer")
        return Condition(key, op, value)

    def phrases(self, raw: Any) -> dict[str, dict[str, str]]:
        if not isinstance(raw, Mapping):
            raise self.fail("phrases", "expected tables of phrases by language, e.g. [phrases.en]")
        result: dict[str, dict[str, str]] = {}
        for language, table in raw.items():
            if not LANGUAGE_PATTERN.match(language) or not isinstance(table, Mapping):
                raise self.fail(
                    f"phrases.{language}", "expected a table under a two-letter language code"
                )
            result[language] = {}
            for name, text in table.items():
                if not isinstance(text, str) or not text.strip():
                    raise self.fail(f"phrases.{language}.{name}", "expected non-empty text")
                result[language][name] = text
        return result

    def dialing(self, raw: Any) -> DialingSettings:
        if not isinstance(raw, Mapping):
            raise self.fail("dialing", "expected a table, e.g. [dialing]")
        defaults = DialingSettings()
        known = set(defaults.to_dict()) | {"callback_after_in_call_hangup"}
        for unknown in sorted(set(raw) - known):
            raise self.fail(
                f"dialing.{unknown}", f"unknown field (known: {', '.join(sorted(known))})"
            )

        def number(key: str, low: float, high: float, whole: bool = True) -> Any:
            value = raw.get(key, getattr(defaults, key))
            kinds = (int,) if whole else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
                kind = "a whole number" if whole else "a number"
                raise self.fail(f"dialing.{key}", f"expected {kind} from {low:g} to {high:g}")
            return value

        def flag(key: str) -> bool:
            value = raw.get(key, getattr(defaults, key))
            if not isinstance(value, bool):
                raise self.fail(f"dialing.{key}", "expected true or false")
            return value

        retry = raw.get("retry_minutes", list(defaults.retry_minutes))
        if (
            not isinstance(retry, list)
            or not retry
            or not all(
                isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 1440 for m in retry
            )
        ):
            raise self.fail("dialing.retry_minutes", "expected a list of minutes, each 1 to 1440")

        return DialingSettings(
            sample_percent=float(number("sample_percent", 0, 100, whole=False)),
            fatigue_days=number("fatigue_days", 0, 365),
            delay_minutes=number("delay_minutes", 0, 1440),
            valid_hours=number("valid_hours", 1, 168),
            calling_hours=self.calling_hours(raw.get("calling_hours", "09:00-20:00")),
            allow_sundays=flag("allow_sundays"),
            max_attempts=number("max_attempts", 1, 3),
            retry_minutes=tuple(retry),
            retry_voicemail=flag("retry_voicemail"),
            callback_after_in_call_hangup=flag("callback_after_in_call_hangup"),
        )

    def calling_hours(
        self, raw: Any, field_path: str = "dialing.calling_hours"
    ) -> tuple[time, time]:
        match = (
            re.fullmatch(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})", raw) if isinstance(raw, str) else None
        )
        if not match:
            raise self.fail(field_path, "expected local hours like '09:00-20:00'")
        h1, m1, h2, m2 = map(int, match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise self.fail(field_path, "not a time of day")
        opens, closes = time(h1, m1), time(h2, m2)
        if not opens < closes:
            raise self.fail(field_path, "the window must open before it closes")
        if opens < time(8, 0) or closes > time(21, 0):
            # 47 CFR 64.1200(c)(1): no calls before 8 a.m. or after 9 p.m. local time.
            raise self.fail(field_path, "may not be wider than 08:00-21:00 local time")
        return opens, closes

    def refuse_unspeakable(self, value: Any, path: str) -> None:
        """Every text must go into TwiML, an SMS and a UTF-8 database column: a control
        character (other than tab and line breaks), a lone surrogate or a NUL would end
        the call with malformed TwiML, or fail the save, far from the field at fault."""
        if isinstance(value, str):
            bad = next((c for c in value if _UNSPEAKABLE.match(c)), None)
            if bad is not None:
                raise self.fail(path, f"contains U+{ord(bad):04X}, a character a call cannot carry")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.refuse_unspeakable(key, path)
                self.refuse_unspeakable(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.refuse_unspeakable(item, f"{path}[{index}]")

    def string(
        self, data: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(path, "required")
        if not isinstance(value, str):
            raise self.fail(path, "expected text")
        return value.strip()

    def optional_string(self, data: Mapping[str, Any], key: str) -> str | None:
        if data.get(key) is None:
            return None
        return self.string(data, key, key) or None
