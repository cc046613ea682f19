"""What the chaos tests run and break: a private redis-server, a TCP proxy in front of
PostgreSQL that can be cut, gunicorn serving the real app, `rq worker` processes, and
phonesim in server mode (several networks behind one address: tests/chaos/network.py);
and the checks every campaign must pass afterwards.

Everything runs on the wall clock, as in production. phonesim's EagerClock stamps
callbacks with real time but lets a call's rings and prompts take no time, so a few
hundred calls play out in seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import phonenumbers
import requests
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from core.db import Database
from core.models import Answer, CallAttempt, RequestState, SurveyRequest
from core.runtime import Runtime
from core.survey import QuestionKind, SurveyCatalog
from dialer import scheduling
from dialer.calling_hours import CallingWindow, zones_for_number
from dialer.intake import CallEnded, accept_calls
from dialer.scheduling import CALL_QUEUE
from ivr import keypad
from ivr.prompts import builtin_phrase
from phonesim import Persona, PersonaMix
from tests.chaos.network import ShardedNetwork

REPO = Path(__file__).resolve().parents[2]
WORKER_CLASS = "aftercall.worker.CallWorker"
SURVEY = "chaos"
MAX_ATTEMPTS = 2
# The survey the campaigns run: the shipped questions, short retry waits, and calling
# hours as wide as the law allows, every day, so that some numbers are always callable.
SURVEY_TOML = f"""
name = "{SURVEY}"
title = "Chaos"
default_language = "en"
max_tries = 2
leave_voicemail = false

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "How likely are you to recommend us? Press 0 to 10."

[[questions]]
key = "csat"
kind = "csat"
prompt.en = "How satisfied were you? Press 1 to 5."

[[questions]]
key = "improve"
kind = "comment"
when = "nps <= 6"
max_seconds = 30
prompt.en = "What should we improve? Speak after the tone, then press pound."

[dialing]
delay_minutes = 0
valid_hours = 24
calling_hours = "08:00-21:00"
allow_sundays = true
max_attempts = {MAX_ATTEMPTS}
retry_minutes = [1]
fatigue_days = 30
"""
# Final for the campaign: a person was reached, or the dialer decided not to retry.
AWAITING = (RequestState.NO_ANSWER, RequestState.BUSY, RequestState.FAILED, RequestState.VOICEMAIL)
# Callees who all pick up: campaigns that test something other than retries need not
# wait out the minute between attempts.
REACHABLE = PersonaMix(
    (
        (70.0, Persona(name="random")),
        (10.0, Persona.silent()),
        (10.0, Persona.machine()),
        (5.0, Persona(name="random_opts_out")),
        (5.0, Persona(name="random_hangs_up", hang_up_after=2)),
    )
)
# Reconciliation while the campaign runs: the production bounds, shortened where being
# early is harmless. Asking Twilio about a call is always safe; so is queueing again a
# job that may still run (the claim decides). An attempt without a CallSid keeps the
# production bound: its call, if any, could still be ringing.
CAMPAIGN_PATIENCE = scheduling.Patience(
    final_status=timedelta(seconds=10),
    stalled_job=timedelta(seconds=20),
    follow_up=timedelta(seconds=10),
    scheduler=timedelta(seconds=5),
)
# Phone networks calls are spread over (tests/chaos/network.py): enough that phonesim's
# drivers, one per network, never hold the campaign back.
SHARDS = 4
BASE_NUMBERS = (
    "+12125551234", "+14155551234", "+18085551234", "+442079461234", "+48221234567",
    "+74951234567", "+97142123456", "+81312123456", "+61291123456", "+6493123456",
)  # fmt: skip


def campaign_size(default: int) -> int:
    """The number of survey requests of a campaign: `default`, or what
    AFTERCALL_CHAOS_REQUESTS says (a bigger campaign run by hand, docs/reliability.md)."""
    value = os.environ.get("AFTERCALL_CHAOS_REQUESTS", "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"AFTERCALL_CHAOS_REQUESTS must be a whole number above 0, not {value!r}")
    return int(value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def callable_numbers(count: int, minutes: int = 20) -> list[str]:
    """`count` valid numbers whose calling window (08:00-21:00 local) is open now and for
    the next `minutes`, from as many countries as it takes."""
    now = datetime.now(UTC)
    window = CallingWindow(clock_time(8, 0), clock_time(21, 0), allow_sundays=True)
    numbers: list[str] = []
    for base in BASE_NUMBERS:
        zones = zones_for_number(base)
        if not all(window.allows(now + timedelta(minutes=m), zones) for m in (0, minutes)):
            continue
        for n in range(10_000):
            candidate = base[:-4] + f"{n:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                numbers.append(candidate)
                if len(numbers) == count:
                    return numbers
    raise AssertionError(
        f"only {len(numbers)} of {count} numbers are inside calling hours for {minutes} minutes"
    )


# -- processes ------------------------------------------------------------------------
class RedisServer:
    """A private redis-server that a test may crash and restart."""

    def __init__(self, directory: Path, *, appendonly: bool) -> None:
        self.directory, self.appendonly = directory, appendonly
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.appendonly else [
            "--appendonly", "no"]  # fmt: skip
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._pings, 10, "redis-server to start")

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def _pings(self) -> bool:
        try:
            return Redis.from_url(self.url, socket_timeout=1).ping()
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.crash()


class DatabaseProxy:
    """A TCP proxy in front of PostgreSQL. `cut()` drops every connection and refuses
    new ones (a database host gone); `restore()` lets them through again."""

    def __init__(self, upstream_port: int = 5432) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._cut = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = False
        threading.Thread(target=self._accept, daemon=True, name="db-proxy").start()

    def url_for(self, database_url: str) -> str:
        return database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{self.port}/")

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closing = True
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                _close(sock)
                with self._lock:
                    self._sockets.discard(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass
class Deployment:
    """The production processes, started on the test's servers."""

    env: dict[str, str]
    redis_url: str
    logs: Path
    workers: list[subprocess.Popen] = field(default_factory=list)
    web: subprocess.Popen | None = None
    _spawned: int = 0

    def start_web(self, port: int) -> None:
        log = open(self.logs / "web.log", "ab")  # noqa: SIM115 - the process owns it
        self.web = subprocess.Popen(
            ["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
             "--graceful-timeout", "2", "aftercall.web:create_app()"],
            env=self.env, stdout=log, stderr=log, start_new_session=True, cwd=REPO,
        )  # fmt: skip

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self._spawned += 1
            log = open(self.logs / f"worker-{self._spawned}.log", "ab")  # noqa: SIM115
            self.workers.append(
                subprocess.Popen(
                    [
                        "rq",
                        "worker",
                        "--with-scheduler",
                        "--worker-class",
                        WORKER_CLASS,
                        "--url",
                        self.redis_url,
                        CALL_QUEUE,
                    ],
                    env=self.env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    cwd=REPO,
                )
            )

    def kill_worker(self, rng: random.Random) -> None:
        """SIGKILL a worker with the job it may be running (its whole process group, as
        when a machine dies), and start a new one in its place."""
        alive = [w for w in self.workers if w.poll() is None]
        victim = rng.choice(alive)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        self.workers.remove(victim)
        self.start_workers(1)

    def replace_dead_workers(self) -> int:
        """A process supervisor's job: a worker that exited (lost Redis) is restarted."""
        dead = [w for w in self.workers if w.poll() is not None]
        for worker in dead:
            self.workers.remove(worker)
        self.start_workers(len(dead))
        return len(dead)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        self.workers.clear()

    def stop(self) -> None:
        self.stop_workers()
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)


# -- a campaign -----------------------------------------------------------------------
@dataclass
class Campaign:
    runtime: Runtime  # what the `cron` process uses: the deployment's database and Redis
    network: ShardedNetwork
    deployment: Deployment
    redis: RedisServer
    observer: Database  # the test's own view of the database, never behind the proxy
    proxy: DatabaseProxy | None = None
    request_ids: list[int] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # numbers not taken in yet
    ahead: int = 0

    def intake(self, phones: Iterable[str]) -> None:
        """Take every call in now, as a CSV import does."""
        ended = datetime.now(UTC) - timedelta(minutes=1)
        calls = [
            CallEnded(phone=p, source_call_id=f"chaos-{i}-{p}", ended_at=ended, survey=SURVEY)
            for i, p in enumerate(phones)
        ]
        results = accept_calls(self.runtime, calls)
        assert all(r.accepted for r in results), [r for r in results if not r.accepted][:3]
        self.request_ids.extend(r.request_id for r in results)

    def intake_as_dialed(self, phones: Iterable[str], ahead: int) -> None:
        """Take calls in as the dialer gets through them, never more than `ahead`
        requests waiting for their first call: surveys arrive as a contact center's
        calls end, not all at once. (All at once, the follow-up jobs of the first calls
        wait behind every other first call on the queue, and the retries they schedule
        with them.)"""
        self.pending.extend(phones)
        self.ahead = ahead
        self._feed()

    def _feed(self) -> None:
        if not self.pending:
            return
        with self.observer.session() as session:
            waiting = session.scalar(
                select(func.count()).where(
                    SurveyRequest.state == RequestState.SCHEDULED, SurveyRequest.calls_placed == 0
                )
            )
        if (room := self.ahead - waiting) > 0:
            batch, self.pending = self.pending[:room], self.pending[room:]
            self.intake(batch)

    def states(self) -> dict[RequestState, int]:
        with self.observer.session() as session:
            rows = session.execute(
                select(SurveyRequest.state, func.count()).group_by(SurveyRequest.state)
            ).all()
        return dict(rows)

    def unfinished(self) -> int:
        with self.observer.session() as session:
            return session.scalar(
                select(func.count()).where(
                    ~SurveyRequest.state.in_([s for s in RequestState if s.is_final_for_survey])
                    & ~(SurveyRequest.state.in_(AWAITING) & SurveyRequest.due_at.is_(None))
                )
            )

    def reconcile(self, patience: scheduling.Patience | None = None) -> None:
        """What the `cron` process does every minute (here every few seconds)."""
        try:
            scheduling.reconcile(self.runtime, patience or scheduling.Patience())
        except Exception as exc:  # the database or Redis is down: next time
            print(f"reconcile failed: {type(exc).__name__}: {exc}")

    def run(self, timeout: float, during: Callable[[float], None] | None = None) -> None:
        """Let the deployment work until every request is settled: reconciliation every
        few seconds, `during(elapsed)` in between (the chaos), and, whenever the
        deployment has gone quiet with requests still unsettled, a settling round."""
        started = time.monotonic()
        last_reconcile = last_progress = 0.0
        while True:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise AssertionError(f"campaign unfinished after {timeout} s: {self.states()}")
            self._feed()
            if during is not None:
                during(elapsed)
            if elapsed - last_reconcile > 3:
                self.deployment.replace_dead_workers()
                self.reconcile(CAMPAIGN_PATIENCE)
                last_reconcile = elapsed
            if elapsed - last_progress > 15:
                self._progress(elapsed)
                last_progress = elapsed
            if self._quiet():
                if self.unfinished() == 0 and not self.pending:
                    return
                # Settling stops every worker: only once the campaign has been taken in
                # (taking it in, the queue runs dry for a moment now and then).
                if not self.pending and not self._waiting_for_retries():
                    self.settle_quietly()
            time.sleep(0.5)

    def _progress(self, elapsed: float) -> None:
        """A line for the test's output, so that a slow or stuck campaign shows where."""
        states = {state.value: count for state, count in sorted(self.states().items())}
        doing = self._busy_with() or "quiet"
        print(f"{elapsed:5.0f} s: {len(self.network.calls)} calls, {doing}, {states}", flush=True)

    def settle_quietly(self) -> None:
        """Reconciliation as it would run 20 minutes later: with every worker stopped
        and no call live, nothing is in flight that a short wait could cut short, so
        silence can be taken for loss at once."""
        workers = len(self.deployment.workers)
        print(f"settling: {self.unfinished()} requests unfinished, the deployment quiet")
        self.deployment.stop_workers()
        self.network.run_until_idle(timeout=30)
        self.reconcile(scheduling.Patience(*[timedelta(0)] * 4))
        self.deployment.start_workers(workers)

    def _quiet(self) -> bool:
        return self._busy_with() is None

    def _busy_with(self) -> str | None:
        """What the deployment is still doing (None: nothing): a job waiting or running,
        a call live. A job a killed worker left marked started counts as running only
        while it could still be (CAMPAIGN_PATIENCE, from its last sign of life: a worker
        killed as it took the job leaves neither heartbeat nor start); one whose hash is
        gone not at all."""
        try:
            queue = Queue(CALL_QUEUE, connection=self.runtime.redis)
            if waiting := queue.count:
                return f"{waiting} jobs queued"
            registry = StartedJobRegistry(queue=queue)
            job_ids = registry.get_job_ids(cleanup=False)
            for job in Job.fetch_many(job_ids, connection=self.runtime.redis):
                if job is None:
                    continue
                beat = job.last_heartbeat or job.started_at or job.enqueued_at
                if beat is not None and datetime.now(UTC) - _aware(beat) < (
                    CAMPAIGN_PATIENCE.stalled_job
                ):
                    return f"job {job.id} running"
        except Exception as exc:  # Redis down or restarting
            return f"Redis: {type(exc).__name__}"
        return "calls live" if self.network.busy() else None

    def _waiting_for_retries(self) -> bool:
        """Requests are scheduled for later and their jobs exist: the deployment will
        get to them on its own."""
        with self.observer.session() as session:
            scheduled = session.scalar(
                select(func.count()).where(SurveyRequest.state == RequestState.SCHEDULED)
            )
            stuck = session.scalar(
                select(func.count()).where(
                    SurveyRequest.state.in_([RequestState.CALLING, RequestState.IN_PROGRESS])
                )
            )
        return scheduled > 0 and stuck == 0


# -- the checks -------------------------------------------------------------------------
def check_campaign(campaign: Campaign, catalog: SurveyCatalog) -> dict[str, int]:
    """What must hold after any campaign, whatever broke during it."""
    network = campaign.network
    with campaign.observer.session() as session:
        requests_ = {r.id: r for r in session.scalars(select(SurveyRequest))}
        attempts = session.scalars(select(CallAttempt)).all()
        answers = set(session.execute(select(Answer.request_id, Answer.question_key)).all())
        attempt_request = {a.id: a.request_id for a in attempts}
        # 1. Every request reached a state the campaign is done with.
        unsettled = {
            r.id: r.state
            for r in requests_.values()
            if not r.state.is_final_for_survey and not (r.state in AWAITING and r.due_at is None)
        }
        assert not unsettled, f"unsettled requests: {list(unsettled.items())[:10]}"
        assert not [a.id for a in attempts if a.status in ("queued", "initiated", "ringing",
                                                          "in-progress")]  # fmt: skip
    # 2. No request called more than its attempt limit; no number more than that either.
    placed: dict[int, int] = defaultdict(int)
    for attempt in attempts:
        if attempt.status != "rejected":
            placed[attempt.request_id] += 1
    assert max(placed.values(), default=0) <= MAX_ATTEMPTS, placed
    calls_by_number = defaultdict(list)
    for call in network.calls:
        calls_by_number[call.to].append(call)
    assert max((len(c) for c in calls_by_number.values()), default=0) <= MAX_ATTEMPTS
    # 3. Never two calls live at once to the same number (phonesim's own record).
    for number, calls in calls_by_number.items():
        calls.sort(key=lambda c: c.date_created)
        for earlier, later in itertools.pairwise(calls):
            assert earlier.end_time is not None and earlier.end_time <= later.date_created, (
                f"two calls live at once to {number}: {earlier.sid} and {later.sid}"
            )
    # 4. Every answer the web tier acknowledged is in the database.
    acknowledged = acknowledged_answers(network, catalog)
    missing = {
        (attempt_request[attempt_id], key)
        for attempt_id, key in acknowledged
        if (attempt_request.get(attempt_id), key) not in answers
    }
    assert not missing, f"acknowledged answers not stored: {sorted(missing)[:10]}"
    # 5. Twilio never got an error page from a webhook.
    statuses = [d.status for d in network.journal.documents] + [
        c.status for c in network.journal.callbacks
    ]
    assert all(s is None or s < 500 for s in statuses), sorted(set(statuses), key=str)
    return {"requests": len(requests_), "calls": len(network.calls),
            "answers": len(answers), "acknowledged": len(acknowledged)}  # fmt: skip


UNAVAILABLE = builtin_phrase("en", "unavailable")


def acknowledged_answers(network: ShardedNetwork, catalog: SurveyCatalog) -> set[tuple[int, str]]:
    """(attempt id, question key) of every answer a webhook took and replied to with
    the next step (200 TwiML other than the apology for being unavailable)."""
    survey = catalog.get(SURVEY)
    found = set()
    for fetch in network.journal.documents:
        parts = urlsplit(fetch.url)
        path = parts.path.split("/")  # /voice/attempts/<id>/questions/<key>[/recording]
        if fetch.status != 200 or len(path) < 6 or path[4] != "questions":
            continue
        try:
            said = [e.text for e in ElementTree.fromstring(fetch.xml).iter("Say")]
        except ElementTree.ParseError:
            continue
        if UNAVAILABLE in said:
            continue
        attempt_id, key = int(path[3]), path[5]
        question = survey.question(key)
        if question is None:
            continue
        if question.kind is QuestionKind.COMMENT:
            if path[-1] == "recording" and fetch.params.get("RecordingUrl"):
                found.add((attempt_id, key))
            continue
        after_one = parse_qs(parts.query).get("stage") == ["after-one"]
        result = keypad.interpret(question.kind, fetch.params.get("Digits"), after_one=after_one)
        if isinstance(result, keypad.Answered):
            found.add((attempt_id, key))
    return found


def web_is_up(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
