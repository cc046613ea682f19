"""A survey's call as text: every sentence a caller can hear, in one language, in order.

The words are not written here: each scene of the script is a step of the call flow
(`core.flow`) rendered to TwiML by the code that answers Twilio's webhooks
(`ivr.twiml.render_step`, `goodbye`), and the preview reads the `<Say>` texts, and what
the call listens for, back out of that TwiML. A change to a prompt, a phrase, a survey
override or the rendering shows up in the preview the moment it shows up on calls.

What the preview adds is only the operator's description of each scene (English labels
such as "No key pressed"), never a sentence the caller hears. It reads no database and
places no call; the dashboard shows it (aftercall.web.dashboard.surveys).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from core import flow
from core.survey import Question, QuestionKind, SurveyDefinition
from ivr.keypad import FINISH_KEY, OPT_OUT_KEY, Rejection
from ivr.prompts import Phrasebook, Voice
from ivr.twiml import CallUrls, goodbye, render_step

# The preview's TwiML is never sent anywhere; its URLs only have to be well formed.
_PREVIEW_URLS = CallUrls("https://preview.invalid/voice/attempts/0")


@dataclass(frozen=True)
class Scene:
    """One moment of the call: what triggers it, what the caller hears, what follows."""

    key: str  # stable, for tests and page anchors: "greeting", "nps:retry-invalid", ...
    title: str
    when: str  # when it happens, for the operator
    lines: tuple[str, ...]  # what the caller hears, in order, exactly as the TwiML says it
    listens: str = ""  # what the call waits for afterwards
    question: str | None = None  # the question key it belongs to


@dataclass(frozen=True)
class CallScript:
    survey: str
    language: str
    voice: Voice
    scenes: tuple[Scene, ...]

    @property
    def lines(self) -> list[str]:
        """Every sentence of the script once, in order of first appearance."""
        return list(dict.fromkeys(line for scene in self.scenes for line in scene.lines))


def call_script(
    definition: SurveyDefinition, language: str, company: str, callback: str
) -> CallScript:
    """The whole call in `language` (one of the survey's), with the company and
    callback number the app is configured with (a survey's own override first)."""
    if language not in definition.languages:
        raise ValueError(f"survey {definition.name!r} has no prompts in {language!r}")
    phrases = Phrasebook.for_call(definition, language, company, callback)
    scenes = [_greeting(definition, phrases)]
    for index, question in enumerate(definition.questions, start=1):
        scenes += _question_scenes(definition, question, index, phrases)
    scenes.append(
        Scene(
            "ending",
            "End of the survey",
            "after the last question that applies",
            _says(render_step(flow.Finish(), phrases, _PREVIEW_URLS)),
            listens="hangs up",
        )
    )
    scenes.append(
        Scene(
            "opt-out",
            "Opt-out",
            f"the caller presses {OPT_OUT_KEY} at any time; the number goes on the "
            "do-not-call list",
            _says(goodbye(phrases, "opted_out")),
            listens="hangs up",
        )
    )
    if definition.leave_voicemail:
        scenes.append(
            Scene(
                "voicemail",
                "Answering machine",
                "an answering machine picks up",
                _says(goodbye(phrases, "voicemail")),
                listens="leaves this message after the beep, then hangs up",
            )
        )
    else:
        scenes.append(
            Scene(
                "voicemail",
                "Answering machine",
                "an answering machine picks up",
                (),
                listens="hangs up without leaving a message (leave_voicemail = false)",
            )
        )
    return CallScript(definition.name, language, phrases.voice, tuple(scenes))


def _greeting(definition: SurveyDefinition, phrases: Phrasebook) -> Scene:
    opening = flow.opening(definition)
    if isinstance(opening, flow.Finish):  # a survey without questions cannot load
        plain: flow.Step = flow.Finish()
    else:
        plain = flow.Ask(opening.question)
    return Scene(
        "greeting",
        "Greeting",
        "a person answers",
        _added_lines(opening, plain, phrases),
        listens=f"{OPT_OUT_KEY} opts out from here on; the first question follows at once",
    )


def _question_scenes(
    definition: SurveyDefinition, question: Question, index: int, phrases: Phrasebook
) -> list[Scene]:
    asked = flow.Ask(question)
    response = render_step(asked, phrases, _PREVIEW_URLS)
    when = f"only when {question.when}" if question.when else "always"
    scenes = [
        Scene(
            question.key,
            f"Question {index}: {question.key} ({question.kind.value})",
            when,
            _says(response),
            listens=_listens(question, response, phrases),
            question=question.key,
        )
    ]
    if question.kind is QuestionKind.COMMENT:
        # flow.after_answer: an empty recording moves on; it is never asked again.
        return scenes
    if question.takes_speech:
        low, high = question.kind.scale
        example = low if question.kind is QuestionKind.YESNO else high
        confirm = flow.Confirm(question, example, 1, "", None)
        scenes.append(
            Scene(
                f"{question.key}:confirm",
                "Spoken answer to confirm",
                f"an answer said, not keyed, heard with low confidence (here: {example})",
                _says(render_step(confirm, phrases, _PREVIEW_URLS)),
                listens="1 or yes stores the answer; 2, no or anything else asks again",
                question=question.key,
            )
        )
    tries = definition.max_tries
    if tries > 1:
        retries = [
            (Rejection.NO_INPUT, "No answer", "nothing pressed or said before the timeout"),
            (Rejection.INVALID, "Not a valid answer", "a key or number outside the scale"),
        ]
        if question.takes_speech:
            retries.append(
                (Rejection.MISHEARD, "Misheard", "the caller said the answer heard was wrong")
            )
        for reason, title, trigger in retries:
            retry = flow.Ask(question, attempt=2, retry_reason=reason)
            scenes.append(
                Scene(
                    f"{question.key}:retry-{reason.value.replace('_', '-')}",
                    title,
                    f"{trigger}, on tries 1 to {tries - 1} of {tries}",
                    _says(render_step(retry, phrases, _PREVIEW_URLS)),
                    listens="asks again",
                    question=question.key,
                )
            )
    # After the last try the question is given up on; what comes next depends on the
    # answers so far, so the scene shows what is said before it, not the next prompt.
    next_step = flow.after_rejection(definition, question, tries, Rejection.NO_INPUT, {})
    plain = flow.Ask(next_step.question) if isinstance(next_step, flow.Ask) else flow.Finish()
    scenes.append(
        Scene(
            f"{question.key}:give-up",
            "No valid answer after the last try",
            f"try {tries} of {tries} fails; the question stays unanswered",
            _added_lines(next_step, plain, phrases),
            listens="then the next question that applies, or the end",
            question=question.key,
        )
    )
    return scenes


def _listens(question: Question, response: VoiceResponse, phrases: Phrasebook) -> str:
    root = ET.fromstring(str(response))
    gather = root.find("./Gather")
    if gather is not None:
        scale = question.kind.scale
        assert scale is not None
        low, high = scale
        keys = "1 (yes) or 2 (no)" if question.kind is QuestionKind.YESNO else f"{low} to {high}"
        text = f"one key, {keys}, for {gather.get('timeout')} s after the question"
        if "speech" in gather.get("input", ""):
            text += f", or the answer said aloud ({gather.get('language')})"
        if high >= 10:
            second = ET.fromstring(
                str(render_step(flow.ListenForZero(question, 1), phrases, _PREVIEW_URLS))
            )
            wait = second.find("./Gather").get("timeout")
            text += f"; for 10, 1 then 0 (a 1 with no 0 within {wait} s counts as 1)"
        return text + f"; {OPT_OUT_KEY} opts out"
    record = root.find("./Record")
    if record is not None:
        ends = record.get("finishOnKey", FINISH_KEY + OPT_OUT_KEY)
        return (
            f"records after a beep, up to {record.get('maxLength')} s; ends after "
            f"{record.get('timeout')} s of silence or on {' or '.join(ends)} "
            f"({OPT_OUT_KEY} opts out); an empty recording moves on"
        )
    return ""


def _says(response: VoiceResponse) -> tuple[str, ...]:
    """The `<Say>` texts of a TwiML response, nested ones included, in document order."""
    return tuple(say.text or "" for say in ET.fromstring(str(response)).iter("Say"))


def _added_lines(step: flow.Step, plain: flow.Step, phrases: Phrasebook) -> tuple[str, ...]:
    """What `step` says beyond what `plain` (the same step without the greeting or the
    "moving on") says: the rendering's own preamble, without restating it here."""
    with_preamble = list(_says(render_step(step, phrases, _PREVIEW_URLS)))
    for line in _says(render_step(plain, phrases, _PREVIEW_URLS)):
        if line in with_preamble:
            with_preamble.remove(line)
    return tuple(with_preamble)
