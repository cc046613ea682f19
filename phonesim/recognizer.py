"""A `<Gather>`'s speech recogniser: what its attributes ask for, how long it waits
after the caller stops speaking, and what it posts to the action URL.

Follows twilio.com/docs/voice/twiml/gather (the attributes table and the `action`,
`input`, `language`, `hints`, `speechModel`, `speechTimeout`, `timeout` and `enhanced`
sections):
- `input` is "dtmf" (the default), "speech" or "dtmf speech". With both, the first
  input detected wins; speech first makes Twilio ignore `finishOnKey`.
- `speechTimeout` is how long Twilio waits after a pause in speech before it stops
  recognising and posts the result: a positive integer of seconds, or "auto" (stop at
  the first pause); without it, the `timeout` value. `timeout` still bounds the wait
  for the caller to start. Twilio gathers at most 60 seconds of speech.
- The action request carries `SpeechResult` (the transcript) and `Confidence` (0.0 to
  1.0; Twilio does not guarantee it is present).
- `language` (default en-US), `hints` (comma-separated entries), `speechModel`,
  `enhanced` and `profanityFilter` change how a real recogniser listens. Here they are
  read and journaled (`Listening`) but change nothing: a persona's `Speech` already says
  what the recogniser returns.
- A `speechModel` together with `speechTimeout="auto"` is Twilio's warning 13335; a
  `speechTimeout` that is neither a positive integer nor "auto" is warning 13327. Both
  are debugger warnings: the Gather still runs (here with `timeout` in place of a
  malformed `speechTimeout`).

It does not recognise audio, post `partialResultCallback` requests
(UnstableSpeechResult), filter profanity, or check a language against a model.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from phonesim.journal import Listening
from phonesim.persona import Speech

DEFAULT_LANGUAGE = "en-US"
# Twilio stops gathering speech after a minute.
MAX_SPEECH_SECONDS = 60.0
# speechTimeout="auto" ends recognition "at the first pause"; how long a pause that
# is, Twilio does not say (a guess: about a second).
AUTO_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class Recognizer:
    """What one `<Gather>` listens for and how, read from its attributes. Built for
    every Gather, speech or not, so the journal shows what the app asked for."""

    input: tuple[str, ...]
    timeout: float
    language: str
    hints: tuple[str, ...]
    speech_model: str | None
    speech_timeout: str | None
    enhanced: bool
    # Twilio's bargeIn: speech stops the nested prompts (keys always do).
    barge_in: bool
    # (code, message) of the debugger warnings Twilio would log for these attributes.
    warnings: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, verb: ET.Element, timeout: float) -> Recognizer:
        tokens = set(verb.get("input", "dtmf").split())
        kinds = tuple(kind for kind in ("dtmf", "speech") if kind in tokens) or ("dtmf",)
        hints = tuple(h.strip() for h in verb.get("hints", "").split(",") if h.strip())
        speech_model = verb.get("speechModel")
        speech_timeout = verb.get("speechTimeout")
        warnings: list[tuple[int, str]] = []
        if "speech" in kinds and speech_timeout is not None:
            if speech_timeout == "auto" and speech_model:
                warnings.append(
                    (13335, "Gather: speechTimeout auto cannot be used with model default")
                )
            elif speech_timeout != "auto" and not _positive_int(speech_timeout):
                warnings.append((13327, f"Gather: Invalid speechTimeout value {speech_timeout!r}"))
        return cls(
            input=kinds,
            timeout=timeout,
            language=verb.get("language", DEFAULT_LANGUAGE),
            hints=hints,
            speech_model=speech_model,
            speech_timeout=speech_timeout,
            enhanced=verb.get("enhanced", "false").lower() == "true",
            barge_in=verb.get("bargeIn", "true").lower() != "false",
            warnings=tuple(warnings),
        )

    @property
    def hears_keys(self) -> bool:
        return "dtmf" in self.input

    @property
    def hears_speech(self) -> bool:
        return "speech" in self.input

    @property
    def end_of_speech(self) -> float:
        """Seconds of silence after the caller stops speaking before Twilio posts."""
        if self.speech_timeout == "auto":
            return AUTO_PAUSE_SECONDS
        if self.speech_timeout is not None and _positive_int(self.speech_timeout):
            return float(self.speech_timeout)
        return self.timeout

    def result(self, speech: Speech) -> dict[str, str]:
        """The action parameters for what the recogniser made of `speech`; empty when
        it made out nothing, which Twilio treats as no input."""
        if not speech.result:
            return {}
        params = {"SpeechResult": speech.result}
        if speech.confidence is not None:
            params["Confidence"] = str(round(speech.confidence, 8))
        return params

    def listening(self, at: datetime, call_sid: str) -> Listening:
        return Listening(
            at,
            call_sid,
            self.input,
            self.timeout,
            self.language,
            self.hints,
            self.speech_model,
            self.speech_timeout,
            self.enhanced,
            self.barge_in,
        )


def _positive_int(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) > 0
