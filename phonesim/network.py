"""The phone network: calls, callees, the REST server and the driver that runs calls.

`PhoneNetwork` owns the calls and one event queue ordered by (simulated) time. Each
live call is a generator (ringing, answer, AMD, then the TwiML interpreter) that yields
how long its next step takes; the driver pops the earliest event, moves the clock there
and resumes that call, so many calls interleave on one clock exactly as their timings
say. Webhooks are real HTTP requests made from the driver's thread, without holding the
network lock, so the app may call the REST API while handling one.

REST updates arrive on server threads. They never touch a running generator: they set
the call's `pending` interrupt and schedule the call "now"; the driver throws the
interrupt into the generator at its current yield, which is the moment Twilio would
abandon the TwiML it is executing.

Calls come both ways: `create_call` (REST) places outbound calls to personas;
`dial_in` brings an incoming call from a persona to one of the account's numbers,
answered by the TwiML at the number's voice URL. Both run the same lifecycle, driver
and TwiML interpreter, and both can be redirected or hung up over the REST API.

Two ways to drive: `run_until_idle()` in the caller's thread (tests, the demo), or
`start_driver()` for a background thread that runs calls as they arrive (server mode).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any, Literal

from phonesim.account import (
    DEFAULT_NUMBERS,
    E164,
    KEEP,
    Account,
    IncomingNumber,
    Keep,
    check_url,
)
from phonesim.call import (
    ENDED,
    STATUS_EVENTS,
    CallInterrupt,
    Cancel,
    Hangup,
    Redirect,
    SimCall,
)
from phonesim.clock import Clock, SimClock, rfc2822
from phonesim.errors import (
    ApiError,
    account_not_active,
    not_found,
    server_error,
    too_many_requests,
)
from phonesim.journal import (
    AppError,
    CallbackPost,
    DocumentFetch,
    Journal,
    KeyPress,
    Listening,
    OptOutChange,
    Prompt,
    RestExchange,
    SpeechInput,
    TextMessage,
)
from phonesim.message import FATES, MAX_BODY, REPLIES, SimMessage, opt_keyword
from phonesim.persona import Persona, PersonaMix
from phonesim.texter import TextPersona, TextPersonaMix, TextThread
from phonesim.twiml import CalleeHungUp, Fetch, Inline, TwimlSession
from phonesim.webhook import Webhooks

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "phonesim-auth-token"
# Twilio's transcriptions arrive a while after the recording; simulated seconds.
TRANSCRIPTION_DELAY = 8.0
DEFAULT_RING_TIMEOUT = 60  # Twilio's default `Timeout`
DEFAULT_TIME_LIMIT = 4 * 3600  # Twilio's default `TimeLimit`: a call ends after 4 hours
# A message leaves Twilio a moment after it is queued, and the handset's delivery
# receipt comes back a few seconds later; simulated seconds.
MESSAGE_SEND_SECONDS = 1.0
MESSAGE_DELIVERY_SECONDS = 3.0
# The error_message Twilio gives with the delivery errors a survey meets.
MESSAGE_ERRORS = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
DTMF_KEYS = frozenset("0123456789*#w")  # what `sendDigits` takes; "w" waits half a second

_CALL_LISTS = {
    DocumentFetch: "documents",
    Prompt: "prompts",
    KeyPress: "key_presses",
    Listening: "listening",
    SpeechInput: "speech",
    CallbackPost: "callbacks",
    AppError: "app_errors",
    RestExchange: "rest",
}

Steps = Generator[float, None, None]


class PhoneNetwork:
    """A Twilio account's worth of phone network, in process."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        persona_mix: PersonaMix | None = None,
        text_persona_mix: TextPersonaMix | None = None,
        calls_per_second: float | None = None,
        rate_limit_clock: Literal["wall", "sim"] = "wall",
        blocked: Iterable[str] = (),
        numbers: Iterable[str] = DEFAULT_NUMBERS,
        caller_ids: Iterable[str] = (),
        account_status: str = "active",
        account_type: str = "Full",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.clock: Clock = clock or SimClock()
        # What Twilio's Account, IncomingPhoneNumbers and OutgoingCallerIds resources
        # answer: `numbers` are owned (voice and SMS), `caller_ids` verified.
        self.account = Account(
            account_sid,
            auth_token,
            self.clock.now(),
            status=account_status,
            account_type=account_type,
            numbers=numbers,
            caller_ids=caller_ids,
        )
        self.seed = seed
        self.persona_mix = persona_mix or PersonaMix.default()
        # None: customers given no texter never text back, so a test that sends texts
        # sees no replies it did not ask for.
        self.text_persona_mix = text_persona_mix
        self.calls_per_second = calls_per_second
        self.rate_limit_clock = rate_limit_clock
        self.blocked: list[str] = list(blocked)
        self.host, self.port = host, port
        self.journal = Journal()
        self.webhooks = Webhooks(auth_token)
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._drive_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._personas: dict[str, Persona] = {}
        self._calls: dict[str, SimCall] = {}
        self._recordings: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, SimMessage] = {}
        self._message_fates: dict[str, tuple[str, int | None]] = {}
        # (account number, customer) pairs blocked by the customer's STOP.
        self._opted_out: set[tuple[str, str]] = set()
        self._texters: dict[str, TextPersona] = {}
        # (customer, account number): the persona's conversation with that number.
        self._threads: dict[tuple[str, str], TextThread] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        # An event taken off the queue is still pending until it has run: a call's end
        # posts its final status callback after the call already counts as ended.
        self._running_events = 0
        self._order = itertools.count()
        self._recent_creates: deque[float] = deque()
        self._faults: list[list[Any]] = []
        self._slow_creates = 0
        self._slow_seconds = 0.0
        self._slow_paths: list[list[Any]] = []
        self._lost_final_share = 0.0
        self._lost_final_numbers: set[str] = set()
        self._server: Any = None
        self._driver: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- configuration ----------------------------------------------------------------
    def set_persona(self, number: str, persona: Persona) -> None:
        with self._lock:
            self._personas[number] = persona

    def persona_for(self, number: str) -> Persona:
        with self._lock:
            if number not in self._personas:
                self._personas[number] = self.persona_mix.choose(self.seed, number)
            return self._personas[number]

    def set_texter(self, number: str, texter: TextPersona) -> None:
        """How the customer at `number` answers the account's texts from now on
        (`phonesim.texter`): each text delivered to it is read, and a question is
        answered through `text_in`, in simulated time."""
        with self._lock:
            self._texters[number] = texter

    def texter_for(self, number: str) -> TextPersona | None:
        """The texting persona of `number`: the one set, else one from
        `text_persona_mix` (seeded per number), else None (never texts back)."""
        with self._lock:
            if number not in self._texters and self.text_persona_mix is not None:
                self._texters[number] = self.text_persona_mix.choose(self.seed, number)
            return self._texters.get(number)

    def text_thread(self, customer: str, number: str) -> TextThread | None:
        """The texting persona's conversation with the account's `number` (its target,
        how many questions it was asked and answered), once a text reached it."""
        with self._lock:
            return self._threads.get((customer, number))

    def configure_number(
        self,
        number: str,
        *,
        voice_url: str | Keep | None = KEEP,
        voice_method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        sms_url: str | Keep | None = KEEP,
        sms_method: str | Keep = KEEP,
    ) -> IncomingNumber:
        """What an owned `number` does with incoming calls (`dial_in`): the TwiML at
        `voice_url` answers them, `status_callback` hears when they end; and with
        incoming texts (`text_in`): they are posted to `sms_url`. The same as updating
        the IncomingPhoneNumber's VoiceUrl, SmsUrl etc. over the REST API; fields not
        given stay as they were (the voice ones as a group, keyed on `voice_url`)."""
        return self.account.configure_number(
            number,
            voice_url=voice_url,
            voice_method=voice_method,
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            sms_url=sms_url,
            sms_method=sms_method,
            when=self.clock.now(),
        )

    def set_message_fate(self, number: str, status: str = "delivered", error_code: int = 0) -> None:
        """What happens to texts sent to `number` from now on: delivered (the default),
        undelivered (the carrier reported it undelivered: 30003 unreachable handset,
        30006 landline) or failed (never sent: 30008 unknown error, 30007 filtered).
        `error_code` is required for the last two: Twilio always gives one."""
        if status not in FATES:
            raise ValueError(f"message fate {status!r} is not one of {FATES}")
        if status != "delivered" and not error_code:
            raise ValueError(f"a {status} message needs Twilio's error code (30003, 30006 ...)")
        with self._lock:
            self._message_fates[number] = (status, error_code or None)

    def set_account_status(self, status: str) -> None:
        """active, suspended or closed; an account that is not active places no calls."""
        self.account.set_status(status, self.clock.now())

    def block(self, prefix_or_number: str) -> None:
        """Numbers the account may not call (geo permissions): error 21215."""
        with self._lock:
            self.blocked.append(prefix_or_number)

    def inject_fault(
        self, status: int = 500, times: int = 1, path_contains: str = "", code: int | None = None
    ) -> None:
        """The next `times` REST requests whose path contains `path_contains` fail.

        429 answers as Twilio's rate limiter (20429), anything else as a server error,
        unless `code` names the Twilio error to answer with (401 and 20005: the account
        was suspended a moment ago).
        """
        with self._lock:
            self._faults.append([status, times, path_contains, code])

    def slow_down(self, seconds: float, times: int = 1, path_contains: str = "") -> None:
        """The next `times` REST requests whose path contains `path_contains` answer only
        after `seconds`: a client with a shorter timeout gives up (a slow Twilio edge)."""
        with self._lock:
            self._slow_paths.append([seconds, times, path_contains])

    def slow_down_creates(self, seconds: float, times: int = 1) -> None:
        """The next `times` create-call requests place the call, then answer only after
        `seconds`: a client with a shorter timeout gives up on a call that was placed
        (what a slow or unreachable Twilio edge looks like from the caller's side)."""
        with self._lock:
            self._slow_creates += times
            self._slow_seconds = seconds

    def lose_final_callbacks(self, share: float | None = None, numbers: Iterable[str] = ()) -> None:
        """Never deliver the final (`completed` event) status callback of calls to
        `numbers` and of a seeded `share` of all calls (default: every call, unless
        numbers are given): the callback Twilio sent that never arrived. Fetching the
        call still tells its final status."""
        numbers = set(numbers)
        with self._lock:
            self._lost_final_share = (0.0 if numbers else 1.0) if share is None else share
            self._lost_final_numbers.update(numbers)

    def loses_final_callback(self, call: SimCall) -> bool:
        with self._lock:
            if call.to in self._lost_final_numbers:
                return True
            share = self._lost_final_share
        return share > 0 and random.Random(f"{self.seed}:lost-final:{call.sid}").random() < share

    def take_slow_create(self) -> float:
        """Seconds to hold the response of a create-call request (0: answer at once)."""
        with self._lock:
            if self._slow_creates <= 0:
                return 0.0
            self._slow_creates -= 1
            return self._slow_seconds

    # -- server -----------------------------------------------------------------------
    def start(self) -> str:
        """Serves the REST API on `host:port` (0: a free port); returns `api_base`."""
        from phonesim.rest import RestApi
        from phonesim.wsgi import BackgroundServer

        if self._server is None:
            self._server = BackgroundServer(RestApi(self), self.host, self.port)
            self._server.start()
        return self.api_base

    @property
    def api_base(self) -> str:
        if self._server is None:
            return "http://phonesim.invalid"
        return self._server.base_url

    def stop(self) -> None:
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        if self._driver is not None:
            self._driver.join(timeout=5)
            self._driver = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> PhoneNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading ----------------------------------------------------------------------
    @property
    def calls(self) -> list[SimCall]:
        with self._lock:
            return list(self._calls.values())

    def call(self, sid: str) -> SimCall:
        with self._lock:
            try:
                return self._calls[sid]
            except KeyError:
                raise not_found(
                    f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"
                ) from None

    def calls_to(self, number: str) -> list[SimCall]:
        """Calls placed to `number`, and incoming calls to it if it is the account's."""
        return [call for call in self.calls if call.to == number]

    def recording(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            return self._recordings.get(sid)

    def delete_recording(self, sid: str) -> bool:
        """Twilio's DELETE of a recording: its media and metadata are gone (False if
        there was no such recording)."""
        with self._lock:
            return self._recordings.pop(sid, None) is not None

    def record(self, call: SimCall | None, entry: Any) -> None:
        self.journal.add(entry)
        if call is not None:
            with self._lock:
                getattr(call, _CALL_LISTS[type(entry)]).append(entry)

    # -- REST operations (called on server threads) -------------------------------------
    def take_fault(self, path: str) -> ApiError | None:
        with self._lock:
            for fault in self._faults:
                status, times, contains, code = fault
                if times > 0 and contains in path:
                    fault[1] -= 1
                    if code is not None:
                        return ApiError(status, code, f"Injected fault {status} ({code})")
                    return too_many_requests() if status == 429 else _fault(status)
        return None

    def take_delay(self, path: str) -> float:
        """Seconds to hold the response to a request for `path` (0: answer at once)."""
        with self._lock:
            for delay in self._slow_paths:
                seconds, times, contains = delay
                if times > 0 and contains in path:
                    delay[1] -= 1
                    return seconds
        return 0.0

    def create_call(self, form: dict[str, list[str]]) -> SimCall:
        def get(name: str, default: str | None = None) -> str | None:
            values = form.get(name)
            return values[-1] if values else default

        if not self.account.active:
            raise account_not_active()
        to, from_ = get("To"), get("From")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise ApiError(400, 21213, "No 'From' number is specified")
        if not E164.match(to):
            raise ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not E164.match(from_):
            raise ApiError(
                400,
                21212,
                f"The 'From' number {from_} is not a valid phone number, "
                "shortcode, or alphanumeric sender ID.",
            )
        if any(to.startswith(prefix) for prefix in self.blocked):
            raise ApiError(
                400,
                21215,
                f"Account not authorized to call {to}. Perhaps you need to enable "
                "some international permissions: "
                "https://www.twilio.com/console/voice/calls/geo-permissions/low-risk",
            )
        url, twiml = get("Url"), get("Twiml")
        if not url and not twiml:
            raise ApiError(400, 21205, "Url parameter is required.")
        if url and not re.match(r"^https?://", url):
            raise ApiError(400, 21205, f"Url is not a valid URL: {url}")
        events: list[str] = []
        for value in form.get("StatusCallbackEvent", []):
            events.extend(value.split())
        if any(event not in STATUS_EVENTS for event in events):
            raise ApiError(400, 21626, f"Invalid StatusCallbackEvent: {' '.join(events)}")
        detection = get("MachineDetection")
        if detection not in (None, "Enable", "DetectMessageEnd"):
            raise ApiError(400, 21626, f"Invalid MachineDetection value: {detection}")
        timeout = _whole_seconds(get("Timeout"), "Timeout", DEFAULT_RING_TIMEOUT)
        time_limit = _whole_seconds(get("TimeLimit"), "TimeLimit", DEFAULT_TIME_LIMIT)
        self._check_rate()

        with self._lock:
            now = self.clock.now()
            call = SimCall(
                sid=self.new_sid("CA"),
                account_sid=self.account_sid,
                to=to,
                from_=from_,
                url=url,
                method=(get("Method") or "POST").upper(),
                twiml=twiml,
                status_callback=get("StatusCallback"),
                status_callback_method=(get("StatusCallbackMethod") or "POST").upper(),
                status_callback_events=tuple(events) or ("completed",),
                machine_detection=detection,
                async_amd=(get("AsyncAmd") or "false").lower() == "true",
                amd_callback=get("AsyncAmdStatusCallback"),
                amd_callback_method=(get("AsyncAmdStatusCallbackMethod") or "POST").upper(),
                timeout=max(1, min(timeout, 600)),
                time_limit=max(1, min(time_limit, DEFAULT_TIME_LIMIT)),
                persona=self.persona_for(to),
                date_created=now,
            )
            self._launch(call)
        return call

    def update_call(self, sid: str, form: dict[str, list[str]]) -> SimCall:
        def get(name: str) -> str | None:
            values = form.get(name)
            return values[-1] if values else None

        call = self.call(sid)
        status, url, twiml = get("Status"), get("Url"), get("Twiml")
        method = (get("Method") or "POST").upper()
        with self._lock:
            now = self.clock.now()
            if get("StatusCallback"):
                call.status_callback = get("StatusCallback")
            if status is not None:
                if status not in ("completed", "canceled"):
                    raise ApiError(400, 20001, f"Invalid Status value: {status}")
                if call.status in ("queued", "ringing"):
                    # Both end a call that has not been answered; it never connects.
                    call.status, call.end_time = "canceled", now
                    self._interrupt(call, Cancel())
                elif call.status == "in-progress" and status == "completed":
                    call.status, call.end_time = "completed", now
                    self._interrupt(call, Hangup())
                # canceled on a live call, or anything on an ended call: no change.
            elif url or twiml:
                if call.ended:
                    raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
                if call.status == "in-progress":
                    self._interrupt(call, Redirect(url, method, twiml))
                else:
                    call.url, call.method, call.twiml = url or call.url, method, twiml
            call.date_updated = now
        return call

    # -- incoming calls ---------------------------------------------------------------
    def dial_in(
        self,
        from_number: str,
        to_number: str,
        *,
        persona: Persona | None = None,
        send_digits: str = "",
        url_query: str = "",
    ) -> SimCall:
        """A call from `from_number` to `to_number`, a number of the account: what
        Twilio sees when a contact center transfers its customer to the survey number.

        `from_number` is the caller ID the carrier delivers, passed on as Twilio does:
        E.164, or "anonymous" or "+266696687" when it is withheld. The call rings at
        once; the number's voice URL (with `url_query` appended, e.g. "?token=123", the
        query a transfer's `<Redirect>` carried) is requested with Twilio's inbound
        parameters (CallStatus=ringing, Direction=inbound) and the TwiML it returns
        answers the call and runs as for any call. `persona` is the caller pressing
        keys (default: the persona of `from_number`); its pickup, ring and AMD settings
        play no part. `send_digits` are the DTMF the transferring platform sends once
        connected (`<Number sendDigits>`, Amazon Connect's Send DTMF): they go to the
        first `<Gather>` instead of the persona's answer, "w" a half-second pause. The
        number's StatusCallback is told when the call ends (`completed` only).

        Raises ValueError if `to_number` is not the account's, takes no voice calls or
        has no voice URL: there would be no TwiML to put the call through to.
        """
        if not from_number:
            raise ValueError("an incoming call needs a caller ID (From), e.g. 'anonymous'")
        if any(key not in DTMF_KEYS for key in send_digits):
            raise ValueError(f"send_digits {send_digits!r} may only hold 0-9, *, # and w")
        number = next((n for n in self.account.numbers if n.phone_number == to_number), None)
        if number is None:
            raise ValueError(f"{to_number!r} is not a number of account {self.account_sid}")
        if not number.voice:
            raise ValueError(f"{to_number} is not voice-capable: it takes no calls")
        if not number.voice_url:
            raise ValueError(
                f"{to_number} has no voice URL: configure_number({to_number!r}, "
                "voice_url=...) first"
            )
        url, query = number.voice_url, url_query.lstrip("?&")
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        persona = persona or self.persona_for(from_number)
        if persona.pickup != "human":
            # A caller is a person on the line: a persona scripted to miss calls (or
            # to be a voicemail) still presses what it is scripted to press.
            persona = persona.with_(pickup="human")
        with self._lock:
            now = self.clock.now()
            call = SimCall(
                sid=self.new_sid("CA"),
                account_sid=self.account_sid,
                to=to_number,
                from_=from_number,
                url=url,
                method=number.voice_method,
                twiml=None,
                status_callback=number.status_callback,
                status_callback_method=number.status_callback_method,
                status_callback_events=("completed",),
                machine_detection=None,
                async_amd=False,
                amd_callback=None,
                amd_callback_method="POST",
                timeout=DEFAULT_RING_TIMEOUT,
                persona=persona,
                date_created=now,
                direction="inbound",
                phone_number_sid=number.sid,
                send_digits=send_digits,
                # Not queued: an incoming call rings as it reaches Twilio, and CPS
                # limits only calls created over the API.
                status="ringing",
                start_time=now,
            )
            self._launch(call)
        return call

    # -- text messages ----------------------------------------------------------------
    @property
    def messages(self) -> list[SimMessage]:
        """Every message, sent and received, oldest first."""
        with self._lock:
            return list(self._messages.values())

    def message(self, sid: str) -> SimMessage:
        with self._lock:
            try:
                return self._messages[sid]
            except KeyError:
                raise not_found(
                    f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
                ) from None

    def messages_to(self, number: str) -> list[SimMessage]:
        """Messages sent to `number` (Twilio's opt-out replies included), or received
        by it if it is the account's."""
        return [message for message in self.messages if message.to == number]

    def messages_from(self, number: str) -> list[SimMessage]:
        return [message for message in self.messages if message.from_ == number]

    def opted_out(self, number: str, customer: str) -> bool:
        """Whether `customer` texted STOP to the account's `number` (and not START since)."""
        with self._lock:
            return (number, customer) in self._opted_out

    def create_message(self, form: dict[str, list[str]]) -> SimMessage:
        """Twilio's POST Messages.json: checks what Twilio checks before accepting a
        message (the errors it answers at once), then queues it for delivery."""

        def get(name: str) -> str | None:
            values = form.get(name)
            return values[-1] if values else None

        if not self.account.active:
            raise account_not_active()
        to, from_, service = get("To"), get("From"), get("MessagingServiceSid")
        body, callback = get("Body") or "", get("StatusCallback")
        if not to:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ and not service:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
            raise ApiError(400, 21705, f"The Messaging Service Sid {service} is invalid.")
        senders = [number.phone_number for number in self.account.numbers if number.sms]
        if from_ and from_ not in senders:
            raise ApiError(
                400,
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        if not from_:
            if not senders:
                raise ApiError(400, 21606, "The Messaging Service has no SMS-capable sender.")
            from_ = senders[0]  # the service's sender pool: the account's numbers
        if not body.strip():
            raise ApiError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise ApiError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if callback:
            try:
                check_url(callback, "StatusCallback")
            except ValueError as exc:
                raise ApiError(400, 21609, f"Invalid StatusCallback url: {exc}") from None
        if any(to.startswith(prefix) for prefix in self.blocked):
            raise ApiError(
                400,
                21408,
                f"Permission to send an SMS has not been enabled for the region indicated "
                f"by the 'To' number: {to}.",
            )
        if self.opted_out(from_, to):
            raise ApiError(400, 21610, "Attempt to send to unsubscribed recipient")
        # With a Messaging Service Twilio first accepts the message, then queues it once
        # a sender is assigned; without one it is queued at once. No callback for either
        # initial status (twilio.com/docs/messaging/guides/outbound-message-status-in-
        # status-callbacks), but the service's later "queued" is a change and is posted.
        message = self._new_message(
            to,
            from_,
            body,
            "outbound-api",
            "accepted" if service else "queued",
            messaging_service_sid=service,
            status_callback=callback,
        )
        self._schedule_delivery(message)
        return message

    def text_in(self, from_number: str, to_number: str, body: str) -> SimMessage:
        """A text from `from_number` (a customer) to `to_number`, a number of the account.

        Twilio's default opt-out handling applies as the message arrives: STOP (and
        STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT) blocks messages from
        `to_number` to the customer with 21610 until they text START (or UNSTOP, YES);
        each keyword, and HELP, gets Twilio's own reply. The message, keyword or not, is
        still posted to the number's SMS URL (with OptOutType for a keyword) when the
        network next runs; the response to that webhook is not acted on.

        Raises ValueError if `to_number` is not the account's or takes no texts.
        """
        if not E164.match(from_number):
            raise ValueError(f"{from_number!r} is not a phone number in E.164 (+12125550142)")
        number = next((n for n in self.account.numbers if n.phone_number == to_number), None)
        if number is None:
            raise ValueError(f"{to_number!r} is not a number of account {self.account_sid}")
        if not number.sms:
            raise ValueError(f"{to_number} is not SMS-capable: it takes no texts")
        message = self._new_message(to_number, from_number, body, "inbound", "received")
        keyword = opt_keyword(body)
        if keyword in ("STOP", "START"):
            opted_out = keyword == "STOP"
            with self._lock:
                if opted_out:
                    self._opted_out.add((to_number, from_number))
                else:
                    self._opted_out.discard((to_number, from_number))
            self.record(
                None,
                OptOutChange(self.clock.now(), from_number, to_number, body.strip(), opted_out),
            )

        def deliver() -> None:
            if keyword is not None:
                reply = self._new_message(
                    from_number, to_number, REPLIES[keyword], "outbound-reply", "queued"
                )
                self._schedule_delivery(reply)
            if number.sms_url:
                params = message.inbound_params()
                self._post_message(message, "sms", number.sms_url, number.sms_method, params)

        # The number's configuration when the text arrived decides where it goes.
        self._schedule(self.clock.time(), deliver)
        return message

    def _new_message(
        self,
        to: str,
        from_: str,
        body: str,
        direction: str,
        status: str,
        *,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> SimMessage:
        with self._lock:
            now = self.clock.now()
            message = SimMessage(
                sid=self.new_sid("SM"),
                account_sid=self.account_sid,
                to=to,
                from_=from_,
                body=body,
                direction=direction,
                status=status,
                date_created=now,
                date_updated=now,
                messaging_service_sid=messaging_service_sid,
                status_callback=status_callback,
                statuses=[status],
            )
            self._messages[message.sid] = message
        self.record(None, TextMessage(now, message.sid, direction, from_, to, body, status))
        return message

    def _schedule_delivery(self, message: SimMessage) -> None:
        """queued (after accepted, with a service), then sent a moment later, then the
        handset's delivery receipt; a failed message is never sent."""
        with self._lock:
            fate, error_code = self._message_fates.get(message.to, ("delivered", None))
        steps: list[tuple[float, str, int | None]] = []
        if message.status == "accepted":
            steps.append((0.0, "queued", None))
        if fate == "failed":
            steps.append((MESSAGE_SEND_SECONDS, "failed", error_code))
        else:
            steps.append((MESSAGE_SEND_SECONDS, "sent", None))
            steps.append((MESSAGE_SEND_SECONDS + MESSAGE_DELIVERY_SECONDS, fate, error_code))
        start = self.clock.time()
        for after, status, code in steps:
            self._schedule(
                start + after,
                lambda status=status, code=code: self._message_status(message, status, code),
            )

    def _message_status(self, message: SimMessage, status: str, error_code: int | None) -> None:
        with self._lock:
            now = self.clock.now()
            message.status, message.date_updated = status, now
            message.statuses.append(status)
            if status == "sent":
                message.date_sent = now
            if error_code is not None:
                message.error_code = error_code
                message.error_message = MESSAGE_ERRORS.get(error_code, "Unknown error")
            params = message.status_params()
        self.record(
            None,
            TextMessage(
                now,
                message.sid,
                message.direction,
                message.from_,
                message.to,
                message.body,
                status,
                error_code,
            ),
        )
        if message.status_callback:
            self._post_message(message, "message-status", message.status_callback, "POST", params)
        if status == "delivered" and message.direction != "inbound":
            self._customer_reads(message)

    def _customer_reads(self, message: SimMessage) -> None:
        """A text from the account reached the customer's handset: their texting
        persona, if any, decides what to text back and when."""
        customer, number = message.to, message.from_
        texter = self.texter_for(customer)
        if texter is None:
            return
        with self._lock:
            thread = self._threads.get((customer, number))
            if thread is None:
                # Seeded per pair, so a customer answers the same whatever else the
                # network is doing at the time.
                rng = random.Random(f"{self.seed}:texts:{customer}:{number}")
                thread = self._threads[(customer, number)] = texter.thread(rng)
            replies = thread.read(message.body)
        now = self.clock.time()
        for after, body in replies:
            self._schedule(
                now + after, lambda body=body: self._text_back(thread, customer, number, body)
            )

    def _text_back(self, thread: TextThread, customer: str, number: str, body: str) -> None:
        with self._lock:
            thread.sent()
        self.text_in(customer, number, body)

    def _post_message(
        self, message: SimMessage, kind: str, url: str, method: str, params: dict[str, str]
    ) -> None:
        """A message's webhook, journaled like a call's (the message SID in `call_sid`)."""
        response = self.webhooks.signed_request(url, method, params)
        now = self.clock.now()
        self.record(
            None,
            CallbackPost(
                now, message.sid, kind, response.url, response.method, params, response.status
            ),
        )
        if response.status is None:
            self.record(
                None,
                AppError(
                    now, message.sid, 11205, f"HTTP connection failure: {response.error}", url
                ),
            )
        elif not response.ok:
            self.record(
                None,
                AppError(
                    now,
                    message.sid,
                    11200,
                    f"HTTP retrieval failure: status {response.status}",
                    url,
                ),
            )

    def _launch(self, call: SimCall) -> None:
        with self._lock:
            call.runner = self._lifecycle(call)
            next(call.runner)  # primed: nothing happens until the driver runs it
            self._calls[call.sid] = call
            self._schedule_call(call, self.clock.time())

    def _check_rate(self) -> None:
        if self.calls_per_second is None:
            return
        now = time.monotonic() if self.rate_limit_clock == "wall" else self.clock.time()
        with self._lock:
            while self._recent_creates and self._recent_creates[0] <= now - 1.0:
                self._recent_creates.popleft()
            if len(self._recent_creates) >= self.calls_per_second:
                raise too_many_requests()
            self._recent_creates.append(now)

    def new_sid(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{self._rng.getrandbits(128):032x}"

    # -- the driver -------------------------------------------------------------------
    def run_until_idle(self, timeout: float = 30.0) -> None:
        """Drives every queued and live call to its end (and pending callbacks).

        `timeout` is in real seconds; a call stuck in an endless TwiML loop raises
        TimeoutError instead of hanging the test.
        """
        deadline = time.monotonic() + timeout
        if self._driver is not None:
            while self._busy():
                if time.monotonic() > deadline:
                    raise TimeoutError("phonesim: calls still live")
                time.sleep(0.01)
            return
        with self._drive_lock:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("phonesim: calls still live after run_until_idle timeout")
                event = self._next_event(wait_when_empty=False)
                if event is None:
                    return
                self._run(event)

    def start_driver(self) -> None:
        """Runs calls in a background thread as they arrive (server mode)."""
        if self._driver is not None:
            return
        self._stopping.clear()
        self._driver = threading.Thread(
            target=self._drive_forever, name="phonesim-driver", daemon=True
        )
        self._driver.start()

    def _drive_forever(self) -> None:
        with self._drive_lock:
            while not self._stopping.is_set():
                event = self._next_event(wait_when_empty=True)
                if event is None:
                    continue
                try:
                    self._run(event)
                except Exception:
                    log.exception("phonesim: a call step failed")

    def _run(self, event: Callable[[], None]) -> None:
        try:
            event()
        finally:
            with self._lock:
                self._running_events -= 1

    def _busy(self) -> bool:
        with self._lock:
            return (
                bool(self._events)
                or self._running_events > 0
                or any(not call.ended for call in self._calls.values())
            )

    def _next_event(self, wait_when_empty: bool) -> Callable[[], None] | None:
        with self._wakeup:
            while not self._stopping.is_set() or not wait_when_empty:
                if self._events:
                    at = self._events[0][0]
                    if self.clock.simulated:
                        action = heapq.heappop(self._events)[2]
                        self.clock.advance_to(at)
                        self._running_events += 1  # until _run() has run it
                        return action
                    delay = at - self.clock.time()
                    if delay <= 0:
                        action = heapq.heappop(self._events)[2]
                        self._running_events += 1  # until _run() has run it
                        return action
                    self._wakeup.wait(min(delay, 0.2))
                elif wait_when_empty:
                    self._wakeup.wait(0.2)
                else:
                    return None
            return None

    def _schedule(self, at: float, action: Callable[[], None]) -> None:
        with self._wakeup:
            heapq.heappush(self._events, (at, next(self._order), action))
            self._wakeup.notify_all()

    def _schedule_call(self, call: SimCall, at: float) -> None:
        with self._lock:
            call.token += 1
            token = call.token
        self._schedule(at, lambda: self._step(call, token))

    def _interrupt(self, call: SimCall, interrupt: CallInterrupt) -> None:
        with self._lock:
            call.pending = interrupt
            if not call.running and call.runner is not None:
                self._schedule_call(call, self.clock.time())

    def _step(self, call: SimCall, token: int) -> None:
        with self._lock:
            if token != call.token or call.runner is None:
                return  # superseded by an interrupt
            interrupt, call.pending = call.pending, None
            call.running = True
            runner = call.runner
        wait: float | None = None
        try:
            wait = runner.throw(interrupt) if interrupt is not None else next(runner)
        except StopIteration:
            wait = None
        finally:
            with self._lock:
                call.running = False
                if wait is None:
                    call.runner = None
                else:
                    now = self.clock.time()
                    at = now if call.pending is not None else now + wait
                    limit = self._time_limit_at(call)
                    if limit is not None and at > limit:
                        self._schedule(limit, lambda: self._time_limit(call))
                    else:
                        self._schedule_call(call, at)

    # -- a call's life ----------------------------------------------------------------
    def _lifecycle(self, call: SimCall) -> Steps:
        try:
            yield 0.0
            if call.direction == "inbound":
                status, sip = yield from self._receive(call)
            else:
                status, sip = yield from self._connect(call)
        except Cancel:
            status, sip = "canceled", 487
        except (Hangup, CalleeHungUp, Redirect):
            status, sip = "completed", 200
        self._finish(call, status, sip)

    def _connect(self, call: SimCall) -> Generator[float, None, tuple[str, int]]:
        persona = call.persona
        with self._lock:
            call.start_time = call.date_updated = self.clock.now()
        self._status_event(call, "initiated", "initiated")
        if persona.pickup == "failed":
            yield 1.0
            return "failed", persona.sip_response_code
        if persona.pickup == "busy":
            yield 2.0  # a busy line answers 486 before it ever rings
            return "busy", 486
        self._set_status(call, "ringing")
        self._status_event(call, "ringing", "ringing")
        if persona.pickup == "no-answer" or persona.ring_seconds >= call.timeout:
            yield float(call.timeout)
            return "no-answer", 487
        yield persona.ring_seconds
        if not self._answer(call):
            yield 0.0  # the driver throws the pending Cancel here
            return "canceled", 487
        self._status_event(call, "answered", "in-progress")
        if call.machine_detection:
            verdict = persona.verdict(call.machine_detection)
            if call.async_amd:
                # The TwiML starts at once so a person never hears silence; the verdict
                # goes to AsyncAmdStatusCallback when AMD reaches it.
                self._schedule(
                    self.clock.time() + persona.amd_seconds,
                    lambda: self._amd_result(call, verdict),
                )
            else:
                yield persona.amd_seconds
                with self._lock:
                    call.answered_by = verdict
        first: Fetch | Inline
        if call.twiml is not None:
            first = Inline(call.twiml, call.url or "")
        else:
            first = Fetch(call.url or "", call.method, "answer")
        yield from TwimlSession(self, call).run(first)
        return "completed", 200

    def _receive(self, call: SimCall) -> Generator[float, None, tuple[str, int]]:
        """An incoming call: Twilio requests the voice URL while the call rings, and
        the TwiML that comes back answers it, unless its first verb is `<Reject>`
        (twilio.com/docs/voice/twiml/reject: unanswered, busy or no-answer)."""
        session = TwimlSession(self, call, send_digits=call.send_digits)
        first: Fetch | Inline
        if call.twiml is not None:  # a REST update with Twiml landed while it rang
            first = Inline(call.twiml, call.url or "")
        else:
            first = Fetch(call.url or "", call.method, "answer")
        rejected = yield from session.run(first, answer=lambda: self._answer(call))
        if rejected == "busy":
            return "busy", 486
        if rejected is not None:
            return "no-answer", 487
        return "completed", 200

    def _answer(self, call: SimCall) -> bool:
        """Ringing to in-progress; False if a cancel landed first (on a server thread,
        while this step was starting): the driver throws it at the next yield."""
        with self._lock:
            answered = call.status == "ringing" and call.pending is None
            if answered:
                call.status, call.sip_response_code = "in-progress", 200
                call.answered_at = call.date_updated = self.clock.now()
        return answered

    def _time_limit_at(self, call: SimCall) -> float | None:
        if call.status != "in-progress" or call.answered_at is None:
            return None
        return call.answered_at.timestamp() + call.time_limit

    def _time_limit(self, call: SimCall) -> None:
        """TimeLimit reached: Twilio hangs up a call still in progress."""
        with self._lock:
            if call.status != "in-progress":
                return
            call.status, call.end_time = "completed", self.clock.now()
            self._interrupt(call, Hangup())

    def _set_status(self, call: SimCall, status: str) -> None:
        with self._lock:
            if not call.ended:
                call.status = status
                call.date_updated = self.clock.now()

    def _finish(self, call: SimCall, status: str, sip: int) -> None:
        with self._lock:
            now = self.clock.now()
            if call.status not in ENDED:
                call.status = status
            if call.end_time is None:
                call.end_time = now
            if call.sip_response_code is None or call.status != "completed":
                call.sip_response_code = sip
            call.date_updated = now
        duration = call.duration or 0
        self._status_event(
            call,
            "completed",
            call.status,
            {"CallDuration": str(duration), "Duration": str(math.ceil(duration / 60))},
        )

    def _status_event(
        self, call: SimCall, event: str, call_status: str, extra: dict[str, str] | None = None
    ) -> None:
        if not call.status_callback or event not in call.status_callback_events:
            return
        if event == "completed" and self.loses_final_callback(call):
            with self._lock:
                call.final_callback_lost = True
            return
        with self._lock:
            params = call.webhook_params()
            params.update(
                CallStatus=call_status,
                Timestamp=rfc2822(self.clock.now()) or "",
                SequenceNumber=str(call.sequence),
                CallbackSource="call-progress-events",
            )
            if call.sip_response_code is not None and event in ("answered", "completed"):
                params["SipResponseCode"] = str(call.sip_response_code)
            params.update(extra or {})
            call.sequence += 1
        self._post(call, "status", call.status_callback, call.status_callback_method, params)

    def _amd_result(self, call: SimCall, verdict: str) -> None:
        with self._lock:
            if call.status != "in-progress":
                return  # the call ended before AMD made up its mind
            call.answered_by = verdict
        if call.amd_callback:
            params = {
                "AccountSid": call.account_sid,
                "CallSid": call.sid,
                "AnsweredBy": verdict,
                "MachineDetectionDuration": str(int(call.persona.amd_seconds * 1000)),
            }
            self._post(call, "amd", call.amd_callback, call.amd_callback_method, params)

    def _post(
        self, call: SimCall, kind: str, url: str, method: str, params: dict[str, str]
    ) -> None:
        response = self.webhooks.signed_request(url, method, params)
        now = self.clock.now()
        self.record(
            call,
            CallbackPost(
                now, call.sid, kind, response.url, response.method, params, response.status
            ),
        )
        if response.status is None:
            self.record(
                call,
                AppError(now, call.sid, 11205, f"HTTP connection failure: {response.error}", url),
            )
        elif not response.ok:
            self.record(
                call,
                AppError(
                    now, call.sid, 11200, f"HTTP retrieval failure: status {response.status}", url
                ),
            )

    # -- recordings -------------------------------------------------------------------
    def add_recording(self, call: SimCall, seconds: float, text: str) -> tuple[str, str]:
        sid = self.new_sid("RE")
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        entry = {
            "sid": sid,
            "call_sid": call.sid,
            "seconds": seconds,
            "text": text,
            "url": url,
            "date_created": self.clock.now(),
        }
        with self._lock:
            self._recordings[sid] = entry
            call.recordings.append(entry)
        return sid, url

    def schedule_transcription(
        self,
        call: SimCall,
        recording_sid: str,
        recording_url: str,
        text: str,
        callback: str | None,
    ) -> None:
        transcription_sid = self.new_sid("TR")
        with self._lock:
            self._recordings[recording_sid]["transcription"] = text
            self._recordings[recording_sid]["transcription_sid"] = transcription_sid

        def deliver() -> None:
            if not callback:
                return
            with self._lock:
                params = call.webhook_params()
            params.update(
                TranscriptionSid=transcription_sid,
                TranscriptionText=text,
                TranscriptionStatus="completed" if text else "failed",
                TranscriptionUrl=f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}"
                f"/Transcriptions/{transcription_sid}",
                RecordingSid=recording_sid,
                RecordingUrl=recording_url,
            )
            self._post(call, "transcription", callback, "POST", params)

        self._schedule(self.clock.time() + TRANSCRIPTION_DELAY, deliver)


def _fault(status: int) -> ApiError:
    if status == 500:
        return server_error()
    return ApiError(status, 20000 + status, f"Injected fault {status}")


def _whole_seconds(value: str | None, name: str, default: int) -> int:
    """A parameter in whole seconds; anything else is Twilio's 400, not a crash."""
    if not value:
        return default
    if not value.isdigit():
        raise ApiError(400, 21201, f"{name} must be a whole number of seconds: {value[:40]}")
    return int(value)
