"""The record of everything the network saw and did, for assertions.

Entries are frozen dataclasses appended as things happen: REST requests, TwiML
documents fetched, prompts played, keys pressed, callbacks posted, application errors.
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


@dataclass
class Journal:
    """Everything, in order of occurrence; thread-safe appends."""

    rest: list[RestExchange] = field(default_factory=list)
    documents: list[DocumentFetch] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    keys: list[KeyPress] = field(default_factory=list)
    callbacks: list[CallbackPost] = field(default_factory=list)
    app_errors: list[AppError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    _KINDS: ClassVar[dict[type, str]] = {
        RestExchange: "rest",
        DocumentFetch: "documents",
        Prompt: "prompts",
        KeyPress: "keys",
        CallbackPost: "callbacks",
        AppError: "app_errors",
    }

    def add(self, entry: Any) -> None:
        with self._lock:
            getattr(self, self._KINDS[type(entry)]).append(entry)
