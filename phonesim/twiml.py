"""The TwiML interpreter: what Twilio does with the documents an app returns.

Follows twilio.com/docs/voice/twiml and the verb pages for <Say>, <Play>, <Pause>,
<Gather>, <Record>, <Redirect>, <Hangup>, <Reject>:

- Verbs run in order; a document that runs out of verbs ends the call.
- `action` URLs (Gather, Record) and Redirect targets may be relative: they are resolved
  against the URL of the document they came from; without `action` the current
  document URL is requested again. `method` defaults to POST.
- <Gather>: nested <Say>/<Play>/<Pause> play while it listens; a key stops them
  (barge-in). It ends on `numDigits`, a `finishOnKey` key (default "#", not included in
  Digits) or `timeout` seconds (default 5) without a key. With input it requests the
  action with Digits and FinishedOnKey. Without input it falls through to the next verb,
  unless `actionOnEmptyResult="true"`, which requests the action with empty Digits.
- <Gather input="speech"> or "dtmf speech" also listens for speech (`phonesim.recognizer`):
  words stop the prompts too (unless bargeIn="false"), must start within `timeout` s
  of the prompts' end, and end the Gather `speechTimeout` s after they stop; the action
  gets SpeechResult and Confidence (when known) and no Digits. Speech first wins over
  keys, finishOnKey included. An empty or unrecognised result is no input: the next
  verb runs, or with actionOnEmptyResult the action is requested with neither
  SpeechResult nor Digits (unless a lone finishOnKey key was pressed). A keys-only
  Gather does not hear speech; a speech-only one ignores keys (they are not kept for
  the next verb either).
- <Record>: `finishOnKey` default "1234567890*#", `timeout` seconds of silence (default
  5), `maxLength` (default 3600), `playBeep` default true. Requests the action with
  RecordingUrl, RecordingDuration, RecordingSid, Digits; if the recording is empty (the
  callee said nothing, or pressed a finish key first) Twilio does not request the
  action and continues with the next verb. `transcribe` posts TranscriptionText etc. to
  `transcribeCallback` later, asynchronously.
- A webhook that fails (no response, non-2xx, not a <Response> document) is an
  application error: Twilio says so to the caller and hangs up.
- An incoming call is answered by its first document: it rings while the voice URL is
  requested and is answered as that document starts, unless its first verb is
  <Reject>, which leaves the call unanswered (status busy with `reason="busy"`, else
  no-answer). Anywhere else <Reject> ends the call like <Hangup>.
- DTMF the caller's platform sends once an incoming call connects (`sendDigits`: keys,
  "w" a half-second pause) goes to the first <Gather> that listens for keys, in place
  of the caller's own answer there: it cuts the Gather's prompts, a `finishOnKey` key
  ends it as usual, and keys sent after it ended wait on the keypad for the next one.

The interpreter is a generator that yields the seconds each step takes; the network's
driver turns them into simulated (or real) time and throws REST updates (redirect,
hangup) into it at the moment they arrive, as Twilio abandons the current TwiML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from phonesim.call import Redirect, SimCall
from phonesim.journal import AppError, DocumentFetch, KeyPress, Prompt, SpeechInput
from phonesim.persona import HANG_UP, Comment, Speech
from phonesim.question import language_of, read_spoken
from phonesim.recognizer import MAX_SPEECH_SECONDS, Recognizer

if TYPE_CHECKING:
    from phonesim.network import PhoneNetwork

# A Redirect loop would otherwise run forever in simulated time.
MAX_DOCUMENTS = 200
WORDS_PER_SECOND = 2.5  # ~150 words a minute, Twilio's default voices
PLAY_SECONDS = 5.0
ERROR_MESSAGE = "We are sorry, an application error has occurred. Goodbye."
SAY_DEFAULTS = {"voice": "man", "language": "en-US"}
SEND_DIGITS_PAUSE = 0.5  # a "w" in sendDigits
SENT_KEY_SECONDS = 0.1  # about how long a sent DTMF tone and the gap after it take

Steps = Generator[float, None, None]


class CalleeHungUp(Exception):
    """The persona put the phone down."""


class AppFailure(Exception):
    """A webhook failed in a way Twilio treats as an application error."""


@dataclass(frozen=True)
class Fetch:
    url: str
    method: str
    reason: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inline:
    twiml: str
    base_url: str


Instruction = Fetch | Inline | None
CONTINUE = object()


def prompt_seconds(element: ET.Element) -> float:
    loop = _int(element.get("loop"), 1)
    loop = 10 if loop == 0 else loop  # "0" loops until interrupted; cap it
    if element.tag == "Say":
        words = len("".join(element.itertext()).split())
        return max(0.5, words / WORDS_PER_SECOND) * loop
    if element.tag == "Play":
        return PLAY_SECONDS * loop
    if element.tag == "Pause":
        return float(_int(element.get("length"), 1))
    return 0.0


class TwimlSession:
    """Runs one call's TwiML from its first document until the call should end."""

    def __init__(self, network: PhoneNetwork, call: SimCall, *, send_digits: str = "") -> None:
        self.net = network
        self.call = call
        # A <Say>/<Play> has played since the last input verb: the next input verb is a
        # question the persona answers (see phonesim.persona).
        self.prompted = False
        # What the <Say>s since the last input verb said, and in which language: what
        # the persona makes the question out from.
        self.heard: list[str] = []
        self.heard_language: str | None = None
        # The caller's platform's DTMF, as (pause before, keys) runs, until the first
        # <Gather> listening for keys takes them; None: nothing was sent.
        self.sent: list[tuple[float, str]] | None = _bursts(send_digits) or None

    # -- documents ------------------------------------------------------------------
    def run(
        self, first: Instruction, *, answer: Callable[[], object] | None = None
    ) -> Generator[float, None, str | None]:
        """Runs the TwiML until the call should end; returns the `reason` of a
        <Reject> that refused an incoming call, else None.

        `answer` (incoming calls) is called once the first document is in, before its
        first verb runs (or before an application error is announced): that is when
        Twilio answers an incoming call, unless the document starts with <Reject>.
        """
        instruction = first
        documents = 0
        while instruction is not None:
            try:
                documents += 1
                if documents > MAX_DOCUMENTS:
                    raise AppFailure(f"more than {MAX_DOCUMENTS} documents in one call")
                root, url = self._load(instruction)
                if answer is not None:
                    opening = next(iter(root), None)
                    if opening is not None and opening.tag == "Reject":
                        return opening.get("reason", "rejected")
                    answer()
                    answer = None
                instruction = yield from self._execute(root, url)
            except Redirect as update:
                if update.twiml is not None:
                    instruction = Inline(update.twiml, update.url or self.call.url or "")
                else:
                    instruction = Fetch(update.url or "", update.method, "update")
            except AppFailure:
                if answer is not None:
                    answer()  # Twilio picks up to tell the caller about the error
                self._prompt("error", ERROR_MESSAGE, {})
                yield prompt_seconds(_say(ERROR_MESSAGE))
                return None
        return None

    def _load(self, instruction: Fetch | Inline) -> tuple[ET.Element, str]:
        call = self.call
        if isinstance(instruction, Inline):
            self.net.record(
                call,
                DocumentFetch(
                    self.net.clock.now(), call.sid, "", "", {}, None, instruction.twiml, "twiml"
                ),
            )
            return self._parse(instruction.twiml, None), instruction.base_url
        params = {**call.webhook_params(), **instruction.extra}
        response = self.net.webhooks.signed_request(instruction.url, instruction.method, params)
        self.net.record(
            call,
            DocumentFetch(
                self.net.clock.now(),
                call.sid,
                response.url,
                response.method,
                params,
                response.status,
                response.text,
                instruction.reason,
            ),
        )
        if response.status is None:
            self._fail(11205, f"HTTP connection failure: {response.error}", instruction.url)
        if not response.ok:
            self._fail(11200, f"HTTP retrieval failure: status {response.status}", instruction.url)
        return self._parse(response.text, instruction.url), instruction.url

    def _parse(self, text: str, url: str | None) -> ET.Element:
        try:
            root = ET.fromstring(text.strip())
        except ET.ParseError as exc:
            self._fail(12100, f"Document parse failure: {exc}", url)
        if root.tag != "Response":
            self._fail(12100, f"Document parse failure: root element <{root.tag}>", url)
        return root

    def _fail(self, code: int, message: str, url: str | None) -> None:
        self.net.record(
            self.call, AppError(self.net.clock.now(), self.call.sid, code, message, url)
        )
        raise AppFailure(message)

    # -- verbs ------------------------------------------------------------------------
    def _execute(self, root: ET.Element, url: str) -> Generator[float, None, Instruction]:
        for verb in root:
            if self.call.pending is not None:
                yield 0.0  # let the driver deliver a REST update before the next verb
            tag = verb.tag
            if tag in ("Say", "Play"):
                self.prompted = True
                self._hear(verb)
                yield from self._play(verb, None)
            elif tag == "Pause":
                yield prompt_seconds(verb)
            elif tag == "Gather":
                outcome = yield from self._gather(verb, url)
                if outcome is not CONTINUE:
                    return outcome  # type: ignore[return-value]
            elif tag == "Record":
                outcome = yield from self._record(verb, url)
                if outcome is not CONTINUE:
                    return outcome  # type: ignore[return-value]
            elif tag == "Redirect":
                target = (verb.text or "").strip()
                if not target:
                    self._fail(12100, "<Redirect> without a URL", url)
                return Fetch(urljoin(url, target), verb.get("method", "POST"), "redirect")
            elif tag in ("Hangup", "Reject"):
                return None
            else:
                # Twilio would run these (Dial, Enqueue, Sms ...); this simulator does not.
                self.net.record(
                    self.call,
                    AppError(
                        self.net.clock.now(),
                        self.call.sid,
                        12100,
                        f"<{tag}> is not supported by phonesim",
                        url,
                    ),
                )
        return None

    def _play(
        self,
        element: ET.Element,
        cut_after: float | None,
        mark_after: float | None = None,
        on_mark: Callable[[], None] | None = None,
    ) -> Generator[float, None, bool]:
        """Plays a Say/Play/Pause; True if input cut it short after `cut_after` s, or
        if `on_mark` ran `mark_after` s in (input the Gather does not listen for, which
        happens during the prompt without stopping it)."""
        seconds = prompt_seconds(element)
        prompt = None
        if element.tag == "Say":
            text = " ".join("".join(element.itertext()).split())
            prompt = self._prompt("say", text, element.attrib)
        elif element.tag == "Play":
            prompt = self._prompt("play", (element.text or "").strip(), element.attrib)
        interrupted = cut_after is not None and cut_after < seconds
        marked = on_mark is not None and mark_after is not None and mark_after < seconds
        try:
            if interrupted:
                yield cut_after  # type: ignore[misc]
            elif marked:
                yield mark_after  # type: ignore[misc]
                on_mark()  # type: ignore[misc]
                yield seconds - mark_after  # type: ignore[operator]
            else:
                yield seconds
        except BaseException:
            if prompt is not None:
                prompt.interrupted = True
            raise
        if interrupted and prompt is not None:
            prompt.interrupted = True
        return interrupted or marked

    def _hear(self, element: ET.Element) -> None:
        """Keeps what a <Say> says for the persona to make the question out from."""
        if element.tag != "Say":
            return
        self.heard.append(" ".join("".join(element.itertext()).split()))
        language = element.get("language")
        if language:
            self.heard_language = language.split("-")[0].lower()

    def _prompt(self, kind: str, text: str, attrs: dict[str, str]) -> Prompt:
        prompt = Prompt(
            self.net.clock.now(),
            self.call.sid,
            kind,
            text,
            language=attrs.get("language", SAY_DEFAULTS["language"]) if kind == "say" else None,
            voice=attrs.get("voice", SAY_DEFAULTS["voice"]) if kind == "say" else None,
        )
        self.net.record(self.call, prompt)
        return prompt

    def _type(self, keys: str) -> None:
        for key in keys:
            self.net.record(self.call, KeyPress(self.net.clock.now(), self.call.sid, key))
            self.call.callee.buffer += key

    def _hang_up(self, prompts: list[ET.Element]) -> Steps:
        if prompts:
            yield from self._play(prompts[0], 1.0)
        else:
            yield 1.0
        raise CalleeHungUp

    def _gather(self, verb: ET.Element, url: str) -> Generator[float, None, object]:
        num_digits = _int(verb.get("numDigits"), 0) or None
        finish = verb.get("finishOnKey", "#")
        timeout = float(_int(verb.get("timeout"), 5))
        action = urljoin(url, verb.get("action")) if verb.get("action") else url
        method = verb.get("method", "POST")
        on_empty = verb.get("actionOnEmptyResult", "false").lower() == "true"
        ears = Recognizer.of(verb, timeout)
        dtmf = ears.hears_keys
        self._listen(ears, url)
        prompts = [child for child in verb if child.tag in ("Say", "Play", "Pause")]
        asked = self.prompted or any(p.tag in ("Say", "Play") for p in prompts)
        self.prompted = False
        for prompt in prompts:
            self._hear(prompt)
        said, self.heard = " ".join(self.heard), []
        callee, persona = self.call.callee, self.call.persona

        # What the other end does (keys to type or words to say), seconds into the
        # Gather it starts, and runs of sent DTMF that follow it (with the pause before
        # each).
        keys, gap = "", persona.key_gap
        speech: Speech | None = None
        act_at: float | None = None
        later: list[tuple[float, str]] = []
        if dtmf and self.sent is not None:
            # The platform's DTMF reaches this Gather, not the persona's answer: the
            # persona answers from the next question on.
            (act_at, keys), *later = self.sent
            self.sent, gap = None, SENT_KEY_SECONDS
            if callee.buffer:
                self._type(keys)  # behind keys already waiting: no prompt plays anyway
                keys = ""
        elif asked and not (dtmf and callee.buffer):
            answer = callee.next_answer(read_spoken(said, self.heard_language))
            if answer is HANG_UP:
                yield from self._hang_up(prompts)
            if isinstance(answer, str):
                keys = answer
            elif isinstance(answer, Speech):
                speech = answer

        # Input this Gather takes stops its prompts (barge-in; for speech unless
        # bargeIn="false") and ends its wait for input. Input it does not take (speech
        # at a keys-only Gather, keys at a speech-only one) lets the prompts play on and
        # the wait run out.
        heard = (bool(keys) and dtmf) or (speech is not None and ears.hears_speech)
        barges = heard and (speech is None or ears.barge_in)
        late = False
        idle = 0.0  # seconds the Gather had waited for input when unheard input came
        at = 0.0  # seconds since the Gather began
        if not (dtmf and callee.buffer):  # typed-ahead keys stop the prompts at once
            total = sum(prompt_seconds(p) for p in prompts)
            if (keys or speech is not None) and act_at is None:
                barge = persona.barge_in_after
                if barge is not None and prompts:
                    # People barge in on the question itself, not on a greeting or an
                    # apology said before it in the same Gather.
                    act_at = total - prompt_seconds(prompts[-1]) + barge
                else:
                    act_at = total + persona.think_seconds
            acted = False
            act_now = partial(self._act, keys, speech, ears, late=False)
            for prompt in prompts:
                offset = act_at - at if act_at is not None and not acted else None
                if barges:
                    if (yield from self._play(prompt, offset)):
                        at = act_at  # type: ignore[assignment]
                        break
                else:
                    acted = (yield from self._play(prompt, None, offset, act_now)) or acted
                at += prompt_seconds(prompt)
            if act_at is not None and not acted:
                wait = max(0.0, act_at - at)
                if wait >= timeout:
                    late = True  # too slow: the Gather gives up, the input comes afterwards
                    yield timeout
                else:
                    yield wait
                    idle = 0.0 if heard else wait
                at += min(wait, timeout)
                self._act(keys, speech, ears, late=late)

        if speech is not None and ears.hears_speech and not late:
            # Speech came first: the recogniser has the Gather; keys (finishOnKey
            # among them) no longer count. It posts once the speech has been followed
            # by speechTimeout seconds of silence, or at once after a minute of it.
            seconds = min(speech.seconds, MAX_SPEECH_SECONDS)
            silence = ears.end_of_speech if speech.seconds < MAX_SPEECH_SECONDS else 0.0
            yield max(0.0, (act_at or 0.0) + seconds + silence - at)
            result = ears.result(speech)
            if result or on_empty:
                return Fetch(action, method, "gather", result)
            return CONTINUE

        digits, finished_on = "", ""
        if dtmf and not late:
            while True:
                key = callee.take_key()
                if key is None:
                    if later and later[0][0] < timeout:
                        pause, more = later.pop(0)
                        yield pause  # the platform's "w"s, shorter than the timeout
                        self._type(more)
                        continue
                    yield timeout - idle  # waits for another key, then submits what it has
                    break
                idle = 0.0
                if key in finish:
                    finished_on = key
                    break
                digits += key
                if num_digits and len(digits) >= num_digits:
                    break
                yield gap
        elif not late:
            yield timeout - idle
        for _, more in later:
            self._type(more)  # sent after this Gather ended: the next input verb's
        if digits:
            return Fetch(action, method, "gather", {"Digits": digits, "FinishedOnKey": finished_on})
        if on_empty:
            # A keys-only Gather posts its empty Digits; one that also listened for
            # speech posts Digits only if a key (a lone finishOnKey) was pressed.
            keyed = not ears.hears_speech or finished_on
            extra = {"Digits": digits, "FinishedOnKey": finished_on} if keyed else {}
            return Fetch(action, method, "gather", extra)
        return CONTINUE

    def _listen(self, ears: Recognizer, url: str) -> None:
        """Journals a Gather starting to listen, and the warnings its attributes earn."""
        now = self.net.clock.now()
        self.net.record(self.call, ears.listening(now, self.call.sid))
        for code, message in ears.warnings:
            self.net.record(self.call, AppError(now, self.call.sid, code, message, url))

    def _act(self, keys: str, speech: Speech | None, ears: Recognizer, *, late: bool) -> None:
        """The other end presses its keys or says its words, now."""
        if keys and ears.hears_keys:
            self._type(keys)
        elif keys:
            # A speech-only Gather does not listen to the keypad: the tones go nowhere.
            for key in keys:
                self.net.record(self.call, KeyPress(self.net.clock.now(), self.call.sid, key))
        if speech is not None:
            recognised = ears.hears_speech and not late and bool(speech.result)
            self.net.record(
                self.call,
                SpeechInput(
                    self.net.clock.now(),
                    self.call.sid,
                    speech.text,
                    speech.confidence,
                    speech.seconds,
                    recognised,
                ),
            )

    def _record(self, verb: ET.Element, url: str) -> Generator[float, None, object]:
        action = urljoin(url, verb.get("action")) if verb.get("action") else url
        method = verb.get("method", "POST")
        timeout = float(_int(verb.get("timeout"), 5))
        finish = verb.get("finishOnKey", "1234567890*#")
        max_length = float(_int(verb.get("maxLength"), 3600)) or 3600.0
        asked = self.prompted
        self.prompted = False
        language = self.heard_language or language_of(" ".join(self.heard))
        self.heard = []
        callee = self.call.callee

        answer: object = None
        if asked and not callee.buffer:
            answer = callee.next_answer(None, recording=True, language=language)
            if answer is HANG_UP:
                yield from self._hang_up([])
            if isinstance(answer, Speech):
                answer = Comment(answer.text, seconds=answer.seconds)  # a recording hears it
        if verb.get("playBeep", "true").lower() != "false":
            self._prompt("beep", "beep", {})
            yield 0.5
        if isinstance(answer, str) and answer:
            self._type(answer)
        if callee.buffer:
            while (key := callee.take_key()) is not None:
                if key in finish:
                    return CONTINUE  # nothing recorded: no action request, next verb
        if not isinstance(answer, Comment):
            yield timeout  # silence until the silence timeout: an empty recording
            return CONTINUE

        seconds = min(answer.seconds, max_length)
        yield seconds
        digits = ""
        if seconds < max_length:
            if answer.finish_key:
                self._type(answer.finish_key)
                key = callee.take_key() or ""
                digits = key if key in finish else ""
            else:
                yield timeout  # the trailing silence that ends it; trimmed from the file
        recording_sid, recording_url = self.net.add_recording(self.call, seconds, answer.text)
        if verb.get("transcribe", "false").lower() == "true":
            callback = verb.get("transcribeCallback")
            self.net.schedule_transcription(
                self.call,
                recording_sid,
                recording_url,
                answer.text,
                urljoin(url, callback) if callback else None,
            )
        extra = {
            "RecordingUrl": recording_url,
            "RecordingDuration": str(round(seconds)),
            "RecordingSid": recording_sid,
            "Digits": digits,
        }
        return Fetch(action, method, "record", extra)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default  # e.g. timeout="auto"


def _say(text: str) -> ET.Element:
    element = ET.Element("Say")
    element.text = text
    return element


def _bursts(send_digits: str) -> list[tuple[float, str]]:
    """ "ww12w3#" -> [(1.0, "12"), (0.5, "3#")]: the runs of keys in a `sendDigits`
    string, each with the pause before it (a "w" is half a second)."""
    bursts: list[tuple[float, str]] = []
    pause, keys = 0.0, ""
    for char in send_digits:
        if char != "w":
            keys += char
            continue
        if keys:
            bursts.append((pause, keys))
            pause, keys = 0.0, ""
        pause += SEND_DIGITS_PAUSE
    if keys:
        bursts.append((pause, keys))
    return bursts
