"""SMS pacing (issue 17): the texts per second the sender holds under MESSAGES_PER_SECOND.

Texts go out paced through the same Redis sliding-window limiter as calls
(core.pacing, its own log `MESSAGE_PACING_KEY`). Each measurement prepares N pending
outbound texts in a migrated PostgreSQL database (a survey request, its SMS
conversation and its first question, written directly as `sms.conversation` writes
them), queues one `sms.jobs.send_text` job per text on the "messages" queue
(`sms.outbox.queue_texts`, as the product does), and lets real rq workers send them:
the Procfile's worker command (`rq worker --with-scheduler --worker-class ...`, the
production environment) on the messages queue only, as 1, 2, 4... processes. The
worker class is the Procfile's `aftercall.worker.CallWorker` (rq's SimpleWorker: jobs
run in the worker process), subclassed here only to note in Redis each admission the
limiter granted (its time on Redis's clock) and each time it gave up after the job's
2 s wait (the job then hands itself back to rq's scheduler, as in production). The
twilio SDK in the workers hands each text to phonesim's Messages API, served over HTTP
from a thread of this process on the real clock (no driver runs: the texts stay
`queued`, and no status callback is posted).

Two clocks, two figures:

- admitted: the limiter's admissions, on Redis's clock. The most of them in any
  1-second window must never exceed the limit; the exit status is 1 if it did.
- accepted: when phonesim accepted each text (its `date_created`, microseconds, the
  same machine's clock), a claim in PostgreSQL and an HTTP request after the
  admission: what Twilio sees. The held rate is computed from these; the most in any
  1-second window is printed too, and may exceed the limit by the send's jitter. It
  is printed again without each worker process's first text ("warm"), which is slow
  (the process's first database connection, statements compiled, first HTTP
  connection), with the lag from admission to acceptance (median, max, max warm).

Held rate = texts / (first to last acceptance + one window): a sliding window admits
`limit` texts at once, so N texts held exactly at the limit take N / limit windows,
and held / limit is then 1.000. For that, the texts of a paced run are rounded up to
a multiple of the limit (MESSAGES_PER_SECOND rounded down; 1 below 1 per second).

Baseline, same run, same machine: the sender's own ceiling, N texts sent by
`sms.sender.send` with no pacing and no rq, by the same numbers of processes (each
its share, all starting together); texts/s from the first acceptance at phonesim to
the last. The paced figure is shown against both: held / limit, limit / ceiling (how
much of the sender's capacity the account's limit leaves to use) and held / ceiling.

Afterwards every text must have been sent exactly once: `queued` with a MessageSid in
the database, one message per number at phonesim with the same SIDs. The exit status
is 1 if not, or if a run timed out.

    python -m bench.sms_pacing --mps 1 5 --workers 1 4 --seconds 25
    python -m bench.sms_pacing --redis-url redis://127.0.0.1:6390/9 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_smsbench \\
        --mps 1 5 --workers 1 2 4 --texts 60

Localhost only. It resets the database and flushes the Redis database it is given.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Worker, get_current_job
from rq.registry import FailedJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from aftercall.wiring import runtime_from_settings
from aftercall.worker import CallWorker
from bench.fresh_database import reset
from core import flow
from core.config import Settings
from core.db import Database
from core.models import Channel, RequestState, SmsConversation, SmsMessage, SurveyRequest
from core.pacing import window_and_limit
from core.runtime import Runtime, worker_runtime
from core.survey_versions import version_for
from phonesim import PhoneNetwork, WallClock
from sms import sender, wording
from sms.outbox import MESSAGE_QUEUE, queue_texts
from sms.segments import segments

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_smsbench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6390/9"
HOST = "127.0.0.1"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"
FROM_NUMBER = "+15005550006"  # one of phonesim's numbers, SMS-capable
# What AFTERCALL_ENV=production refuses to start without (bench.webhook_load's).
PRODUCTION = {
    "AFTERCALL_ENV": "production",
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": FROM_NUMBER,
    "PUBLIC_BASE_URL": "https://surveys.example.test",
    "COMPANY_NAME": "Acme Support",
    "CALLBACK_NUMBER": "+18005550100",
    "SECRET_KEY": "bench-secret-key",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
    "ALERT_WEBHOOK_SECRET": "bench-alert-secret",
}
SURVEY = "post-call"
# The Procfile's worker command, on the messages queue only, with the recording class.
WORKER_COMMAND = (
    "rq worker --with-scheduler --worker-class bench.sms_pacing.RecordingWorker "
    "--logging_level WARNING --url {redis_url} " + MESSAGE_QUEUE
)
# Redis keys the benchmark's processes write (the database is flushed between runs).
ADMITTED = "bench:sms-pacing:admitted"
HANDED_BACK = "bench:sms-pacing:handed-back"
SHARE = "bench:sms-pacing:share:{}"
READY = "bench:sms-pacing:ready"
GO = "bench:sms-pacing:go"


# -- the worker processes ------------------------------------------------------------------


class RecordingWorker(CallWorker):
    """The Procfile's worker class, noting what the limiter answered `sms.jobs.send_text`:
    the time of each granted admission (Redis's clock), and each wait given up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import sms.sender

        acquire = sms.sender.acquire_call_slot
        redis = worker_runtime().redis

        def recording(*args: Any, **kwargs: Any) -> Any:
            admission = acquire(*args, **kwargs)
            if admission.granted:
                job = get_current_job()  # sms.jobs.send_text(message_id)
                entry = f"{job.args[0]} {admission.started_at!r} {os.getpid()}"
                redis.rpush(ADMITTED, entry)
            else:
                redis.incr(HANDED_BACK)
            return admission

        sms.sender.acquire_call_slot = recording


def send_unpaced(index: int) -> None:
    """The baseline's process: its share of the texts through `sms.sender.send`, no
    pacing, once every process is ready."""
    runtime = runtime_from_settings(Settings.from_env())
    ids = [int(value) for value in runtime.redis.lrange(SHARE.format(index), 0, -1)]
    with runtime.db.session() as session:
        session.execute(select(1))
    runtime.twilio.messages  # noqa: B018 - the SDK imports its Messages API lazily
    runtime.redis.rpush(READY, index)
    if runtime.redis.blpop([GO], timeout=300) is None:
        raise SystemExit("no signal to start")
    for message_id in ids:
        sender.send(runtime, message_id)


class Processes:
    """Commands, each in its own process group, their output in `logs`."""

    def __init__(self, commands: list[str], env: dict[str, str], logs: Path, name: str) -> None:
        self.processes: list[subprocess.Popen] = []
        self.logs = [logs / f"{name}-{n}.log" for n in range(1, len(commands) + 1)]
        for command, path in zip(commands, self.logs, strict=True):
            with path.open("wb") as log:
                process = subprocess.Popen(
                    ["bash", "-c", f"exec {command}"], env=env, cwd=ROOT,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            self.processes.append(process)

    def check_alive(self, what: str) -> None:
        if any(process.poll() not in (None, 0) for process in self.processes):
            raise SystemExit(f"{what} failed:\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in self.logs)

    def stop(self) -> None:
        """SIGTERM (rq's warm shutdown), a kill after 30 s."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for(condition: Any, processes: Processes, what: str, timeout: float) -> bool:
    """Until `condition()`; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        processes.check_alive(what)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# -- the texts ---------------------------------------------------------------------------------


class Texts:
    """Pending outbound texts, the first question of a survey by text each, to numbers
    never used before in the run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.definition = runtime.catalog.get(SURVEY)
        step = flow.opening(self.definition)
        self.question = step.question
        # One segment (a follow-up question's text): the pacer takes a slot per segment
        # (sms.sender.pace), so texts per second are segments per second here.
        self.body = wording.question_text(step.question, "en")
        assert segments(self.body) == 1, self.body
        self.serial = 0

    def prepare(self, count: int) -> tuple[list[int], list[str]]:
        now = datetime.now(UTC)
        phones = [f"+1555{self.serial + n:07d}" for n in range(count)]
        self.serial += count
        with self.runtime.db.session() as session:
            version = version_for(session, self.definition)
            texts = []
            for phone in phones:
                request = SurveyRequest(
                    phone=phone, source_call_id=f"sms-bench-{phone}", agent="alice",
                    queue="billing", call_ended_at=now - timedelta(minutes=10),
                    survey_name=SURVEY, survey_version_id=version.id,
                    state=RequestState.TEXTING, channel=Channel.SMS,
                )  # fmt: skip
                conversation = SmsConversation(
                    phone=phone, sender=FROM_NUMBER, language="en",
                    question_key=self.question.key, try_number=1,
                    expires_at=now + timedelta(hours=24),
                )  # fmt: skip
                text = SmsMessage(
                    direction="outbound", phone=phone, body=self.body, status="pending",
                    purpose="question", question_key=self.question.key,
                )  # fmt: skip
                texts.append((request, conversation, text))
            session.add_all([request for request, _, _ in texts])
            session.flush()
            for request, conversation, _ in texts:
                conversation.request_id = request.id
                conversation.survey_version_id = version.id
            session.add_all([conversation for _, conversation, _ in texts])
            session.flush()
            for _, conversation, text in texts:
                text.conversation_id = conversation.id
            session.add_all([text for _, _, text in texts])
            session.flush()
            ids = [text.id for _, _, text in texts]
        return ids, phones


def unsent(db: Database, ids: list[int]) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count(SmsMessage.id)).where(
                SmsMessage.id.in_(ids), SmsMessage.status.in_(("pending", "submitting"))
            )
        )


def stored_sids(db: Database, ids: list[int]) -> list[tuple[int, str, str | None]]:
    with db.session() as session:
        rows = session.execute(
            select(SmsMessage.id, SmsMessage.status, SmsMessage.message_sid).where(
                SmsMessage.id.in_(ids)
            )
        ).all()
    return [tuple(row) for row in rows]


# -- measuring -----------------------------------------------------------------------------


def max_in_any_window(times: list[float], width: float = 1.0) -> int:
    """The most times in any half-open window [t, t + width)."""
    times = sorted(times)
    return max((bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


@dataclass
class Run:
    """One measurement: N texts through `workers` processes, paced at `mps` (or not)."""

    workers: int
    mps: float | None  # None: the baseline, no pacing
    count: int
    ids: list[int] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    accepted: list[float] = field(default_factory=list)  # phonesim's date_created
    admitted: list[float] = field(default_factory=list)  # every admission, Redis's clock
    admitted_by_text: dict[int, float] = field(default_factory=dict)  # the last per text
    # Each worker process's first text: its first database connection, SQL statements
    # compiled, its first HTTP connection to the API.
    cold: set[int] = field(default_factory=set)
    accepted_by_text: dict[int, float] = field(default_factory=dict)
    handed_back: int = 0
    failed_jobs: int = 0
    load: tuple[float, float] = (float("nan"), float("nan"))
    sent_once: tuple[bool, str] = (False, "not checked")
    timed_out: bool = False

    def lags(self, warm: bool = False) -> list[float]:
        """Acceptance at phonesim minus admission, per text (warm: but the cold ones)."""
        return [
            accepted - self.admitted_by_text[n]
            for n, accepted in self.accepted_by_text.items()
            if n in self.admitted_by_text and not (warm and n in self.cold)
        ]

    @property
    def window(self) -> float:
        return 0.0 if self.mps is None else window_and_limit(self.mps)[0]

    @property
    def limit(self) -> int:
        return 0 if self.mps is None else window_and_limit(self.mps)[1]

    @property
    def seconds(self) -> float:
        """First to last acceptance, plus one window when paced."""
        if len(self.accepted) < 2:
            return float("nan")
        return max(self.accepted) - min(self.accepted) + self.window

    @property
    def rate(self) -> float:
        return len(self.accepted) / self.seconds if len(self.accepted) > 1 else float("nan")


def check_sent_once(run: Run, db: Database, network: Any) -> None:
    mine = set(run.phones)
    messages = [m for m in network.messages if m.direction == "outbound-api" and m.to in mine]
    run.accepted = [m.date_created.timestamp() for m in messages]
    stored = stored_sids(db, run.ids)
    not_queued = sum(1 for _, status, sid in stored if status != "queued" or sid is None)
    twice = len(messages) - len({m.to for m in messages})
    sids_differ = {m.sid for m in messages} != {sid for _, _, sid in stored}
    accepted = {m.sid: m.date_created.timestamp() for m in messages}
    run.accepted_by_text = {
        message_id: accepted[sid] for message_id, _, sid in stored if sid in accepted
    }
    ok = not (not_queued or twice or sids_differ or len(messages) != len(run.ids))
    ok = ok and not run.timed_out and not run.failed_jobs
    run.sent_once = (
        ok,
        f"{len(run.ids)} texts: {len(run.ids) - not_queued} queued with a SID in the database, "
        f"{len(messages)} accepted by phonesim, numbers texted twice {twice}, SIDs "
        f"{'DIFFER from' if sids_differ else 'match'} the database; failed jobs "
        f"{run.failed_jobs}{'; TIMED OUT' if run.timed_out else ''}",
    )


def measure_baseline(
    run: Run, texts: Texts, redis: Redis, env: dict[str, str], logs: Path, timeout: float
) -> None:
    run.ids, run.phones = texts.prepare(run.count)
    for index in range(run.workers):
        share = run.ids[index :: run.workers]
        if share:
            redis.rpush(SHARE.format(index), *share)
    commands = [
        f"{sys.executable} -c 'from bench.sms_pacing import send_unpaced; send_unpaced({n})'"
        for n in range(run.workers)
    ]
    processes = Processes(commands, env, logs, f"unpaced-{run.workers}x")
    try:
        ready = wait_for(
            lambda: redis.llen(READY) >= run.workers, processes, "the senders", timeout=120
        )
        if not ready:
            raise SystemExit(f"the senders did not start:\n{processes.tails()}")
        load = [os.getloadavg()[0]]
        redis.rpush(GO, *range(run.workers))
        deadline = time.monotonic() + timeout
        while any(process.poll() is None for process in processes.processes):
            if time.monotonic() > deadline:
                run.timed_out = True
                break
            time.sleep(0.1)
        load.append(os.getloadavg()[0])
        run.load = (min(load), max(load))
        if any(process.returncode for process in processes.processes):
            raise SystemExit(f"a sender failed:\n{processes.tails()}")
    finally:
        processes.stop()


def measure_paced(
    run: Run,
    texts: Texts,
    redis: Redis,
    runtime: Runtime,
    env: dict[str, str],
    logs: Path,
    timeout: float,
) -> None:
    assert run.mps is not None
    run.ids, run.phones = texts.prepare(run.count)
    command = WORKER_COMMAND.format(redis_url=env["REDIS_URL"])
    workers = Processes(
        [command] * run.workers,
        {**env, "MESSAGES_PER_SECOND": f"{run.mps:g}"},
        logs,
        f"worker-{run.workers}x-{run.mps:g}mps",
    )
    lock = RQScheduler.get_locking_key(MESSAGE_QUEUE)
    try:
        ready = wait_for(
            lambda: len(Worker.all(connection=redis)) >= run.workers and redis.exists(lock),
            workers,
            "the workers",
            timeout=120,
        )
        if not ready:
            raise SystemExit(f"the workers did not start:\n{workers.tails()}")
        load = [os.getloadavg()[0]]
        queue_texts(runtime, run.ids)
        deadline = time.monotonic() + timeout
        while unsent(runtime.db, run.ids):
            workers.check_alive("the workers")
            if time.monotonic() > deadline:
                run.timed_out = True
                break
            load.append(os.getloadavg()[0])
            time.sleep(0.25)
        load.append(os.getloadavg()[0])
        run.load = (min(load), max(load))
    finally:
        workers.stop()
    # The last admission of each text (a text sent again after a transient error has two).
    seen: set[str] = set()
    for entry in redis.lrange(ADMITTED, 0, -1):
        message_id, started_at, pid = entry.decode().split()
        run.admitted.append(float(started_at))
        run.admitted_by_text[int(message_id)] = float(started_at)
        if pid not in seen:
            seen.add(pid)
            run.cold.add(int(message_id))
    run.handed_back = int(redis.get(HANDED_BACK) or 0)
    run.failed_jobs = FailedJobRegistry(MESSAGE_QUEUE, connection=redis).count


# -- reporting -------------------------------------------------------------------------------


def print_table(baselines: dict[int, Run], runs: list[Run]) -> None:
    print(
        "\nbaseline (unpaced): sms.sender.send, no pacing, no rq; texts/s from the first "
        "acceptance at phonesim to the last"
    )
    print(f"{'':7}{'workers':>8}{'texts':>6}{'seconds':>8}{'texts/s':>8}{'load':>9}")
    for run in baselines.values():
        load = f"{run.load[0]:.1f}-{run.load[1]:.1f}"
        print(f"{'unpaced':7}{run.workers:>8}{len(run.accepted):>6}{run.seconds:>8.2f}"
              f"{run.rate:>8.1f}{load:>9}")  # fmt: skip
    print(
        "\npaced: sms.jobs.send_text on rq workers at MESSAGES_PER_SECOND (mps)\n"
        "  held: texts / (first to last acceptance at phonesim + one window); ceiling: the "
        "baseline with as many processes\n"
        "  most in 1 s: admitted (Redis's clock: never over the limit) / accepted at "
        "phonesim / accepted, warm (but each worker's first text)\n"
        "  lag: acceptance at phonesim - admission, ms: median / max / max warm; handed "
        "back: waits for a slot given up after 2 s (the job rescheduled)"
    )
    print(f"{'':7}{'mps':>5}{'workers':>8}{'texts':>6}{'seconds':>8}{'held/s':>8}"
          f"{'held/limit':>11}{'ceiling/s':>10}{'limit/ceiling':>14}{'held/ceiling':>13}"
          f"{'most in 1 s':>14}{'lag':>16}{'handed back':>12}{'load':>9}")  # fmt: skip
    for run in runs:
        assert run.mps is not None
        base = baselines.get(run.workers)
        ceiling = base.rate if base is not None else float("nan")
        warm = [t for n, t in run.accepted_by_text.items() if n not in run.cold]
        peaks = (
            f"{max_in_any_window(run.admitted)} / {max_in_any_window(run.accepted)} / "
            f"{max_in_any_window(warm)}"
        )
        lags, warm_lags = run.lags(), run.lags(warm=True)
        lag = (
            f"{statistics.median(lags) * 1000:.0f} / {max(lags) * 1000:.0f} / "
            f"{max(warm_lags, default=float('nan')) * 1000:.0f}"
            if lags
            else "n/a"
        )
        load = f"{run.load[0]:.1f}-{run.load[1]:.1f}"
        print(f"{'paced':7}{run.mps:>5g}{run.workers:>8}{len(run.accepted):>6}"
              f"{run.seconds:>8.2f}{run.rate:>8.3f}{run.rate / run.mps:>11.3f}{ceiling:>10.1f}"
              f"{run.mps / ceiling:>14.3f}{run.rate / ceiling:>13.3f}{peaks:>14}{lag:>16}"
              f"{run.handed_back:>12}{load:>9}")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--mps", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--texts", type=int, help="texts per paced run")
    count.add_argument(
        "--seconds", type=float, default=25.0, help="else MPS x seconds texts per paced run"
    )
    parser.add_argument("--baseline-texts", type=int, default=300, help="per worker count")
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the SMS pacing benchmark runs against PostgreSQL")
    if min(args.workers) < 1 or min(args.mps) <= 0 or args.baseline_texts < 2:
        raise SystemExit("workers at least 1, MPS above 0, --baseline-texts at least 2")
    return args


def measure(args: argparse.Namespace) -> tuple[dict[int, Run], list[Run]]:
    """The baselines (by worker count), then the paced runs."""
    logs = Path(tempfile.mkdtemp(prefix="sms-pacing-"))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # phonesim's request log
    reset(args.database_url)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=WallClock(), host=HOST)
    network.start()
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        **PRODUCTION,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "TWILIO_API_BASE": network.api_base,
        "PYTHONPATH": python_path,
    }
    runtime = runtime_from_settings(Settings.from_env(env))
    texts = Texts(runtime)
    print(
        f"texts per paced run: {args.texts or f'MPS x {args.seconds:g} s'}; baseline "
        f"{args.baseline_texts} texts; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} before the run; logs: {logs}"
    )
    baselines: dict[int, Run] = {}
    runs: list[Run] = []
    try:
        for workers in args.workers:
            run = Run(workers, None, args.baseline_texts)
            measure_baseline(run, texts, redis, env, logs, args.timeout)
            check_sent_once(run, runtime.db, network)
            baselines[workers] = run
            redis.flushdb()
        for mps in args.mps:
            _, limit = window_and_limit(mps)
            n = args.texts or max(2, math.ceil(mps * args.seconds))
            n = limit * math.ceil(n / limit)
            for workers in args.workers:
                run = Run(workers, mps, n)
                measure_paced(run, texts, redis, runtime, env, logs, args.timeout)
                check_sent_once(run, runtime.db, network)
                runs.append(run)
                redis.flushdb()
    finally:
        network.stop()
        runtime.db.dispose()
    return baselines, runs


def report(baselines: dict[int, Run], runs: list[Run]) -> bool:
    """Prints the table and the checks; whether every check held."""
    print_table(baselines, runs)
    ok = True
    print()
    for run in [*baselines.values(), *runs]:
        pacing = "unpaced" if run.mps is None else f"{run.mps:g} mps"
        label = f"{run.workers} worker(s), {pacing}"
        sent, summary = run.sent_once
        ok &= sent
        print(f"sent exactly once ({label}): {'yes' if sent else 'NO'}: {summary}")
    for run in runs:
        peak = max_in_any_window(run.admitted, run.window)
        held = peak <= run.limit
        ok &= held
        print(f"limit held ({run.workers} worker(s), {run.mps:g} mps): "
              f"{'yes' if held else 'NO'}: {len(run.admitted)} admissions, most in any "
              f"{run.window:g} s window {peak} (limit {run.limit})")  # fmt: skip
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    return ok


def main(argv: list[str] | None = None) -> int:
    return 0 if report(*measure(parse_args(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
