"""`aftercall demo`: a whole survey campaign on one machine with nothing else installed.

It wires the real product to aftercall's phone network simulator (the only product
code that imports phonesim): the Flask app serves Twilio's webhooks on a local port,
the Twilio SDK talks to the simulator, and simulated customers with a realistic mix of
behaviours answer, hang up, opt out, or never pick up. Finished support calls go in
through the dialer's intake and placement, exactly as in production, and the summary
at the end is read back from the database by scoring/.

The same seed gives the same campaign. With DATABASE_URL set the demo uses that
database, otherwise a fresh SQLite file, `aftercall-demo.db`, in the current folder;
with REDIS_URL set it queues on that Redis, otherwise on an in-process stand-in
(fakeredis). Either way an in-process rq worker runs the jobs.

`aftercall demo --serve` then keeps the deployment running on a port of the user's
choice (`serve_campaign`): the same app (dashboard, API, webhooks) over the demo's
database, a demo admin who can sign in, the simulator answering every call placed from
then on as a cooperative customer, and the in-process worker draining the queues, so
test calls placed from the dashboard are dialled and answered. It always uses its own
SQLite file (never DATABASE_URL), so the demo admin and its printed password exist in
the demo database only; webhook signatures are checked as everywhere (the simulator
signs them with the demo account's token).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import secrets
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from fakeredis import FakeRedis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core import apikeys, migrate
from core.config import Settings
from core.db import Database, one_off_session
from core.models import (
    CallAttempt,
    Channel,
    FollowUp,
    RequestState,
    SmsConversation,
    SurveyMode,
    SurveyRequest,
)
from core.runtime import Runtime, use_worker_runtime
from core.survey import QuestionKind, SurveyCatalog, SurveyDefinition
from core.survey_store import CombinedSurveyCatalog
from core.users import create_user
from dialer import scheduling
from dialer.intake import CallEnded, accept_calls
from dialer.scheduling import CALL_QUEUE
from phonesim import (
    BackgroundServer,
    Comment,
    Feeling,
    Persona,
    PersonaMix,
    PhoneNetwork,
    SimClock,
    TextPersonaMix,
)
from scoring import follow_ups, rollup
from scoring.alerts import ALERT_QUEUE, queue_due_alerts
from scoring.formats import to_table
from scoring.report import (
    ReportQuery,
    ReportRow,
    SpokenShare,
    outcomes,
    report,
    spoken_share,
    totals,
)
from sms import conversation
from sms.outbox import MESSAGE_QUEUE

DEMO_ACCOUNT_SID = "AC" + "d" * 32
DEMO_AUTH_TOKEN = "demo-auth-token"
DEMO_DATABASE_FILE = "aftercall-demo.db"
DEMO_ADMIN = "demo-admin"

AGENTS = (("alice", "billing", "north"), ("bob", "billing", "north"),
          ("carol", "tech", "south"), ("dave", "tech", "south"))  # fmt: skip
# (number prefix, digits to draw, language): US English and Spanish speakers, Poland.
NUMBER_PLANS = (("+1415555", 4, "en"), ("+1212555", 4, "en"), ("+1312555", 4, "es"),
                ("+4860", 7, "pl"))  # fmt: skip
# What the cooperative customer of a served demo answers, by kind, unless a later
# question is asked only for another answer (see cooperative_customer).
COOPERATIVE_ANSWERS = {
    QuestionKind.NPS: 9,
    QuestionKind.CSAT: 5,
    QuestionKind.CES: 2,
    QuestionKind.YESNO: 1,
}
COOPERATIVE_COMMENT = "This is a test call from the dashboard; the survey sounds right."
# How often a served demo looks for due calls and queued jobs (real seconds).
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class DemoResult:
    outcomes: dict[RequestState, int]
    agents: list[ReportRow]
    rejected: int
    sample_transcript: list[str]
    # The campaign's requests by mode: called back, or surveyed in the call.
    modes: list[ReportRow] = field(default_factory=list)
    # How its answers were given: said aloud or keyed.
    spoken: SpokenShare | None = None
    # What texting the customers who never picked up added (the SMS fallback).
    fallback: FallbackLift | None = None
    # The follow-ups the campaign's unhappy customers opened, by owner ("" unassigned).
    follow_ups: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FallbackLift:
    """The callback requests' response rate with and without the SMS fallback: a
    request "responded" when it ended completed or partial."""

    requests: int  # callback requests the dialer worked on (not suppressed)
    by_call: int  # responded in a call
    texted: int  # texted after the last unanswered call
    by_text: int  # responded by text

    @property
    def rate_without(self) -> float:
        return 100.0 * self.by_call / self.requests if self.requests else 0.0

    @property
    def rate_with(self) -> float:
        return 100.0 * (self.by_call + self.by_text) / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class DemoAdmin:
    """The dashboard user a served demo creates, in its own database only."""

    username: str
    password: str
    dashboard_url: str


class PortUnavailable(Exception):
    """The served demo cannot listen where it was asked to."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port} ({error.strerror or error})")


class CampaignStopped(Exception):
    """Ctrl-C (or SIGTERM) arrived before the campaign reached its end."""


def demo_settings(environ: dict[str, str] | None = None, *, serve: bool = False) -> Settings:
    """The demo's settings: the simulator's account, a quick pace and, unless
    DATABASE_URL names one (and never with `serve`), a fresh SQLite file.

    A served demo also gets a session-signing key and a simulated Twilio auth token of
    its own, since its dashboard and webhooks are reachable by anyone who can reach the
    port, and the development key and the demo's token are public.
    """
    env = dict(os.environ if environ is None else environ)
    auth_token = secrets.token_hex(16) if serve else DEMO_AUTH_TOKEN
    if serve:
        env.pop("DATABASE_URL", None)
        env["SECRET_KEY"] = secrets.token_urlsafe(32)
    if not env.get("DATABASE_URL"):
        Path(DEMO_DATABASE_FILE).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(DEMO_DATABASE_FILE + suffix).unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{DEMO_DATABASE_FILE}"
    env.update(
        TWILIO_ACCOUNT_SID=DEMO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=auth_token,
        TWILIO_FROM_NUMBER="+14155550100",
        SURVEY_NUMBER=DEMO_SURVEY_NUMBER,
        CALLBACK_NUMBER=env.get("CALLBACK_NUMBER") or "+18005550100",
        AFTERCALL_ENV="development",
        # The network is simulated: pace like a large account so the demo is quick.
        CALLS_PER_SECOND=env.get("CALLS_PER_SECOND") or "200",
        MESSAGES_PER_SECOND=env.get("MESSAGES_PER_SECOND") or "200",
        # The north team's follow-ups go to the demo's admin; the south's stay unassigned.
        FOLLOW_UP_OWNERS=env.get("FOLLOW_UP_OWNERS") or f"north={DEMO_ADMIN}",
    )
    return Settings.from_env(env)


# The campaign's support calls spread over the four weeks up to its last day (within
# the dashboard's default 30 days), weekdays busier than weekends; they end between
# 13:00 and 19:30 UTC, inside calling hours somewhere from California to Poland.
DEMO_DAYS = 28
DAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.9, 0.4, 0.15)  # Monday to Sunday
ENDED_BETWEEN = (time(13, 0), time(19, 30))
# What the campaign's customers feel (phonesim.feeling): everyone as the default mix,
# except the agent who gets better over the four weeks, from many detractors to few.
IMPROVING_AGENT = "dave"
IMPROVING_FROM = {"promoter": 25.0, "passive": 30.0, "detractor": 45.0}
IMPROVING_TO = {"promoter": 60.0, "passive": 30.0, "detractor": 10.0}


def finished_support_calls(count: int, seed: int, now: datetime) -> Iterator[CallEnded]:
    """`count` support calls that ended over the DEMO_DAYS days up to `now`'s day (the
    campaign's last), in the order they ended."""
    rng = random.Random(seed)
    run = now.strftime("%Y%m%d%H%M%S")
    days = [now.date() - timedelta(days=back) for back in range(DEMO_DAYS - 1, -1, -1)]
    weights = [DAY_WEIGHTS[day.weekday()] for day in days]
    opens, closes = (datetime.combine(now.date(), t) for t in ENDED_BETWEEN)
    calls = []
    for index in range(count):
        prefix, digits, language = rng.choice(NUMBER_PLANS)
        suffix = "01" + "".join(rng.choices("0123456789", k=digits - 2)) if digits == 4 else (
            "".join(rng.choices("0123456789", k=digits))
        )  # fmt: skip
        agent, queue, team = rng.choice(AGENTS)
        (day,) = rng.choices(days, weights)
        into_day = rng.uniform(0, (closes - opens).total_seconds())
        ended = datetime.combine(day, ENDED_BETWEEN[0], tzinfo=UTC) + timedelta(
            seconds=round(into_day)
        )
        calls.append(
            CallEnded(
                phone=prefix + suffix,
                source_call_id=f"demo-{seed}-{run}-{index:05d}",
                ended_at=ended,
                agent=agent,
                queue=queue,
                team=team,
                language=language,
                metadata={"channel": "voice", "demo": True},
            )
        )
    yield from sorted(calls, key=lambda call: call.ended_at)


def customer_feeling(call: CallEnded, first_day: date, rng: random.Random) -> Feeling:
    """How the customer of `call` feels about it: the default mix (phonesim.feeling),
    or for IMPROVING_AGENT's customers a mix that gets better day by day."""
    if call.agent != IMPROVING_AGENT:
        return Feeling.draw(rng)
    progress = (call.ended_at.date() - first_day).days / max(1, DEMO_DAYS - 1)
    weights = {
        target: start + (IMPROVING_TO[target] - start) * progress  # type: ignore[index]
        for target, start in IMPROVING_FROM.items()
    }
    return Feeling.draw(rng, weights=weights)  # type: ignore[arg-type]


FIREHOSE_BATCH = 50
# The number the demo's contact center transfers customers to for in-call surveys, and
# the share of support calls whose customers it transfers instead of calling them back;
# of those, the share whose call-ended event arrives only after the survey began.
DEMO_SURVEY_NUMBER = "+15005550006"
IN_CALL_SHARE = 0.3
LATE_EVENT_SHARE = 0.15


def demo_contact_records(call: CallEnded, rng: random.Random) -> list[dict[str, Any]]:
    """The Amazon Connect contact records of a call like `call`, in the shape of AWS's
    contact record data model: one leg, or for one call in four two, the customer
    transferred to the call's agent by another, who is then not the one rated."""

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def leg(contact_id: str, agent: str, ended: datetime, **links: Any) -> dict[str, Any]:
        return {
            "AWSContactTraceRecordFormatVersion": "2017-03-10",
            "ContactId": contact_id,
            "Channel": "VOICE",
            "InitiationMethod": links.pop("method", "INBOUND"),
            "CustomerEndpoint": {"Address": call.phone, "Type": "TELEPHONE_NUMBER"},
            "Agent": {
                "Username": agent,
                "ConnectedToAgentTimestamp": stamp(ended - timedelta(minutes=4)),
                "AfterContactWorkStartTimestamp": stamp(ended),
                "HierarchyGroups": {"Level1": {"GroupName": call.team}},
            },
            "Queue": {"Name": call.queue},
            "DisconnectTimestamp": stamp(ended),
            "LastUpdateTimestamp": stamp(ended + timedelta(minutes=1)),
            "Attributes": {"language": call.language},
            **links,
        }

    first = call.source_call_id
    if rng.random() >= 0.25:
        return [leg(first, call.agent or "alice", call.ended_at)]
    handed_on = call.ended_at - timedelta(minutes=rng.randint(2, 6))
    second = f"{first}-transfer"
    previous_agent = rng.choice([a for a, _, _ in AGENTS if a != call.agent])
    return [
        leg(first, previous_agent, handed_on, NextContactId=second,
            TransferCompletedTimestamp=stamp(handed_on)),
        leg(second, call.agent or "alice", call.ended_at, InitialContactId=first,
            PreviousContactId=first, method="TRANSFER"),
    ]  # fmt: skip


class LateBoundApp:
    """A WSGI app set after its server is up: the app needs the server's address."""

    app: Any = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.app(environ, start_response)


class InProcessWorker(SimpleWorker):
    """rq's SimpleWorker (jobs run in this process, against the demo's Runtime) that
    leaves SIGINT and SIGTERM alone.

    rq's `work()` installs its own handlers and keeps them after a burst returns, so a
    Ctrl-C between two bursts would raise rq's StopRequested in the demo's loop, and
    one during a job would be logged as a failure with its traceback. The demo's
    handlers (`stop_on_signals`) only set an event, which its loops read between jobs.
    """

    def _install_signal_handlers(self) -> None:
        pass


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C or SIGTERM sets, for loops that end between two steps; a
    second Ctrl-C raises KeyboardInterrupt at once, for a step that takes too long."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may set signal handlers; nothing to catch
        return

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_can_listen(host: str, port: int) -> None:
    """PortUnavailable unless a server can listen on `host:port` (in use, not an address
    of this machine, a privileged port).

    Asked before the server binds because werkzeug, on failing to bind, prints its own
    advice and exits the process instead of raising.
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind) as probe:
            # As werkzeug's server does: a port left in TIME_WAIT is free to take.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise PortUnavailable(host, port, exc) from None


def local_url(host: str, port: int) -> str:
    """The address a browser (and the simulator's webhooks) on this machine use for a
    server listening on `host`: a wildcard address is reached through loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class SimulatedDeployment:
    """The product wired to an in-process phone network, on one simulated clock."""

    runtime: Runtime
    network: Any  # phonesim.PhoneNetwork; the product imports phonesim only lazily
    base_url: str
    seed: int
    start: datetime
    worker: InProcessWorker = field(init=False)

    def __post_init__(self) -> None:
        alerts = Queue(ALERT_QUEUE, connection=self.runtime.redis)
        self.worker = InProcessWorker(
            [self.runtime.queue(CALL_QUEUE), self.runtime.queue(MESSAGE_QUEUE), alerts],
            connection=self.runtime.redis,
        )

    def run_campaign(
        self,
        calls: int,
        progress: Callable[[int], None] = lambda n: None,
        stop: threading.Event | None = None,
        source: str = "api",
    ) -> DemoResult:
        """Import `calls` finished support calls and run the campaign to its end.

        The dialer really runs: requests go through intake and its rules, rq jobs are
        scheduled for their due times, the in-process rq worker places the calls
        through the Twilio SDK, status webhooks hand attempts back for retries. Only
        time is simulated: the loop moves the shared clock to the next scheduled job
        and releases the jobs that are due, which is what rq's scheduler does in real
        time. The support calls ended over the four weeks up to `start`'s day
        (finished_support_calls): the clock starts at the first and the campaign runs
        day by day, each day's calls taken in as they end, so intake's rules (how long
        a call stays worth surveying, calling hours, no survey twice within the
        fatigue days) apply as they would have. `stop`, once set, ends it between two
        rounds with CampaignStopped.
        """
        runtime, network = self.runtime, self.network
        finished = list(finished_support_calls(calls, self.seed, self.start))
        rng = random.Random(self.seed)
        in_call = {call.source_call_id for call in finished if rng.random() < IN_CALL_SHARE}
        self._give_feelings(finished)
        if finished:
            # The month ends on `start`'s day: the clock goes back to its first call.
            network.clock.set(min(network.clock.now(), finished[0].ended_at))
        queues = (runtime.queue(CALL_QUEUE), runtime.queue(MESSAGE_QUEUE))
        accepted: list[int] = []
        settled: set[int] = set()
        rejected = 0
        # Day by day on the simulated clock, as the contact center's month went: each
        # day's calls come in as that day's support calls end, and the surveys, retries
        # and texts they lead to run in their own time, under the product's own rules.
        days = sorted({call.ended_at.date() for call in finished})
        for day in days:
            todays = [call for call in finished if call.ended_at.date() == day]
            arrives = max(call.ended_at for call in todays) + timedelta(minutes=1)
            self._run_jobs(queues, accepted, settled, progress, stop, until=arrives)
            network.clock.set(max(arrives, network.clock.now()))
            conversation.expire(runtime)  # the cron's job in production
            called_back = [call for call in todays if call.source_call_id not in in_call]
            # A transferred customer's support call ends as the agent hangs up: now.
            transferred = [
                replace(call, ended_at=network.clock.now() - timedelta(seconds=rng.randint(5, 40)))
                for call in todays
                if call.source_call_id in in_call
            ]
            if source == "connect":
                taken = self._send_as_contact_records(called_back) if called_back else []
                rejected += len(called_back) - len(taken)
            else:
                results = accept_calls(runtime, called_back) if called_back else []
                rejected += sum(1 for r in results if r.request_id is None)
                taken = [r.request_id for r in results if r.accepted]
            taken += self._transfer_in_call(transferred, rng) if transferred else []
            accepted += taken
            progress(len(todays) - len(taken))
        self._run_jobs(queues, accepted, settled, progress, stop, until=None)
        # Texted customers who never replied: their conversations close when they expire
        # (the cron's job in production), on the simulated clock.
        closing = _last_text_expiry(runtime)
        if closing is not None:
            network.clock.set(max(closing, network.clock.now()))
            conversation.expire(runtime)
            progress(len(_settled(runtime, accepted) - settled))
        # The cron's follow-up sweep (every minute in production), once the surveys ended.
        follow_ups.sweep(runtime)
        transcript = _first_completed_transcript(runtime, network)
        with runtime.db.session() as session:
            return DemoResult(
                outcomes(session),
                report(session, ReportQuery(by=("agent",))),
                rejected,
                transcript,
                report(session, ReportQuery(by=("mode",))),
                spoken_share(session, ReportQuery()),
                _fallback_lift(session),
                _follow_ups_by_owner(session),
            )

    def _run_jobs(
        self,
        queues: tuple[Any, ...],
        accepted: list[int],
        settled: set[int],
        progress: Callable[[int], None],
        stop: threading.Event | None,
        until: datetime | None,
    ) -> None:
        """Run the campaign's jobs as they fall due, moving the clock to each, up to
        `until` (None: until none is left); report requests that settled."""
        network = self.network
        while True:
            if stop is not None and stop.is_set():
                raise CampaignStopped
            for queue in queues:
                scheduling.release_due_jobs(queue, network.clock.now())
            self._drain()
            network.run_until_idle(timeout=max(60.0, len(accepted) * 2.0))
            self._drain()
            newly = _settled(self.runtime, accepted) - settled
            progress(len(newly))
            settled |= newly
            next_due = self._next_due(queues)
            if next_due is None or (until is not None and next_due > until):
                return
            if next_due > network.clock.now():
                network.clock.set(next_due)

    def _give_feelings(self, calls: list[CallEnded]) -> None:
        """Each customer answers, by call or by text, as they feel about their support
        call (customer_feeling): the simulator's personas for their number, with that
        feeling in place of the one the mix drew."""
        network = self.network
        rng = random.Random(f"{self.seed}:feelings")
        first_day = min((call.ended_at.date() for call in calls), default=self.start.date())
        for call in calls:
            feeling = customer_feeling(call, first_day, rng)
            persona = network.persona_for(call.phone)
            if persona.feeling is not None:
                network.set_persona(call.phone, persona.with_(feeling=feeling))
            texter = network.texter_for(call.phone)
            if texter is not None:
                network.set_texter(call.phone, texter.with_(target=feeling.target))

    def _next_due(self, queues: tuple[Any, ...]) -> datetime | None:
        due = [t for t in (scheduling.next_scheduled_time(q) for q in queues) if t is not None]
        return min(due) if due else None

    def _transfer_in_call(self, calls: list[CallEnded], rng: random.Random) -> list[int]:
        """The in-call share of the campaign: each customer is transferred to the survey
        number as their agent hangs up, the way a contact center wires it
        (docs/in-call.md): most with the token intake issued, in a <Redirect>'s URL or
        as DTMF digits; some matched by their number; and some transferred before the
        call-ended event arrives, which then claims their answers. Their requests."""
        network, runtime = self.network, self.runtime
        late = [call for call in calls if rng.random() < LATE_EVENT_SHARE]
        for call in late:
            network.dial_in(call.phone, DEMO_SURVEY_NUMBER, persona=network.persona_for(call.phone))
        network.run_until_idle(timeout=max(60.0, len(late) * 2.0))
        self._drain()
        results = accept_calls(runtime, [replace(call, mode=SurveyMode.IN_CALL) for call in calls])
        for call, result in zip(calls, results, strict=True):
            if call in late or result.transfer is None:
                continue
            way = rng.random()
            how: dict[str, str] = {}
            if way < 0.6:
                how["url_query"] = f"?token={result.transfer.token}"
            elif way < 0.85:
                how["send_digits"] = f"ww{result.transfer.digits}"
            network.dial_in(
                call.phone, DEMO_SURVEY_NUMBER, persona=network.persona_for(call.phone), **how
            )
        return [r.request_id for r in results if r.accepted]

    def _send_as_contact_records(self, finished: list[CallEnded]) -> list[int]:
        """Post the calls' contact records as Firehose would; the requests they made."""
        with self.runtime.db.session() as session:
            key = apikeys.create_key(
                session, f"demo-firehose-{secrets.token_hex(3)}", scopes=[apikeys.INTAKE]
            )
        rng = random.Random(self.seed)
        records = [record for call in finished for record in demo_contact_records(call, rng)]
        rng.shuffle(records)  # legs arrive in any order
        for start in range(0, len(records), FIREHOSE_BATCH):
            batch = records[start : start + FIREHOSE_BATCH]
            body = {
                "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "timestamp": int(self.network.clock.now().timestamp() * 1000),
                "records": [
                    {"data": base64.b64encode(json.dumps(r).encode() + b"\n").decode()}
                    for r in batch
                ],
            }
            response = requests.post(
                f"{self.base_url}/api/v1/events/amazon-connect/contact-records",
                json=body,
                headers={"X-Amz-Firehose-Access-Key": key,
                         "X-Amz-Firehose-Request-Id": body["requestId"]},
                timeout=60,
            )  # fmt: skip
            response.raise_for_status()
        ids = [call.source_call_id for call in finished]
        with self.runtime.db.session() as session:
            return list(
                session.scalars(
                    select(SurveyRequest.id).where(SurveyRequest.source_call_id.in_(ids))
                )
            )

    def open_to_visitors(self) -> DemoAdmin:
        """After the campaign: a demo admin to sign in with, a cooperative customer on
        every number, and the network running calls as they are placed."""

        password = secrets.token_urlsafe(18)
        with self.runtime.db.session() as session:
            create_user(session, DEMO_ADMIN, password, "admin")
        settings = self.runtime.settings
        customer = cooperative_customer(self.runtime.catalog.get(settings.default_survey))
        # Numbers the campaign called keep no persona of their own: a test call to one
        # of them is answered like a call to any other number.
        for number in {call.to for call in self.network.calls}:
            self.network.set_persona(number, customer)
        self.network.persona_mix = PersonaMix(((1.0, customer),))
        self.network.start_driver()
        return DemoAdmin(DEMO_ADMIN, password, f"{self.base_url}/dashboard")

    def keep_dialing(
        self, stop: threading.Event, on_clock_jump: Callable[[datetime], None] = lambda t: None
    ) -> None:
        """Until `stop` is set: release due calls, run queued jobs, and, when nothing is
        under way, move the simulated clock to the next scheduled call.

        The jump is what makes a test call to any number come through at once: one
        placed outside the number's calling hours is scheduled for their next opening
        (dialer.trial_call), and the clock moves there instead of the demo waiting for
        it. `on_clock_jump` is told the new time.
        """
        queue, clock = self.runtime.queue(CALL_QUEUE), self.network.clock
        texts = self.runtime.queue(MESSAGE_QUEUE)
        while not stop.wait(POLL_SECONDS):
            scheduling.release_due_jobs(queue, clock.now())
            scheduling.release_due_jobs(texts, clock.now())
            if self._drain() or any(not call.ended for call in self.network.calls):
                continue
            next_due = scheduling.next_scheduled_time(queue)
            if next_due is not None and next_due > clock.now() and queue.count == 0:
                clock.set(next_due)
                on_clock_jump(next_due)

    def _drain(self) -> bool:
        """Run every queued job (calls, texts and alerts); True if there were any. The
        alerts the answers owe are queued first, as the cron's drain does every few
        seconds in production (aftercall.cron)."""
        queue_due_alerts(self.runtime)
        return self.worker.work(burst=True, logging_level="WARNING")


@contextmanager
def simulated_deployment(
    settings: Settings, seed: int, start: datetime, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SimulatedDeployment]:
    """The app on `host:port` (0: a free port) over a migrated database, talking to an
    in-process phone network, with the dialer's clock and the network's clock one and
    the same simulated clock. PortUnavailable if the port cannot be had."""

    # One access-log line per webhook would bury the demo's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    logging.getLogger("sms").setLevel(logging.WARNING)  # a line per text would too
    migrate.upgrade(settings.database_url)
    # As `aftercall db upgrade` does: the report rollup, in the report time zone.
    with one_off_session(settings.database_url) as session:
        rollup.switch_on(session, ZoneInfo(settings.report_time_zone))
    with ExitStack() as cleanup:
        late_app = LateBoundApp()
        check_can_listen(host, port)
        server = BackgroundServer(late_app, host, port).start()
        cleanup.callback(server.stop)
        clock = SimClock(start)
        network = PhoneNetwork(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            clock=clock,
            seed=seed,
            # Some customers say their answers instead of pressing keys (core.utterance).
            persona_mix=PersonaMix.speaking(),
            # Texted customers reply (mostly), late, never, with nonsense, STOP or HELP.
            text_persona_mix=TextPersonaMix.default(),
        )
        network.start()
        # Stopped before the server (callbacks run last in, first out): no call step
        # posts a webhook to a server that is gone.
        cleanup.callback(network.stop)
        base_url = local_url(host, server.port)
        redis = None if os.environ.get("REDIS_URL") else FakeRedis()
        database = Database(settings.database_url)
        runtime = Runtime(
            wiring=PROCESS_WIRING,
            settings=settings.with_overrides(
                public_base_url=base_url, twilio_api_base=network.api_base
            ),
            db=database,
            # The files, fallback on; and surveys an admin keeps in the demo's database.
            catalog=CombinedSurveyCatalog(
                _with_sms_fallback(SurveyCatalog.from_directory(settings.surveys_dir)),
                database,
                max_age=settings.survey_refresh_seconds,
            ),
            _redis=redis,
            now=clock.now,
        )
        cleanup.callback(runtime.db.dispose)
        network.configure_number(
            DEMO_SURVEY_NUMBER,
            voice_url=f"{base_url}/ivr/inbound",
            status_callback=f"{base_url}/ivr/inbound/status",
            sms_url=f"{base_url}/sms/inbound",
        )
        late_app.app = create_app(runtime=runtime)
        use_worker_runtime(runtime)
        cleanup.callback(use_worker_runtime, None)
        yield SimulatedDeployment(runtime, network, base_url, seed, start)


def demo_start_time(today: date) -> datetime:
    """18:00 UTC on the last weekday up to `today` (today itself, or the Friday before a
    weekend): inside calling hours from California to Poland, Sundays excluded (the
    shipped survey's `allow_sundays = false`).

    The campaign's last day: its support calls ended over the four weeks up to it, so
    the demo shows a campaign that already happened, never one ending tomorrow, and
    even from a Sunday its first day (`today` - 29 days at most) is inside the
    dashboard's default window of the last 30 days.
    """
    return datetime.combine(
        today - timedelta(days=max(0, today.weekday() - 4)), time(18, 0), tzinfo=UTC
    )


def run_demo(
    calls: int,
    seed: int,
    settings: Settings,
    progress: Callable[[int], None] = lambda n: None,
    stop: threading.Event | None = None,
    source: str = "api",
) -> DemoResult:
    """A whole campaign (SimulatedDeployment.run_campaign) on a deployment of its own."""
    start = demo_start_time(datetime.now(UTC).date())
    with simulated_deployment(settings, seed, start) as deployment:
        return deployment.run_campaign(calls, progress, stop, source)


def cooperative_customer(definition: SurveyDefinition) -> Any:
    """A phonesim Persona that picks up and answers every question of `definition`.

    Where a later question is asked only for certain answers (`when = "nps <= 6"`), it
    gives the answer closest to its usual one that gets that question asked, so a test
    call hears the whole survey, recorded comment included.
    """

    answers: list[Any] = []
    given: dict[str, int | None] = {}
    for question in definition.questions:
        if question.when is not None and not question.when.holds(given):
            continue
        scale = question.kind.scale
        if scale is None:
            answers.append(Comment(COOPERATIVE_COMMENT, seconds=4, finish_key="#"))
            continue
        usual = COOPERATIVE_ANSWERS[question.kind]
        conditions = [
            q.when
            for q in definition.questions
            if q.when is not None and q.when.question_key == question.key
        ]
        value = max(
            range(scale[0], scale[1] + 1),
            key=lambda v: (sum(c.holds({question.key: v}) for c in conditions), -abs(v - usual)),
        )
        given[question.key] = value
        answers.append(str(value))
    return Persona(name="cooperative", answers=tuple(answers))


def scores_table(rows: list[ReportRow]) -> str:
    """The demo's scores by agent and in total: `aftercall report`'s table (scoring.formats)
    of the same report rows as the dashboard's agent table and headline, so the figures
    agree; an NPS from few answers is shown with its margin and marked, not hidden."""
    return to_table(rows, ["agent"], totals(rows))


def _with_sms_fallback(catalog: SurveyCatalog) -> SurveyCatalog:
    """The demo's surveys text the survey to customers who never pick up (`[sms]
    fallback`, off in the shipped survey file: texting needs the customers' consent,
    which only the contact center knows it has; docs/sms.md)."""
    return SurveyCatalog(
        {
            name: replace(definition, sms=replace(definition.sms, fallback=True))
            for name in catalog.names()
            for definition in (catalog.get(name),)
        }
    )


def _follow_ups_by_owner(session: Any) -> dict[str, int]:
    rows = session.execute(
        select(FollowUp.owner, func.count())
        .where(FollowUp.is_test.is_(False))
        .group_by(FollowUp.owner)
    ).all()
    return {owner or "": count for owner, count in sorted(rows, key=lambda r: r[0] or "")}


def _last_text_expiry(runtime: Runtime) -> datetime | None:
    with runtime.db.session() as session:
        return session.scalar(
            select(func.max(SmsConversation.expires_at)).where(SmsConversation.closed_at.is_(None))
        )


def _fallback_lift(session: Any) -> FallbackLift:
    responded = (RequestState.COMPLETED, RequestState.PARTIAL)
    rows = session.execute(
        select(SurveyRequest.channel, SurveyRequest.state, func.count())
        .where(
            SurveyRequest.mode == SurveyMode.CALLBACK,
            SurveyRequest.is_test.is_(False),
            SurveyRequest.state != RequestState.SUPPRESSED,
            SurveyRequest.channel != Channel.SMS,
        )
        .group_by(SurveyRequest.channel, SurveyRequest.state)
    ).all()
    requests = sum(n for _, _, n in rows)
    texted = sum(n for channel, _, n in rows if channel is Channel.SMS_FALLBACK)
    by_text = sum(
        n for channel, state, n in rows if channel is Channel.SMS_FALLBACK and state in responded
    )
    by_call = sum(
        n for channel, state, n in rows if channel is Channel.VOICE and state in responded
    )
    return FallbackLift(requests, by_call, texted, by_text)


def _settled(runtime: Runtime, request_ids: list[int]) -> set[int]:
    waiting = (
        RequestState.SCHEDULED,
        RequestState.CALLING,
        RequestState.IN_PROGRESS,
        RequestState.TEXTING,
    )
    with runtime.db.session() as session:
        rows = session.scalars(
            select(SurveyRequest.id).where(
                SurveyRequest.id.in_(request_ids), SurveyRequest.state.not_in(waiting)
            )
        )
        return set(rows)


def _first_completed_transcript(runtime: Runtime, network: Any) -> list[str]:
    with runtime.db.session() as session:
        call_sid = session.scalar(
            select(CallAttempt.call_sid)
            .join(CallAttempt.request)
            .where(SurveyRequest.state == RequestState.COMPLETED)
            .order_by(CallAttempt.id)
            .limit(1)
        )
    return _transcript(network.call(call_sid)) if call_sid else []


def _transcript(call: Any) -> list[str]:
    """What the customer heard and pressed, in order (simulated time)."""
    # A key and the prompt it led to share a simulated instant; the key came first.
    events = [(p.at, 1, f"  aftercall: {p.text}") for p in call.prompts if p.kind == "say"]
    events += [(k.at, 0, f"  customer presses {k.key}") for k in call.key_presses]
    events += [(said.at, 0, f'  customer says "{said.text}"') for said in call.speech]
    return [line for _, _, line in sorted(events, key=lambda e: (e[0], e[1]))]
