"""The record of everything the network saw and did, for assertions.

Entries are frozen dataclasses appended as things happen: REST requests, TwiML
documents fetched, prompts played, `<Gather>`s listening, keys pressed, words spoken,
callbacks posted, application errors, text messages and opt-out changes.
The journal keeps them globally; each `SimCall` keeps its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True)
class RestExchange:
    at: datetime
    method: str
    path: str
    # Repeated form fields (StatusCallbackEvent) are joined with spaces.
    params: dict[str, str]
    status: int
    error_code: int | None = None
    call_sid: str | None = None


@dataclass(frozen=True)
class DocumentFetch:
    at: datetime
    call_sid: str
    url: str  # exactly as requested (a GET carries the parameters in its query)
    method: str
    params: dict[str, str]
    status: int | None
    xml: str
    reason: str  # answer, gather, record, redirect, update


@dataclass
class Prompt:
    at: datetime
    call_sid: str
    kind: str  # say, play, beep, error
    text: str
    language: str | None = None
    voice: str | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class KeyPress:
    at: datetime
    call_sid: str
    key: str


@dataclass(frozen=True)
class Listening:
    """A `<Gather>` starting to listen, with the attributes that say what it hears, so
    tests can check the language and hints an app asked Twilio to recognise with."""

    at: datetime
    call_sid: str
    input: tuple[str, ...]  # ("dtmf",), ("speech",) or ("dtmf", "speech")
    timeout: float
    language: str  # the Gather's `language`, Twilio's default "en-US" when absent
    hints: tuple[str, ...]  # the comma-separated `hints`, one entry each
    speech_model: str | None  # `speechModel` as given (None: Twilio picks)
    speech_timeout: str | None  # `speechTimeout` as given ("auto", "3"); None: `timeout`
    enhanced: bool
    barge_in: bool


@dataclass(frozen=True)
class SpeechInput:
    """Words the callee (or an inbound caller) said at a `<Gather>`."""

    at: datetime  # when they started speaking
    call_sid: str
    text: str  # what they said: the transcript a recogniser would return
    confidence: float | None
    seconds: float
    # Posted to the app as SpeechResult. False: no recogniser was listening (a keys-only
    # Gather, or the Gather had timed out), or it made out nothing.
    recognised: bool


@dataclass(frozen=True)
class CallbackPost:
    at: datetime
    call_sid: str
    kind: str  # status, amd, transcription
    url: str
    method: str
    params: dict[str, str]
    status: int | None


@dataclass(frozen=True)
class AppError:
    """What Twilio would log in its debugger as an application error or warning."""

    at: datetime
    call_sid: str
    code: int  # Twilio's: 11200 HTTP retrieval failure, 11205 connection, 12100 parse ...
    message: str
    url: str | None = None


@dataclass(frozen=True)
class TextMessage:
    """A message's status changing: created (queued or accepted), sent, delivered,
    undelivered or failed for outbound ones, received for inbound ones."""

    at: datetime
    message_sid: str
    direction: str  # outbound-api, outbound-reply, inbound
    from_: str
    to: str
    body: str
    status: str
    error_code: int | None = None


@dataclass(frozen=True)
class OptOutChange:
    """A customer's STOP or START keyword changing whether the account's number may
    text them, as Twilio's default opt-out handling records it."""

    at: datetime
    customer: str
    number: str  # the account's number they texted
    keyword: str  # the word they sent, as sent
    opted_out: bool


@dataclass
class Journal:
    """Everything, in order of occurrence; thread-safe appends."""

    rest: list[RestExchange] = field(default_factory=list)
    documents: list[DocumentFetch] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    keys: list[KeyPress] = field(default_factory=list)
    listening: list[Listening] = field(default_factory=list)
    speech: list[SpeechInput] = field(default_factory=list)
    callbacks: list[CallbackPost] = field(default_factory=list)
    app_errors: list[AppError] = field(default_factory=list)
    messages: list[TextMessage] = field(default_factory=list)
    opt_outs: list[OptOutChange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    _KINDS: ClassVar[dict[type, str]] = {
        RestExchange: "rest",
        DocumentFetch: "documents",
        Prompt: "prompts",
        KeyPress: "keys",
        Listening: "listening",
        SpeechInput: "speech",
        CallbackPost: "callbacks",
        AppError: "app_errors",
        TextMessage: "messages",
        OptOutChange: "opt_outs",
    }

    def add(self, entry: Any) -> None:
        with self._lock:
            getattr(self, self._KINDS[type(entry)]).append(entry)
