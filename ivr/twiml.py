"""Turning flow steps into TwiML with twilio's `VoiceResponse` (never by hand).

Twilio specifics this module is careful about (twilio.com/docs/voice/twiml/gather,
/record):
- Prompts are nested inside `<Gather>` so a key pressed during them is taken at once
  (barge-in) and `*` can opt out even during the greeting.
- `actionOnEmptyResult` makes a timeout post to the action URL; a `<Redirect>` to the
  same URL follows every `<Gather>` anyway, because Twilio falls through to the next
  verb when input ends without digits (e.g. "#" alone), and the server, not Twilio,
  decides what to say then.
- `<Record>` with no audio does not call its action and falls through as well; the
  `<Redirect>` after it tells the server the comment was left empty.
- A question that takes spoken answers gathers keys and speech together (`input="dtmf
  speech"`), in the call's language, with hints made from its answer words
  (core.utterance). `speechTimeout` is a whole number of seconds: Twilio refuses "auto"
  together with a `speechModel` (warning 13335), and `numbers_and_commands` is its
  model for short answers like these.

The webhooks do not build a document per post: `step_document()` and
`goodbye_document()` render a step once per survey version, step, language and
greeting (`DocumentKey`) with stand-ins for the call's own URLs, and fill in each
call's base URL and `ref` with two string replacements. A Confirm step, whose URL
carries what was heard, is rendered for each call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from secrets import token_hex
from urllib.parse import quote_plus, urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from core import utterance
from core.flow import Ask, Confirm, Finish, ListenForZero, Step
from core.survey import Question, QuestionKind
from ivr.keypad import FINISH_KEY, OPT_OUT_KEY, Rejection
from ivr.prompts import VOICES, Phrasebook

# Seconds Twilio waits for the first key after the prompt ends (Twilio's own default).
ANSWER_TIMEOUT = 5
# Seconds to wait, after an NPS "1", for a "0" that would make it 10.
SECOND_DIGIT_TIMEOUT = 2
# Spoken answers: the recogniser's model for short answers, and the seconds of silence
# that end an utterance.
SPEECH_MODEL = "numbers_and_commands"
SPEECH_TIMEOUT = 2
# Seconds of silence that end a recorded comment.
RECORDING_SILENCE_TIMEOUT = 5


@dataclass(frozen=True)
class CallUrls:
    """The absolute webhook URLs of one call attempt, under PUBLIC_BASE_URL."""

    base: str  # e.g. https://surveys.example.com/voice/attempts/42
    # The call, as a question's or a comment's webhook URL names it (ivr.calls.LiveCall.ref):
    # what the webhook needs to store the answer without reading the call first.
    ref: str = ""

    def question(self, key: str, attempt: int, *, after_one: bool = False) -> str:
        query = {
            "try": attempt,
            **({"stage": "after-one"} if after_one else {}),
            **({"ref": self.ref} if self.ref else {}),
        }
        return f"{self.base}/questions/{key}?{urlencode(query)}"

    def confirmation(self, step: Confirm) -> str:
        """The answer to "I heard nine, is that right?": the URL carries what was heard
        (Twilio's signature covers it), so nothing is stored until it is confirmed."""
        query = {
            "try": step.attempt,
            "value": step.value,
            "heard": step.transcript,
            **({"confidence": f"{step.confidence:.4f}"} if step.confidence is not None else {}),
        }
        return f"{self.base}/questions/{step.question.key}/confirm?{urlencode(query)}"

    def recording(self, key: str, attempt: int) -> str:
        query = {"try": attempt, **({"ref": self.ref} if self.ref else {})}
        return f"{self.base}/questions/{key}/recording?{urlencode(query)}"

    def transcription(self, key: str) -> str:
        return f"{self.base}/questions/{key}/transcription"


def render_step(step: Step, phrases: Phrasebook, urls: CallUrls) -> VoiceResponse:
    if isinstance(step, Finish):
        return _finish(step, phrases)
    if isinstance(step, ListenForZero):
        return _listen_for_zero(step, urls)
    if isinstance(step, Confirm):
        return _confirm(step, phrases, urls)
    if step.question.kind is QuestionKind.COMMENT:
        return _record(step, phrases, urls)
    return _gather(step, phrases, urls)


def goodbye(phrases: Phrasebook, phrase: str) -> VoiceResponse:
    """Say one phrase and hang up: opt-out confirmed, voicemail, unavailable."""
    response = VoiceResponse()
    _say(response, phrases, phrases.say(phrase))
    response.hangup()
    return response


def hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def _preamble(step: Ask, phrases: Phrasebook) -> list[str]:
    lines = []
    if step.greet:
        lines.append(phrases.say("greeting"))
    if step.moved_on:
        lines.append(phrases.say("moving_on"))
    if step.retry_reason is Rejection.NO_INPUT:
        lines.append(phrases.say("no_input"))
    elif step.retry_reason is Rejection.INVALID:
        lines.append(phrases.say("invalid"))
    elif step.retry_reason is Rejection.MISHEARD:
        lines.append(phrases.say("misheard"))
    return lines


def _question_text(step: Ask, phrases: Phrasebook) -> str:
    # On a retry the caller already heard the question; say what is expected instead.
    if step.retry_reason is not None:
        return phrases.expects(step.question.kind, spoken=step.question.takes_speech)
    return _prompt(step.question, phrases)


def _gather(step: Ask, phrases: Phrasebook, urls: CallUrls) -> VoiceResponse:
    lines = [*_preamble(step, phrases), _question_text(step, phrases)]
    spoken = step.question.takes_speech
    return _one_key(urls.question(step.question.key, step.attempt), lines, phrases,
                    step.question.kind, spoken=spoken)  # fmt: skip


def _confirm(step: Confirm, phrases: Phrasebook, urls: CallUrls) -> VoiceResponse:
    heard = phrases.spoken_value(step.question.kind, step.value)
    lines = [phrases.say("confirm_answer", answer=heard)]
    return _one_key(urls.confirmation(step), lines, phrases, QuestionKind.YESNO, spoken=True)


def _one_key(
    action: str, lines: list[str], phrases: Phrasebook, kind: QuestionKind, *, spoken: bool
) -> VoiceResponse:
    """A Gather for one key (or a spoken answer) with `lines` said inside it, then a
    Redirect to the same action for when Twilio falls through."""
    response = VoiceResponse()
    gather = Gather(
        num_digits=1,
        finish_on_key=FINISH_KEY,
        timeout=ANSWER_TIMEOUT,
        action=action,
        method="POST",
        action_on_empty_result=True,
        **_input(kind, spoken, phrases.language),
    )
    for line in lines:
        _say(gather, phrases, line)
    response.append(gather)
    response.redirect(action, method="POST")
    return response


def _input(kind: QuestionKind, spoken: bool, language: str) -> dict[str, str]:
    """A Gather's input attributes: keys, or keys and speech in the call's language."""
    if not spoken:
        return {"input": "dtmf"}
    return {
        "input": "dtmf speech",
        "language": twilio_language(language),
        "hints": utterance.hints(kind, language),
        "speech_model": SPEECH_MODEL,
        "speech_timeout": str(SPEECH_TIMEOUT),
    }


def _listen_for_zero(step: ListenForZero, urls: CallUrls) -> VoiceResponse:
    action = urls.question(step.question.key, step.attempt, after_one=True)
    response = VoiceResponse()
    response.gather(
        input="dtmf",
        num_digits=1,
        finish_on_key=FINISH_KEY,
        timeout=SECOND_DIGIT_TIMEOUT,
        action=action,
        method="POST",
        action_on_empty_result=True,
    )
    response.redirect(action, method="POST")
    return response


def _record(step: Ask, phrases: Phrasebook, urls: CallUrls) -> VoiceResponse:
    action = urls.recording(step.question.key, step.attempt)
    response = VoiceResponse()
    for line in [*_preamble(step, phrases), _prompt(step.question, phrases)]:
        _say(response, phrases, line)
    response.record(
        action=action,
        method="POST",
        max_length=step.question.max_seconds,
        timeout=RECORDING_SILENCE_TIMEOUT,
        finish_on_key=FINISH_KEY + OPT_OUT_KEY,
        play_beep=True,
        transcribe=True,
        transcribe_callback=urls.transcription(step.question.key),
    )
    response.redirect(action, method="POST")
    return response


def _finish(step: Finish, phrases: Phrasebook) -> VoiceResponse:
    response = VoiceResponse()
    if step.moved_on:
        _say(response, phrases, phrases.say("moving_on"))
    _say(response, phrases, phrases.say("thanks"))
    response.hangup()
    return response


def _prompt(question: Question, phrases: Phrasebook) -> str:
    return question.prompts[phrases.language]


def _say(parent: VoiceResponse | Gather, phrases: Phrasebook, text: str) -> None:
    voice = phrases.voice
    parent.say(text, voice=voice.voice, language=voice.language)


def twilio_language(language: str) -> str:
    """The `<Gather language>` for a survey language: the one its prompts are spoken in."""
    voice = VOICES.get(utterance.language_code(language)) or VOICES[utterance.DEFAULT_LANGUAGE]
    return voice.language


# -- documents: a step's TwiML rendered once, then filled in for each call ---------------


@dataclass(frozen=True)
class DocumentKey:
    """What a step's TwiML is a pure function of, apart from the call's own URLs: the
    survey version (its questions, prompts and phrase overrides), the call's language,
    the company and callback number the settings name, and the phrase that greets."""

    survey_version_id: int
    version_digest: str
    language: str
    company: str
    callback: str
    greeting: str = "greeting"


# Stand-ins for a call's base URL and ref while a document is rendered, random per
# process so that no survey text can contain them; quote_plus() and XML escaping leave
# both as they are, so each appears in the document exactly as written.
_BASE_STAND_IN = f"aftercall-base-{token_hex(8)}"
_REF_STAND_IN = f"aftercallref{token_hex(8)}"
_STAND_IN_URLS = {
    True: CallUrls(_BASE_STAND_IN, ref=_REF_STAND_IN),
    False: CallUrls(_BASE_STAND_IN),
}
# Characters XML escapes in a text or an attribute: a base URL or ref with any of them
# (never a real one) gets its document rendered for the call.
_ESCAPED = frozenset("&<>\"'\n\r\t")
# Documents kept per process: surveys x versions x languages x steps (a question's
# tries, greeting, moving on) is a few hundred for a large deployment.
MAX_DOCUMENTS = 4096
_documents: dict[tuple, str | None] = {}

HANG_UP_DOCUMENT = str(hang_up())
EMPTY_DOCUMENT = str(VoiceResponse())


def step_document(
    step: Step, key: DocumentKey, phrases: Callable[[], Phrasebook], urls: CallUrls
) -> str:
    """`render_step()`'s document as a string, from the per-process cache when the step
    is the same for every call of its survey version and language (all but Confirm)."""
    shape = _step_shape(step)
    if shape is None or not _fits(urls):
        return str(render_step(step, phrases(), urls))
    template = _template(
        (key, shape, bool(urls.ref)),
        lambda: render_step(step, phrases(), _STAND_IN_URLS[bool(urls.ref)]),
        lambda: render_step(step, phrases(), urls),
        urls,
    )
    if template is None:
        return str(render_step(step, phrases(), urls))
    return _fill(template, urls)


def goodbye_document(phrase: str, key: DocumentKey, phrases: Callable[[], Phrasebook]) -> str:
    """`goodbye()`'s document as a string, rendered once per version, language and phrase."""
    template = _template(
        (key, ("goodbye", phrase)),
        lambda: goodbye(phrases(), phrase),
        lambda: goodbye(phrases(), phrase),
        None,
    )
    return str(goodbye(phrases(), phrase)) if template is None else template


def _step_shape(step: Step) -> tuple | None:
    """The step, as a cache key: everything in it but the question's definition (the
    version's, named by the DocumentKey). None for a step rendered per call."""
    if isinstance(step, Ask):
        question = step.question
        return ("ask", question.key, step.attempt, step.greet, step.retry_reason, step.moved_on)
    if isinstance(step, ListenForZero):
        return ("zero", step.question.key, step.attempt)
    if isinstance(step, Finish):
        return ("finish", step.moved_on)
    return None  # Confirm: its URL carries what was heard


def _fits(urls: CallUrls) -> bool:
    return not (_ESCAPED.intersection(urls.base) or _ESCAPED.intersection(urls.ref))


def _template(
    cache_key: tuple,
    stand_in: Callable[[], VoiceResponse],
    real: Callable[[], VoiceResponse],
    urls: CallUrls | None,
) -> str | None:
    """The cached template for `cache_key`, rendered on first use and checked once
    against the real document of the call that asked (None: this step cannot be
    templated, render it for each call)."""
    try:
        return _documents[cache_key]
    except KeyError:
        pass
    template: str | None = str(stand_in())
    actual = str(real())
    if template is not None and (_fill(template, urls) if urls else template) != actual:
        template = None
    if len(_documents) >= MAX_DOCUMENTS:
        del _documents[next(iter(_documents))]  # the oldest
    _documents[cache_key] = template
    return template


def _fill(template: str, urls: CallUrls) -> str:
    document = template.replace(_BASE_STAND_IN, urls.base)
    if urls.ref:
        document = document.replace(_REF_STAND_IN, quote_plus(urls.ref))
    return document
