"""Dialer throughput: survey calls placed per second by `rq worker` processes, against a no-op job.

Runs the Procfile's `worker` command (`rq worker --with-scheduler --worker-class
aftercall.worker.CallWorker ... calls messages alerts`, same environment as production: PostgreSQL,
Redis, `AFTERCALL_ENV=production`) as 1, 2 and 4 processes. The twilio SDK in the work
horses places the calls with phonesim, served over HTTP by a process of its own, which
answers the Calls API as Twilio does and keeps a journal of every create request. No
call is played out: no web tier runs (that is bench.webhook_load's part), so every
attempt stays `queued`, and `MAX_CONCURRENT_CALLS` is raised so that the concurrency
limit is never what stops a call; `CALLS_PER_SECOND` is raised likewise
(`--unpaced-cps`).

Each measurement seeds N due survey requests through the dialer's own intake
(`dialer.intake.accept_calls`, as the API and CSV import do): the requests are stored
`scheduled` and their call jobs queued with rq's scheduler, which the workers' own
scheduler releases. Placed calls/s is counted from the first to the last placement
(the attempts' claim times in the database), CPU per call is the worker processes' CPU
(work horses and the scheduler included) over the run, divided by the calls.

Baseline, same workers, same run: N jobs that do nothing (`os.getpid`, which every horse
has loaded), queued the same way; their throughput is the worker command's ceiling, so
the ratio shows what placing a call costs.

Then pacing: `CALLS_PER_SECOND` at each `--pacing` value with `--pacing-workers` workers,
`--pacing-seconds` worth of requests all due at once; actual rate against configured,
the most creates phonesim received in any 1-second window, and the closest two. Pacing
admits calls on Redis's clock; the creates reach Twilio a claim and an HTTP request
later, so this is the rate as Twilio sees it.

Afterwards every request must have been placed exactly once: one attempt with a CallSid
per request in the database, and one create per number at phonesim, with the same
CallSids. The exit status is 1 if any was not (or a job failed, or a run timed out).

Localhost only, and bounded: N no-op jobs and N requests per worker count, CPS x
seconds requests per pacing run, each measurement given up after `--timeout` seconds. Prints, per run: jobs, placed/s, the
median job time (rq's timestamps), worker CPU per job and the load average.

    python -m bench.dialer_throughput                       # 600 requests; 1, 2, 4 workers
    python -m bench.dialer_throughput --requests 100 --workers 1 --pacing 10 --pacing-seconds 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import phonenumbers
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import create_engine, func, select, text

from aftercall.wiring import runtime_from_settings
from bench.fresh_database import reset
from bench.pacing import max_in_any_window
from bench.proc_cpu import group_cpu_seconds
from bench.webhook_load import ACCOUNT_SID, AUTH_TOKEN, HOST, PRODUCTION, free_port
from core.config import Settings
from core.db import Database
from core.models import CallAttempt
from core.runtime import Runtime
from dialer.calling_hours import CallingWindow, zones_for_number
from dialer.intake import CallEnded, accept_calls
from dialer.scheduling import CALL_QUEUE, JOB_TTL_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_dialer"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6390/7"
WORKER_CLASS = "--worker-class aftercall.worker.CallWorker"
NO_OP = "os.getpid"
SURVEY = "dialer-bench"
# The shipped survey's questions do not matter here; its dialing rules do: calling
# hours as wide as the law allows, every day, and no delay, so that the requests are due
# at once and some numbers are callable at any hour.
SURVEY_TOML = f"""
name = "{SURVEY}"
title = "Dialer benchmark"
default_language = "en"

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "How likely are you to recommend us? Press 0 to 10."

[dialing]
delay_minutes = 0
valid_hours = 24
calling_hours = "08:00-21:00"
allow_sundays = true
"""
CALLING_WINDOW = CallingWindow(clock_time(8, 0), clock_time(21, 0), allow_sundays=True)
# Numbers in zones round the globe: at any hour some are inside calling hours.
BASE_NUMBERS = (
    "+12125550000", "+14155550000", "+18085550000", "+442079460000", "+48221230000",
    "+74951230000", "+97142120000", "+81312120000", "+61291120000", "+6493120000",
)  # fmt: skip
UNPACED_CPS = 1000.0
NOT_THE_LIMIT = 1_000_000  # MAX_CONCURRENT_CALLS


# -- phonesim, in a process of its own ---------------------------------------------------


def serve_phonesim(port: int, journal_path: str) -> None:
    """phonesim's REST API on `port` until SIGTERM, then its record of the REST requests
    it answered (wall-clock times) as JSON in `journal_path`. No driver: calls are
    created and never played, as nobody would answer their webhooks."""
    from phonesim import PhoneNetwork, WallClock

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=WallClock(), host=HOST, port=port)
    network.start()
    while not stop.wait(0.2):
        pass
    network.stop()
    rows = [
        {"at": entry.at.timestamp(), "method": entry.method, "path": entry.path,
         "status": entry.status, "sid": entry.call_sid, "to": entry.params.get("To")}
        for entry in network.journal.rest
    ]  # fmt: skip
    Path(journal_path).write_text(json.dumps(rows))


@dataclass(frozen=True)
class Create:
    """A create request phonesim answered."""

    at: float
    status: int
    sid: str | None
    to: str | None


class Simulator:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.journal_path = logs / "phonesim-journal.json"
        self.log_path = logs / "phonesim.log"
        code = (
            "from bench.dialer_throughput import serve_phonesim; "
            f"serve_phonesim({self.port}, {str(self.journal_path)!r})"
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code], env=env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def api_base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"phonesim did not start:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> list[Create]:
        """Stops the simulator; the create requests it answered."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        if not self.journal_path.exists():
            return []
        return [
            Create(row["at"], row["status"], row["sid"], row["to"])
            for row in json.loads(self.journal_path.read_text())
            if row["method"] == "POST" and row["path"].endswith("/Calls.json")
        ]


# -- the workers ---------------------------------------------------------------------------


def procfile_worker() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker: "):
            command = line.removeprefix("worker: ")
            if WORKER_CLASS not in command or f" {CALL_QUEUE} " not in f"{command} ":
                raise SystemExit(f"Procfile worker line is not the call worker: {command}")
            return command
    raise SystemExit("Procfile has no worker process")


class Workers:
    """`count` copies of the Procfile's worker command, each in its own process group."""

    def __init__(self, count: int, env: dict[str, str], logs: Path, name: str) -> None:
        command = procfile_worker()
        self.processes: list[subprocess.Popen] = []
        self.logs = [logs / f"{name}-{n}.log" for n in range(1, count + 1)]
        for path in self.logs:
            with path.open("wb") as log:
                process = subprocess.Popen(
                    ["bash", "-c", f"exec {command}"], env=env, cwd=ROOT,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            self.processes.append(process)

    def wait_until_ready(self, redis: Redis, timeout: float = 120.0) -> None:
        """Until every worker is registered and one of them holds the calls queue's
        scheduler lock (before that, a due job would sit in the scheduled registry)."""
        lock = RQScheduler.get_locking_key(CALL_QUEUE)
        deadline = time.monotonic() + timeout
        while len(Worker.all(connection=redis)) < len(self.processes) or not redis.exists(lock):
            dead = [p for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = "\n".join(path.read_text(errors="replace")[-1500:] for path in self.logs)
                raise SystemExit(f"the workers did not start:\n{tail}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        return sum(group_cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> None:
        """rq's warm shutdown (SIGTERM), a kill after 30 s."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# -- the requests ----------------------------------------------------------------------------


def callable_numbers(count: int, minutes: float) -> list[str]:
    """`count` distinct valid numbers inside calling hours now and `minutes` from now."""
    now = datetime.now(UTC)
    numbers: list[str] = []
    for base in BASE_NUMBERS:
        zones = zones_for_number(base)
        if not all(CALLING_WINDOW.allows(now + timedelta(minutes=m), zones) for m in (0, minutes)):
            continue
        for n in range(10_000):
            candidate = base[:-4] + f"{n:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                numbers.append(candidate)
                if len(numbers) == count:
                    return numbers
    raise SystemExit(f"not {count} numbers inside calling hours for the next {minutes:g} min")


def intake_runtime(env: dict[str, str]) -> Runtime:
    return runtime_from_settings(Settings.from_env(env))


def seed_requests(runtime: Runtime, phones: list[str], tag: str) -> None:
    """Support calls that ended a minute ago, through the dialer's intake: stored as
    `scheduled`, due now, their call jobs queued with rq's scheduler."""
    ended = datetime.now(UTC) - timedelta(minutes=1)
    calls = [
        CallEnded(phone=phone, source_call_id=f"{tag}-{n}", ended_at=ended,
                  agent=f"agent-{n % 40}", queue="billing", survey=SURVEY)
        for n, phone in enumerate(phones)
    ]  # fmt: skip
    refused = [r for r in accept_calls(runtime, calls) if not r.accepted]
    if refused:
        raise SystemExit(f"intake refused {len(refused)} requests, e.g. {refused[0]}")


def seed_no_ops(redis: Redis, count: int) -> list[str]:
    """`count` jobs that do nothing, queued as the call jobs are (scheduled, due now)."""
    queue = Queue(CALL_QUEUE, connection=redis)
    due = datetime.now(UTC)
    ids = [f"no-op-{int(due.timestamp() * 1e6)}-{n}" for n in range(count)]
    with redis.pipeline() as pipeline:
        for job_id in ids:
            queue.enqueue_at(due, NO_OP, job_id=job_id, ttl=JOB_TTL_SECONDS, pipeline=pipeline)
        pipeline.execute()
    return ids


def empty_requests(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE survey_requests RESTART IDENTITY CASCADE"))
    engine.dispose()


@dataclass(frozen=True)
class Attempt:
    request_id: int
    call_sid: str | None
    status: str
    created_at: datetime


def attempts(db: Database) -> list[Attempt]:
    with db.session() as session:
        rows = session.execute(
            select(
                CallAttempt.request_id,
                CallAttempt.call_sid,
                CallAttempt.status,
                CallAttempt.created_at,
            )
        ).all()
    return [Attempt(*row) for row in rows]


def placed_count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count(CallAttempt.id)).where(CallAttempt.call_sid.is_not(None))
        )


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Run:
    """One measurement: `jobs` of one kind through one group of workers."""

    kind: str  # "no-op" or "call"
    workers: int
    cps: float
    requests: int
    jobs: int = 0  # rq jobs finished (a call paced again is a second job)
    rate: float = float("nan")  # per second, first to last (claims, or rq's start times)
    span: float = float("nan")
    job_p50: float = float("nan")  # rq's started_at to ended_at
    cpu_per_request: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))
    window: tuple[float, float] = (0.0, 0.0)  # wall clock: seeding to the last placement
    phones: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    creates: list[Create] = field(default_factory=list)
    failed_jobs: int = 0
    timed_out: bool = False

    @property
    def peak_second(self) -> int:
        """The most creates phonesim received in any 1-second window."""
        return max_in_any_window([c.at for c in self.creates])

    @property
    def closest_creates(self) -> float:
        """The shortest time between two creates at phonesim."""
        times = sorted(c.at for c in self.creates)
        return min((b - a for a, b in itertools.pairwise(times)), default=float("nan"))

    @property
    def simulator_rate(self) -> float:
        times = sorted(c.at for c in self.creates)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


class LoadSampler:
    """The 1-minute load average, sampled while a run waits."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def span(self) -> tuple[float, float]:
        return min(self.samples), max(self.samples)


def finished_jobs(redis: Redis) -> set[str]:
    return set(FinishedJobRegistry(CALL_QUEUE, connection=redis).get_job_ids())


def queue_is_idle(redis: Redis) -> bool:
    queue = Queue(CALL_QUEUE, connection=redis)
    return (
        queue.count == 0
        and queue.scheduled_job_registry.count == 0
        and StartedJobRegistry(CALL_QUEUE, connection=redis).count == 0
    )


def job_p50(redis: Redis, job_ids: list[str]) -> float:
    durations = [
        (job.ended_at - job.started_at).total_seconds()
        for job in Job.fetch_many(job_ids, connection=redis)
        if job is not None and job.started_at and job.ended_at
    ]
    return statistics.median(durations) if durations else float("nan")


def wait_for_run(
    run: Run,
    workers: Workers,
    redis: Redis,
    timeout: float,
    done: Callable[[], bool],
    cpu: float,
    load: LoadSampler,
) -> None:
    """Wait until `done()`, a job fails or `timeout` passes, sampling the load; then
    note the run's window, its workers' CPU per request since `cpu` (their CPU seconds
    when the run began) and the load it ran under."""
    deadline = time.monotonic() + timeout
    while not done():
        if FailedJobRegistry(CALL_QUEUE, connection=redis).count:
            break
        if time.monotonic() > deadline:
            run.timed_out = True
            break
        load.sample()
        time.sleep(0.2)
    run.window = (run.window[0], time.time())
    run.cpu_per_request = (workers.cpu_seconds() - cpu) / run.requests
    run.load = load.span()


def measure_no_ops(run: Run, workers: Workers, redis: Redis, timeout: float) -> None:
    before = finished_jobs(redis)
    load, cpu = LoadSampler(), workers.cpu_seconds()
    run.window = (time.time(), 0.0)
    ids = set(seed_no_ops(redis, run.requests))
    wait_for_run(run, workers, redis, timeout, lambda: ids <= finished_jobs(redis), cpu, load)
    ran = sorted(finished_jobs(redis) - before)
    run.jobs = len(ran)
    starts = sorted(
        job.started_at.timestamp()
        for job in Job.fetch_many(ran, connection=redis)
        if job is not None and job.started_at
    )
    if len(starts) > 1:
        run.span = starts[-1] - starts[0]
        run.rate = (len(starts) - 1) / run.span
    run.job_p50 = job_p50(redis, ran)
    run.failed_jobs = FailedJobRegistry(CALL_QUEUE, connection=redis).count


def measure_calls(
    run: Run, workers: Workers, redis: Redis, runtime: Runtime, url: str, timeout: float
) -> None:
    empty_requests(url)
    before = finished_jobs(redis)
    load, cpu = LoadSampler(), workers.cpu_seconds()
    run.window = (time.time(), 0.0)
    seed_requests(runtime, run.phones, f"{run.kind}-{run.workers}-{run.cps:g}")
    wait_for_run(
        run, workers, redis, timeout,
        lambda: placed_count(runtime.db) >= run.requests and queue_is_idle(redis), cpu, load,
    )  # fmt: skip
    ran = sorted(finished_jobs(redis) - before)
    run.jobs = len(ran)
    run.job_p50 = job_p50(redis, ran)
    run.attempts = attempts(runtime.db)
    claims = sorted(a.created_at.timestamp() for a in run.attempts if a.call_sid)
    if len(claims) > 1:
        run.span = claims[-1] - claims[0]
        run.rate = (len(claims) - 1) / run.span
    run.failed_jobs = FailedJobRegistry(CALL_QUEUE, connection=redis).count


def placed_once(run: Run) -> tuple[bool, str]:
    """Every request placed exactly once: in the database and at the simulator."""
    by_request: dict[int, list[Attempt]] = {}
    for attempt in run.attempts:
        by_request.setdefault(attempt.request_id, []).append(attempt)
    twice = sum(1 for tried in by_request.values() if len(tried) > 1)
    unplaced = run.requests - sum(
        1 for tried in by_request.values() if len(tried) == 1 and tried[0].call_sid
    )
    answered = [c for c in run.creates if c.status == 201]
    refused = len(run.creates) - len(answered)
    numbers = [c.to for c in answered]
    repeated = len(numbers) - len(set(numbers))
    strangers = len(set(numbers) - set(run.phones))
    sids_differ = {c.sid for c in answered} != {a.call_sid for a in run.attempts}
    ok = not (
        twice or unplaced or refused or repeated or strangers or sids_differ
        or run.failed_jobs or run.timed_out or len(answered) != run.requests
    )  # fmt: skip
    return ok, (
        f"{run.requests} requests: {len(by_request)} with attempts, placed twice {twice}, "
        f"not placed {unplaced}; phonesim: {len(answered)} calls created, refused {refused}, "
        f"numbers called twice {repeated}, numbers not seeded {strangers}, CallSids "
        f"{'DIFFER from' if sids_differ else 'match'} the database; failed jobs "
        f"{run.failed_jobs}{'; TIMED OUT' if run.timed_out else ''}"
    )


# -- reporting ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def print_throughput(runs: list[Run]) -> None:
    print(
        "\nthroughput: N jobs due at once, CALLS_PER_SECOND and MAX_CONCURRENT_CALLS not the "
        "limit\n(per s: first to last placement, or to the last no-op job's start; "
        "CPU: the worker processes' per job)"
    )
    print(f"{'workers':>7}  {'job':<10}{'jobs':>7}{'per s':>9}{'job p50':>11}{'CPU/job':>11}"
          f"{'load':>12}")  # fmt: skip
    for run in runs:
        load = f"{run.load[0]:.1f}-{run.load[1]:.1f}"
        print(f"{run.workers:>7}  {run.kind:<10}{run.jobs:>7}{run.rate:>9.1f}"
              f"{ms(run.job_p50):>11}{ms(run.cpu_per_request):>11}{load:>12}")  # fmt: skip
    baseline = {run.workers: run for run in runs if run.kind == "no-op"}
    for run in runs:
        base = baseline.get(run.workers)
        if run.kind == "call" and base is not None and base.rate > 0:
            # /proc counts CPU in 10 ms ticks: a tiny run's no-op jobs may show none.
            cpu = (
                f"{run.cpu_per_request / base.cpu_per_request:.1f}x"
                if base.cpu_per_request > 0
                else "n/a (too short a run to measure the no-op jobs)"
            )
            print(
                f"{run.workers:>7}  call/no-op  per s {run.rate / base.rate:.3f}, CPU per job {cpu}"
            )


def print_pacing(runs: list[Run]) -> None:
    print(
        "\npacing: CALLS_PER_SECOND with the requests all due at once (creates as phonesim "
        "received them)"
    )
    print(f"{'CPS':>6}{'workers':>9}{'calls':>7}{'seconds':>9}{'actual/s':>10}{'ratio':>8}"
          f"{'most in 1 s':>13}{'closest':>10}{'jobs':>7}{'CPU/call':>11}{'load':>12}")  # fmt: skip
    for run in runs:
        load = f"{run.load[0]:.1f}-{run.load[1]:.1f}"
        times = sorted(c.at for c in run.creates)
        seconds = times[-1] - times[0] if len(times) > 1 else float("nan")
        rate = run.simulator_rate
        print(f"{run.cps:>6g}{run.workers:>9}{len(times):>7}{seconds:>9.1f}{rate:>10.3f}"
              f"{rate / run.cps:>8.3f}{run.peak_second:>13}{ms(run.closest_creates):>10}{run.jobs:>7}"
              f"{ms(run.cpu_per_request):>11}{load:>12}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--requests", type=int, default=600, help="per throughput run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--unpaced-cps", type=float, default=UNPACED_CPS)
    parser.add_argument("--pacing", type=float, nargs="*", default=[1.0, 10.0], help="CPS")
    parser.add_argument("--pacing-workers", type=int, default=2)
    parser.add_argument("--pacing-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the dialer benchmark runs against PostgreSQL")
    if args.requests < 2 or min(args.workers) < 1 or args.pacing_workers < 1:
        raise SystemExit("--requests must be at least 2, and every worker count at least 1")

    paced = [(cps, max(2, round(cps * args.pacing_seconds))) for cps in args.pacing]
    total = args.requests * len(args.workers) + sum(count for _, count in paced)
    phones = iter(callable_numbers(total, minutes=30))
    logs = Path(tempfile.mkdtemp(prefix="dialer-throughput-"))
    surveys = logs / "surveys"
    surveys.mkdir()
    (surveys / f"{SURVEY}.toml").write_text(SURVEY_TOML)

    reset(args.database_url)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    simulator = Simulator({**os.environ, "PYTHONPATH": python_path}, logs)
    base_env = {
        **os.environ,
        **PRODUCTION,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "TWILIO_API_BASE": simulator.api_base,
        "SURVEYS_DIR": str(surveys),
        "MAX_CONCURRENT_CALLS": str(NOT_THE_LIMIT),
        "PYTHONPATH": python_path,
    }
    runtime = intake_runtime(base_env)
    print(f"worker command (Procfile): {procfile_worker()}")
    print(
        f"{args.requests} requests per throughput run with {', '.join(map(str, args.workers))} "
        f"worker(s); pacing {', '.join(f'{cps:g}' for cps in args.pacing) or 'not measured'} "
        f"CPS with {args.pacing_workers} worker(s) for {args.pacing_seconds:g} s of calls; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run"
    )

    throughput: list[Run] = []
    pacing: list[Run] = []
    groups = [(n, args.unpaced_cps, args.requests, throughput) for n in args.workers]
    groups += [(args.pacing_workers, cps, count, pacing) for cps, count in paced]
    try:
        simulator.wait_until_ready()
        for count, cps, requests, runs in groups:
            env = {**base_env, "CALLS_PER_SECOND": f"{cps:g}"}
            workers = Workers(count, env, logs, f"worker-{count}x-{cps:g}cps")
            try:
                workers.wait_until_ready(redis)
                if runs is throughput:
                    run = Run("no-op", count, cps, requests)
                    measure_no_ops(run, workers, redis, args.timeout)
                    runs.append(run)
                run = Run(
                    "call", count, cps, requests, phones=[next(phones) for _ in range(requests)]
                )
                measure_calls(run, workers, redis, runtime, args.database_url, args.timeout)
                runs.append(run)
            finally:
                workers.stop()
            redis.flushdb()
    finally:
        creates = simulator.stop()
        runtime.db.dispose()

    for run in throughput + pacing:
        if run.kind == "call":
            first, last = run.window
            run.creates = [c for c in creates if first <= c.at <= last]
    print_throughput(throughput)
    if pacing:
        print_pacing(pacing)
    consistent = True
    print()
    for run in throughput + pacing:
        if run.kind != "call":
            if run.timed_out or run.failed_jobs:
                consistent = False
                print(f"no-op, {run.workers} worker(s): failed jobs {run.failed_jobs}"
                      f"{', TIMED OUT' if run.timed_out else ''}")  # fmt: skip
            continue
        ok, summary = placed_once(run)
        consistent &= ok
        label = f"{run.workers} worker(s), CPS {run.cps:g}"
        print(f"placed exactly once ({label}): {'yes' if ok else 'NO'}: {summary}")
    for run in pacing:
        # Pacing admits calls on Redis's clock; the create requests reach Twilio after
        # the claim and the HTTP request, whose time varies: this is what Twilio sees.
        held = run.peak_second <= max(1, int(run.cps))
        print(f"pacing {run.cps:g} CPS at phonesim: {'held' if held else 'NOT held'} (most "
              f"creates in any 1 s: {run.peak_second}, closest two "
              f"{ms(run.closest_creates)} apart, actual {run.simulator_rate:.3f}/s)")  # fmt: skip
    print(f"load average after the run: {os.getloadavg()[0]:.2f}; logs: {logs}")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
