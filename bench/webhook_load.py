"""Webhook load: the NPS answer webhook under gunicorn and PostgreSQL, against a bare endpoint.

Serves the real app with the Procfile's `web` command (same gunicorn worker model,
`WEB_CONCURRENCY` workers) and production settings from the environment, and next to
it a bare Flask app (`bench.constant_twiml`, same command) that returns constant TwiML:
the ceiling of the stack on this machine, and a third server of that bare app whose
endpoint also INSERTs the post's digit (`/stored`): the floor of any webhook that
stores the answer before it replies. All get the same signed Twilio posts over
loopback from a generator in separate processes (`bench.load_generator`):

- open loop: `--rate` requests per second for `--seconds`, latency measured from each
  request's scheduled send time (so queueing is never hidden);
- closed loop: `--concurrency` connections back to back for at most `--closed-requests`
  requests or `--closed-seconds`: the maximum throughput.

Every answer webhook is a new answer: the database is reset and migrated, a history of
surveys answered before is seeded (`--history`, `seed_history()`: the planner then sees
a deployment's tables, not empty ones), and one survey request with an in-progress call
attempt per request the run will send, so each post stores a real row (no
redeliveries). A reply counts as an error
unless it is a 200 with the TwiML expected (for the answer webhook: the CSAT question
next). Afterwards every answer the server acknowledged must be in the database exactly
once, with the digit that was pressed.

A reply that has not come 15 s after it was due (`--timeout`: Twilio's own limit for a
voice webhook) is an error and is given up on, so every run ends; posts given up on may
still be stored once the server gets to them, and the database check counts those apart.
gunicorn's sync worker (the Procfile's) closes the connection after every response, so
the generator's keep-alive does not apply: each post opens a connection, as Twilio's do.

Localhost only, and bounded: at most rate x seconds + closed-requests (+ warm-up) posts
per server, each run at most its duration plus the timeout (and the time the server
takes to work off what it had queued). Prints, per run and server: posts sent,
acknowledged and failed, acknowledged posts/s, latency percentiles, the generator's own
lateness, the load average and CPU time per post (gunicorn's, PostgreSQL's, the
generator's and the whole machine's); then the answer-webhook / bare and floor / bare
ratios, the database check and whether issue 6's target was met.

    python -m bench.webhook_load                       # 500/s for 20 s, then closed loop
    python -m bench.webhook_load --rate 100 --seconds 5 --closed-requests 500
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from redis import Redis
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from bench.constant_twiml import CREATE_FLOOR_TABLE
from bench.fresh_database import reset
from bench.load_generator import DEFAULT_TIMEOUT_SECONDS, Outcome, drive, http_request
from bench.proc_cpu import group_cpu_seconds, machine_cpu_seconds, process_cpu_seconds
from core.config import DEFAULT_SURVEYS_DIR
from core.db import Database
from core.models import (
    AlertOutbox,
    Answer,
    CallAttempt,
    RequestState,
    SurveyRequest,
    SurveyVersion,
)
from core.survey import SurveyCatalog, SurveyDefinition
from core.survey_versions import version_for
from dialer.chunking import chunks
from ivr.calls import LiveCall
from ivr.twiml import CallUrls

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6390/6"
HOST = "127.0.0.1"

# Production settings for the served app (AFTERCALL_ENV=production refuses to start
# without each of them). Detractor alerts are on, so detractor answers write their alert
# outbox row as in production; no worker drains it, so nothing is posted to the
# (unroutable) URL.
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"
PUBLIC_BASE_URL = "https://surveys.example.test"
FROM_NUMBER = "+15005550006"
PRODUCTION = {
    "AFTERCALL_ENV": "production",
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": FROM_NUMBER,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "COMPANY_NAME": "Acme Support",
    "CALLBACK_NUMBER": "+18005550100",
    "SECRET_KEY": "bench-secret-key",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
    "ALERT_WEBHOOK_SECRET": "bench-alert-secret",
}
THE_APP = '"aftercall.web:create_app()"'
# The bare app's second endpoint: the bare endpoint plus one INSERT (bench.constant_twiml).
STORED_FLOOR = "stored floor"
BARE_APP = '"bench.constant_twiml:create_app()"'
# Keys pressed for NPS, in turn: 3 detractors (6, 5, 2) in 10. Never "1", which is a
# first key (1 or 10) rather than an answer.
NPS_KEYS = "9998877652"
SURVEY = "post-call"
# Issue 6: p99 under 50 ms at 500 posts/s, and at least half the bare endpoint's throughput.
TARGET_RATE = 500.0
TARGET_P99_SECONDS = 0.050
ENDED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# Surveys answered before a run (seed_history): 20,000 requests, 40,000 answers.
HISTORY = 20_000
# Rows a seeding INSERT writes at once.
SEED_CHUNK = 5000


@dataclass(frozen=True)
class SeededCall:
    request_id: int
    attempt_id: int
    call_sid: str
    phone: str
    ref: str  # how the question webhooks' URLs name the call (ivr.calls.LiveCall.ref)


@dataclass(frozen=True)
class Post:
    raw: bytes
    call: SeededCall | None
    digits: str


# -- the database -------------------------------------------------------------------


def seed_calls(url: str, count: int, history: int = 0) -> list[SeededCall]:
    """`count` survey requests, each with a call attempt in progress on the NPS question,
    after `history` surveys answered before (`seed_history()`)."""
    db = Database(url)
    definition = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get(SURVEY)
    seeded: list[SeededCall] = []
    with db.session() as session:
        version = version_for(session, definition)
        seed_history(session, version.id, history)
        for numbers in chunks(list(range(count)), SEED_CHUNK):
            seeded += [
                SeededCall(
                    request_id, attempt_id, sid, phone, _ref(request_id, version, definition)
                )
                for phone, request_id, attempt_id, sid in _requests_with_attempts(
                    session, version.id, numbers, source="load", in_progress=True
                )
            ]
    # Statistics and the visibility map for the rows just written, so that the run's plans
    # see them and autovacuum does not start on them halfway through a measurement.
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    db.dispose()
    return seeded


def seed_history(session: Session, version_id: int, count: int) -> None:
    """`count` surveys answered before the run (an NPS and a CSAT answer each): the
    tables of a deployment that has been running, as the planner's statistics see them.
    On empty tables PostgreSQL plans a prepared statement's lookup of a request's answers
    as a scan of the whole table (cheapest while it is empty), keeps that plan for the
    connection, and the run then pays more for every answer stored before it, until
    autovacuum's next ANALYZE: a figure that grew during a run and with the run's length."""
    for numbers in chunks(list(range(count)), SEED_CHUNK):
        calls = _requests_with_attempts(
            session, version_id, numbers, source="history", in_progress=False
        )
        session.execute(
            insert(Answer),
            [
                {"request_id": request_id, "attempt_id": attempt_id, "call_ended_at": ENDED_AT,
                 "agent": f"agent-{n % 40}", "queue": "billing", "team": "north",
                 "survey_name": SURVEY, "language": "en", "survey_version_id": version_id,
                 "question_key": key, "kind": key, "value": value, "keys": str(value),
                 "received_at": ENDED_AT}
                for n, (_, request_id, attempt_id, _) in zip(numbers, calls, strict=True)
                for key, value in (("nps", n % 11), ("csat", 1 + n % 5))
            ],
        )  # fmt: skip


def _requests_with_attempts(
    session: Session, version_id: int, numbers: list[int], *, source: str, in_progress: bool
) -> list[tuple[str, int, int, str]]:
    """A survey request and its first call attempt for each number, in progress on the NPS
    question or (history) completed: (phone, request id, attempt id, CallSid) each.
    `source` names the requests' source calls ("load-7"), and keeps the two sets' phone
    numbers apart."""
    first_phone = 5_000_000 if source == "load" else 6_000_000
    phones = [f"+1415{first_phone + n:07d}" for n in numbers]
    state = RequestState.IN_PROGRESS if in_progress else RequestState.COMPLETED
    request_ids = session.scalars(
        insert(SurveyRequest).returning(SurveyRequest.id, sort_by_parameter_order=True),
        [
            {"phone": phone, "source_call_id": f"{source}-{n}", "agent": f"agent-{n % 40}",
             "queue": "billing", "team": "north", "language": "en",
             "call_ended_at": ENDED_AT, "extra": {}, "survey_name": SURVEY,
             "survey_version_id": version_id, "state": state, "calls_placed": 1}
            for n, phone in zip(numbers, phones, strict=True)
        ],
    ).all()  # fmt: skip
    sids = [f"CA{request_id:032x}" for request_id in request_ids]
    attempt_ids = session.scalars(
        insert(CallAttempt).returning(CallAttempt.id, sort_by_parameter_order=True),
        [
            {"request_id": request_id, "number": 1, "call_sid": sid,
             "status": "in-progress" if in_progress else "completed", "answered_by": "human",
             "started_at": ENDED_AT, "answered_at": ENDED_AT,
             "ended_at": None if in_progress else ENDED_AT}
            for request_id, sid in zip(request_ids, sids, strict=True)
        ],
    ).all()  # fmt: skip
    return list(zip(phones, request_ids, attempt_ids, sids, strict=True))


def _ref(request_id: int, version: SurveyVersion, definition: SurveyDefinition) -> str:
    call = LiveCall(
        attempt_id=0, call_sid="", request_id=request_id, survey_version_id=version.id,
        version_digest=version.content_sha256, language="en", definition=definition,
    )  # fmt: skip
    return call.ref


def create_floor_table(url: str) -> None:
    """The table the bare app's /stored endpoint writes to (bench.constant_twiml)."""
    db = Database(url)
    with db.engine.begin() as connection:
        connection.exec_driver_sql(CREATE_FLOOR_TABLE)
    db.dispose()


def alerts_owed(url: str) -> int:
    """The alert outbox's rows: one per request whose answer owes a detractor alert."""
    db = Database(url)
    with db.session() as session:
        owed = session.scalar(select(func.count()).select_from(AlertOutbox))
    db.dispose()
    return owed or 0


def stored_nps(url: str) -> dict[int, list[int | None]]:
    """The NPS values stored per request during the run (not the seeded history's)."""
    db = Database(url)
    with db.session() as session:
        rows = session.execute(
            select(Answer.request_id, func.array_agg(Answer.value))
            .join(SurveyRequest, SurveyRequest.id == Answer.request_id)
            .where(Answer.question_key == "nps", SurveyRequest.source_call_id.like("load-%"))
            .group_by(Answer.request_id)
        ).all()
    db.dispose()
    return {request_id: values for request_id, values in rows}


# -- the posts ------------------------------------------------------------------------


def answer_form(call: SeededCall, digits: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Twilio's post of a Gather result for the NPS question, to the URL the start
    webhook's TwiML gives it, signed as Twilio signs it: the path, the form and the
    headers."""
    path = CallUrls(f"/voice/attempts/{call.attempt_id}", ref=call.ref).question("nps", 1)
    params = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call.call_sid,
        "CallStatus": "in-progress", "Called": call.phone, "Caller": FROM_NUMBER,
        "Digits": digits, "Direction": "outbound-api", "FinishedOnKey": "",
        "From": FROM_NUMBER, "To": call.phone, "msg": "Gather End",
    }  # fmt: skip
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": signature,
    }
    return path, params, headers


def answer_post(call: SeededCall, digits: str, host: str) -> Post:
    path, params, headers = answer_form(call, digits)
    raw = http_request("POST", path, host, urlencode(params).encode(), headers)
    return Post(raw, call, digits)


def bare_post(template: Post, path: bytes = b"/twiml") -> Post:
    """The same post (headers and body), to the bare endpoint (or its floor, /stored)."""
    head, body = template.raw.split(b"\r\n", 1)
    method, _, version = head.split(b" ")
    return Post(b" ".join([method, path, version]) + b"\r\n" + body, None, "")


def acknowledged(post: Post, outcome: Outcome) -> bool:
    """A 200 with the TwiML that follows: for an NPS answer, the CSAT question."""
    if outcome.status != 200:
        return False
    try:
        root = ET.fromstring(outcome.body)
    except ET.ParseError:
        return False
    if root.tag != "Response":
        return False
    if post.call is None:
        return root.find("./Say") is not None
    gather = root.find("./Gather")
    base = f"{PUBLIC_BASE_URL}/voice/attempts/{post.call.attempt_id}"
    expected = CallUrls(base, ref=post.call.ref).question("csat", 1)
    return gather is not None and gather.get("action") == expected


def production_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {**PRODUCTION, "DATABASE_URL": database_url, "REDIS_URL": redis_url}


# -- the servers ------------------------------------------------------------------------


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web: "):
            return line.removeprefix("web: ")
    raise SystemExit("Procfile has no web process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """The Procfile's web command, serving `app` on a free port until stopped."""

    def __init__(
        self, name: str, app: str, probe: tuple[str, str], env: dict[str, str], logs: Path
    ) -> None:
        command = procfile_web()
        if THE_APP not in command:
            raise SystemExit(f"Procfile web line does not serve {THE_APP}: {command}")
        self.name = name
        self.probe = probe  # (method, path): a request that gets a 200 when served
        self.command = command.replace(THE_APP, app)
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", f"exec {self.command}"], env=self.env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_until_ready(self, timeout: float = 600.0) -> None:
        """Until the probe gets a 200: the server is up, and (after a run) has worked
        through what was still queued in front of the probe."""
        method, path = self.probe
        deadline = time.monotonic() + timeout
        while True:
            try:
                request = urllib.request.Request(
                    f"http://{HOST}:{self.port}{path}",
                    method=method,
                    data=b"" if method == "POST" else None,
                )
                with urllib.request.urlopen(request, timeout=timeout) as reply:
                    if reply.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name} server did not answer {method} {path}:\n{tail}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the gunicorn master and its workers."""
        return group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


# -- measuring ----------------------------------------------------------------------------


def database_cpu_seconds(url: str) -> dict[int, float]:
    """CPU time so far of each PostgreSQL backend connected to the load database (by
    pid; the server must be on this machine): what the database spends on the posts,
    apart from its background writers, which other databases on the server share."""
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            pids = connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        database.dispose()
    return {pid: process_cpu_seconds(pid) for pid in pids}


@dataclass
class Figures:
    sent: int
    ok: int
    errors: int
    duration: float  # start to the last reply
    rate: float  # acknowledged replies per second over `duration`
    p50: float
    p95: float
    p99: float
    max: float
    lag_p99: float  # open loop: how late the generator wrote (not the server's fault)
    acked: list[tuple[Post, Outcome]]
    error_kinds: dict[str, int]
    load: float  # the machine's 1-minute load average when the run started
    cpu_per_post: float = float("nan")  # gunicorn's CPU seconds per post sent
    db_cpu_per_post: float = float("nan")  # the load database's PostgreSQL backends'
    machine_cpu_per_post: float = float("nan")  # every process's, the generator's included
    generator_cpu_per_post: float = float("nan")  # the load generator processes'


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(
    port: int,
    posts: list[Post],
    *,
    rate: float,
    concurrency: int,
    seconds: float,
    processes: int,
    timeout: float,
) -> Figures:
    load = os.getloadavg()[0]
    # The generator runs in child processes that have been reaped when drive() returns.
    generator_cpu = _children_cpu_seconds()
    outcomes, start = drive(
        HOST, port, [post.raw for post in posts], rate=rate, concurrency=concurrency,
        max_seconds=seconds, processes=processes, timeout=timeout,
    )  # fmt: skip
    generator_cpu = _children_cpu_seconds() - generator_cpu
    acked, error_kinds = [], {}
    for outcome in outcomes:
        post = posts[outcome.index]
        if acknowledged(post, outcome):
            acked.append((post, outcome))
        else:
            kind = outcome.error or f"HTTP {outcome.status}"
            if outcome.status == 200:
                kind = "unexpected TwiML"
            error_kinds[kind] = error_kinds.get(kind, 0) + 1
    latencies = sorted(o.latency for o in outcomes)
    lags = sorted(o.send_lag for o in outcomes)
    first = min((o.due for o in outcomes), default=start)
    duration = max((o.done for o in outcomes), default=first) - first
    return Figures(
        sent=len(outcomes), ok=len(acked), errors=len(outcomes) - len(acked),
        duration=duration, rate=len(acked) / duration if duration > 0 else 0.0,
        p50=percentile(latencies, 0.50), p95=percentile(latencies, 0.95),
        p99=percentile(latencies, 0.99), max=latencies[-1] if latencies else float("nan"),
        lag_p99=percentile(lags, 0.99), acked=acked, error_kinds=error_kinds, load=load,
        generator_cpu_per_post=generator_cpu / len(outcomes) if outcomes else float("nan"),
    )  # fmt: skip


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def print_table(title: str, rows: dict[str, Figures], lag: bool) -> None:
    print(f"\n{title}")
    header = f"{'':16}{'sent':>7}{'ok':>7}{'errors':>8}{'req/s':>9}"
    header += f"{'p50':>13}{'p95':>13}{'p99':>13}{'max':>13}"
    header += f"{'gen lag p99':>13}" if lag else ""
    print(header + f"{'load':>7}{'CPU/post':>10}{'db CPU':>10}{'gen CPU':>10}{'all CPU':>10}")
    for name, f in rows.items():
        line = f"{name:16}{f.sent:>7}{f.ok:>7}{f.errors:>8}{f.rate:>9.1f}"
        line += f"{ms(f.p50):>13}{ms(f.p95):>13}{ms(f.p99):>13}{ms(f.max):>13}"
        line += f"{ms(f.lag_p99):>13}" if lag else ""
        line += f"{f.load:>7.2f}{ms(f.cpu_per_post):>10}"
        line += f"{ms(f.db_cpu_per_post):>10}{ms(f.generator_cpu_per_post):>10}"
        print(line + f"{ms(f.machine_cpu_per_post):>10}")
        if f.error_kinds:
            print(f"{'':16}errors: {f.error_kinds}")
    bare, answer = rows["bare endpoint"], rows["answer webhook"]
    ratios = [f"req/s {answer.rate / bare.rate:.3f}" if bare.rate else "req/s n/a"]
    ratios += [
        f"{name} {getattr(answer, name) / getattr(bare, name):.1f}x"
        for name in ("p50", "p95", "p99")
        if getattr(bare, name) > 0
    ]
    # /proc counts CPU in clock ticks (10 ms): a tiny run's bare endpoint may show none.
    ratios.append(
        f"server CPU per post {answer.cpu_per_post / bare.cpu_per_post:.1f}x"
        if bare.cpu_per_post > 0
        else "server CPU per post n/a (too short a run to measure the bare endpoint)"
    )
    print(f"{'answer / bare':16}" + ", ".join(ratios))
    floor = rows.get(STORED_FLOOR)
    if floor is not None and bare.rate:
        print(
            f"{'floor / bare':16}req/s {floor.rate / bare.rate:.3f} (the bare endpoint plus one "
            "INSERT: what any webhook that stores the answer first can reach here)"
        )


def verify(
    url: str, acked: list[tuple[Post, Outcome]], sent: list[Post]
) -> tuple[bool, dict[int, list[int | None]]]:
    """Every acknowledged answer stored exactly once, with the digit pressed.
    Returns whether it was so, and the NPS values stored per request."""
    stored = stored_nps(url)
    acked_requests = {post.call.request_id: int(post.digits) for post, _ in acked}
    missing = [r for r in acked_requests if r not in stored]
    duplicated = [r for r, values in stored.items() if len(values) != 1]
    wrong = [r for r, d in acked_requests.items() if r in stored and stored[r] != [d]]
    sent_requests = {post.call.request_id for post in sent}
    unsent = [r for r in stored if r not in sent_requests]
    unacked = [r for r in stored if r in sent_requests and r not in acked_requests]
    print(
        f"\ndatabase: {len(acked_requests)} answers acknowledged, {len(stored)} stored; "
        f"missing {len(missing)}, stored more than once {len(duplicated)}, "
        f"wrong value {len(wrong)}, stored for a post never sent {len(unsent)}, "
        f"stored but the reply was an error or lost {len(unacked)}"
    )
    return not (missing or duplicated or wrong or unsent), stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[TARGET_RATE], help="open loop, posts/s"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="open loop duration")
    parser.add_argument("--closed-requests", type=int, default=5000)
    parser.add_argument("--closed-seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8, help="closed loop connections")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--warmup", type=int, default=200, help="posts per server first")
    parser.add_argument(
        "--history", type=int, default=HISTORY, help="surveys answered before the run"
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="give up on a reply this long after it was due (Twilio waits 15 s)",
    )
    parser.add_argument(
        "--web-concurrency",
        default=os.environ.get("WEB_CONCURRENCY", "2"),
        help="gunicorn workers (the Procfile's WEB_CONCURRENCY, default 2)",
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the webhook load test runs against PostgreSQL")

    # (phase, posts, how to drive them)
    phases: list[tuple[str, int, dict]] = [
        (
            "warm-up",
            args.warmup,
            {"rate": 0, "concurrency": 2, "seconds": 60, "processes": 1, "timeout": args.timeout},
        )
    ]
    for rate in args.rate:
        phases.append(
            (f"open {rate:g}/s", int(rate * args.seconds),
             {"rate": rate, "concurrency": 0, "seconds": args.seconds,
              "processes": args.processes, "timeout": args.timeout})
        )  # fmt: skip
    phases.append(
        ("closed", args.closed_requests,
         {"rate": 0, "concurrency": args.concurrency, "seconds": args.closed_seconds,
          "processes": args.processes, "timeout": args.timeout})
    )  # fmt: skip
    phases = [phase for phase in phases if phase[1] > 0]

    reset(args.database_url)
    Redis.from_url(args.redis_url).flushdb()
    calls = iter(seed_calls(args.database_url, sum(count for _, count, _ in phases), args.history))
    answer_posts = {
        phase: [answer_post(next(calls), NPS_KEYS[i % len(NPS_KEYS)], HOST) for i in range(count)]
        for phase, count, _ in phases
    }
    posts = {
        "bare endpoint": {phase: [bare_post(p) for p in ps] for phase, ps in answer_posts.items()},
        STORED_FLOOR: {
            phase: [bare_post(p, b"/stored") for p in ps] for phase, ps in answer_posts.items()
        },
        "answer webhook": answer_posts,
    }
    create_floor_table(args.database_url)
    env = {
        **os.environ,
        **production_env(args.database_url, args.redis_url),
        "WEB_CONCURRENCY": str(args.web_concurrency),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    print(f"web command (Procfile): {procfile_web()}")
    print(
        f"WEB_CONCURRENCY={args.web_concurrency}; open loop {', '.join(f'{r:g}' for r in args.rate)}"
        f" posts/s for {args.seconds:g} s each; closed loop {args.concurrency} connections for "
        f"{args.closed_requests} posts or {args.closed_seconds:g} s; {args.processes} generator "
        f"process(es); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run"
    )
    logs = Path(tempfile.mkdtemp(prefix="webhook-load-"))
    servers = {
        "bare endpoint": Server("bare", BARE_APP, ("POST", "/twiml"), env, logs),
        STORED_FLOOR: Server("floor", BARE_APP, ("POST", "/twiml"), env, logs),
        "answer webhook": Server("answer", THE_APP, ("GET", "/healthz"), env, logs),
    }
    acked: list[tuple[Post, Outcome]] = []
    results: dict[str, dict[str, Figures]] = {}
    try:
        for server in servers.values():
            server.wait_until_ready(timeout=60)
        for phase, _, how in phases:
            results[phase] = {}
            for name, server in servers.items():
                cpu, db_cpu = server.cpu_seconds(), database_cpu_seconds(args.database_url)
                machine_cpu = machine_cpu_seconds()
                figures = measure(server.port, posts[name][phase], **how)
                # Posts given up on may still be queued at the server: let it finish them
                # (they may store answers) before the next run or the database check.
                server.wait_until_ready()
                figures.machine_cpu_per_post = (machine_cpu_seconds() - machine_cpu) / figures.sent
                figures.cpu_per_post = (server.cpu_seconds() - cpu) / figures.sent
                db_after = database_cpu_seconds(args.database_url)
                figures.db_cpu_per_post = (
                    sum(seconds - db_cpu.get(pid, 0.0) for pid, seconds in db_after.items())
                    / figures.sent
                )
                results[phase][name] = figures
                if name == "answer webhook":
                    acked += figures.acked
                time.sleep(args.pause)
    finally:
        for server in servers.values():
            server.stop()

    for phase, count, how in phases:
        if phase == "warm-up":
            continue
        if how["rate"]:
            title = (
                f"{phase}: {count} posts offered over {args.seconds:g} s "
                "(latency from the scheduled send time)"
            )
        else:
            title = f"closed loop: {args.concurrency} connections back to back (latency from send)"
        print_table(title, results[phase], lag=bool(how["rate"]))
    sent = [post for phase_posts in answer_posts.values() for post in phase_posts]
    consistent, stored = verify(args.database_url, acked, sent)
    detractors = sum(1 for values in stored.values() if values[0] is not None and values[0] <= 6)
    owed = alerts_owed(args.database_url)
    print(f"detractor alerts owed (outbox rows): {owed} (detractor answers stored: {detractors})")
    print_target(results)
    print(f"server logs: {logs}")
    return 0 if consistent else 1


def print_target(results: dict[str, dict[str, Figures]]) -> None:
    at_target = results.get(f"open {TARGET_RATE:g}/s", {}).get("answer webhook")
    closed = results.get("closed")
    if at_target is None or closed is None:
        print(f"\ntarget not measured (needs --rate {TARGET_RATE:g} and a closed loop run)")
        return
    latency_met = (
        at_target.errors == 0
        and at_target.p99 < TARGET_P99_SECONDS
        and at_target.rate >= 0.98 * TARGET_RATE
    )
    throughput = closed["answer webhook"].rate / closed["bare endpoint"].rate
    print(
        f"\ntarget: p99 under {TARGET_P99_SECONDS * 1000:g} ms at {TARGET_RATE:g}/s with no "
        f"errors: {'met' if latency_met else 'NOT met'} (p99 {ms(at_target.p99)}, "
        f"{at_target.rate:.1f}/s acknowledged); at least half the bare endpoint's throughput: "
        f"{'met' if throughput >= 0.5 else 'NOT met'} ({throughput:.3f})"
    )


if __name__ == "__main__":
    sys.exit(main())
