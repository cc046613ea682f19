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
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from rq import Queue, SimpleWorker
from sqlalchemy import select

from aftercall import migrate
from aftercall.config import Settings
from aftercall.db import Database
from aftercall.models import CallAttempt, RequestState, SurveyRequest
from aftercall.runtime import Runtime, use_worker_runtime
from aftercall.survey import SurveyCatalog
from aftercall.web import create_app
from dialer import scheduling
from dialer.intake import CallEnded, accept_calls
from scoring.alerts import ALERT_QUEUE
from scoring.report import ReportQuery, ReportRow, outcomes, report

DEMO_ACCOUNT_SID = "AC" + "d" * 32
DEMO_AUTH_TOKEN = "demo-auth-token"
DEMO_DATABASE_FILE = "aftercall-demo.db"

AGENTS = (("alice", "billing", "north"), ("bob", "billing", "north"),
          ("carol", "tech", "south"), ("dave", "tech", "south"))  # fmt: skip
# (number prefix, digits to draw, language): US English and Spanish speakers, Poland.
NUMBER_PLANS = (("+1415555", 4, "en"), ("+1212555", 4, "en"), ("+1312555", 4, "es"),
                ("+4860", 7, "pl"))  # fmt: skip


@dataclass(frozen=True)
class DemoResult:
    outcomes: dict[RequestState, int]
    agents: list[ReportRow]
    rejected: int
    sample_transcript: list[str]


def demo_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    if not env.get("DATABASE_URL"):
        Path(DEMO_DATABASE_FILE).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(DEMO_DATABASE_FILE + suffix).unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{DEMO_DATABASE_FILE}"
    env.update(
        TWILIO_ACCOUNT_SID=DEMO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=DEMO_AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+14155550100",
        CALLBACK_NUMBER=env.get("CALLBACK_NUMBER") or "+18005550100",
        AFTERCALL_ENV="development",
        # The network is simulated: pace like a large account so the demo is quick.
        CALLS_PER_SECOND=env.get("CALLS_PER_SECOND") or "200",
    )
    return Settings.from_env(env)


def finished_support_calls(count: int, seed: int, now: datetime) -> Iterator[CallEnded]:
    rng = random.Random(seed)
    run = now.strftime("%Y%m%d%H%M%S")
    for index in range(count):
        prefix, digits, language = rng.choice(NUMBER_PLANS)
        suffix = "01" + "".join(rng.choices("0123456789", k=digits - 2)) if digits == 4 else (
            "".join(rng.choices("0123456789", k=digits))
        )  # fmt: skip
        agent, queue, team = rng.choice(AGENTS)
        yield CallEnded(
            phone=prefix + suffix,
            source_call_id=f"demo-{seed}-{run}-{index:05d}",
            ended_at=now - timedelta(minutes=rng.randint(5, 90)),
            agent=agent,
            queue=queue,
            team=team,
            language=language,
            metadata={"channel": "voice", "demo": True},
        )


class LateBoundApp:
    """A WSGI app set after its server is up: the app needs the server's address."""

    app: Any = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.app(environ, start_response)


@contextmanager
def simulated_deployment(
    settings: Settings, seed: int, start: datetime
) -> Iterator[tuple[Runtime, Any]]:
    """The app on a local port, talking to an in-process phone network, with the
    dialer's clock and the network's clock one and the same simulated clock."""
    from fakeredis import FakeRedis

    from phonesim import BackgroundServer, PhoneNetwork, SimClock

    # One access-log line per webhook would bury the demo's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    clock = SimClock(start)
    network = PhoneNetwork(
        settings.twilio_account_sid, settings.twilio_auth_token, clock=clock, seed=seed
    )
    network.start()
    late_app = LateBoundApp()
    server = BackgroundServer(late_app).start()
    redis = None if os.environ.get("REDIS_URL") else FakeRedis()
    runtime = Runtime(
        settings=settings.with_overrides(
            public_base_url=server.base_url, twilio_api_base=network.api_base
        ),
        db=Database(settings.database_url),
        catalog=SurveyCatalog.from_directory(settings.surveys_dir),
        _redis=redis,
        now=clock.now,
    )
    late_app.app = create_app(runtime=runtime)
    use_worker_runtime(runtime)
    try:
        yield runtime, network
    finally:
        use_worker_runtime(None)
        server.stop()
        network.stop()
        runtime.db.dispose()


def demo_start_time(today: date) -> datetime:
    """18:00 UTC on the next weekday: inside calling hours from California to Poland."""
    day = today
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(18, 0), tzinfo=UTC)


def run_demo(
    calls: int, seed: int, settings: Settings, progress: Callable[[int], None] = lambda n: None
) -> DemoResult:
    """Import `calls` finished support calls and run the campaign to its end.

    The dialer really runs: requests go through intake and its rules, rq jobs are
    scheduled for their due times, an in-process rq worker places the calls through
    the Twilio SDK, status webhooks hand attempts back for retries. Only time is
    simulated: the loop moves the shared clock to the next scheduled job and releases
    the jobs that are due, which is what rq's scheduler does in real time.
    """
    migrate.upgrade(settings.database_url)
    start = demo_start_time(datetime.now(UTC).date())
    with simulated_deployment(settings, seed, start) as (runtime, network):
        results = accept_calls(runtime, finished_support_calls(calls, seed, start))
        rejected = sum(1 for r in results if r.request_id is None)
        accepted = [r.request_id for r in results if r.accepted]
        progress(calls - len(accepted))
        queue = runtime.call_queue
        alerts = Queue(ALERT_QUEUE, connection=runtime.redis)
        worker = SimpleWorker([queue, alerts], connection=runtime.redis)
        settled: set[int] = set()
        while True:
            scheduling.release_due_jobs(queue, network.clock.now())
            worker.work(burst=True, logging_level="WARNING")
            network.run_until_idle(timeout=max(60.0, calls * 2.0))
            worker.work(burst=True, logging_level="WARNING")
            newly = _settled(runtime, accepted) - settled
            progress(len(newly))
            settled |= newly
            next_due = scheduling.next_scheduled_time(queue)
            if next_due is None:
                break
            if next_due > network.clock.now():
                network.clock.set(next_due)
        transcript = _first_completed_transcript(runtime, network)
        with runtime.db.session() as session:
            return DemoResult(
                outcomes(session), report(session, ReportQuery(by=("agent",))), rejected, transcript
            )


def _settled(runtime: Runtime, request_ids: list[int]) -> set[int]:
    waiting = (RequestState.SCHEDULED, RequestState.CALLING, RequestState.IN_PROGRESS)
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
    return [line for _, _, line in sorted(events, key=lambda e: (e[0], e[1]))]
