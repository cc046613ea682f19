"""`aftercall demo`: a whole survey campaign on one machine with nothing else installed.

It wires the real product to aftercall's phone network simulator (the only product
code that imports phonesim): the Flask app serves Twilio's webhooks on a local port,
the Twilio SDK talks to the simulator, and simulated customers with a realistic mix of
behaviours answer, hang up, opt out, or never pick up. Finished support calls go in
through the dialer's intake and placement, exactly as in production, and the summary
at the end is read back from the database by scoring/.

The same seed gives the same campaign. With DATABASE_URL set the demo uses that
database; otherwise a fresh SQLite file, `aftercall-demo.db`, in the current folder.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aftercall import migrate
from aftercall.config import Settings
from aftercall.models import RequestState
from aftercall.runtime import Runtime
from aftercall.web import create_app
from dialer.intake import CallEnded, IntakeRejected, register_call
from dialer.placement import place_call
from scoring.summary import AgentScores, outcome_counts, scores_by_agent

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
    agents: list[AgentScores]
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


class _LateBoundApp:
    """A WSGI app set after its server is up: the app needs the server's address."""

    app: Any = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.app(environ, start_response)


@contextmanager
def simulated_deployment(settings: Settings, seed: int) -> Iterator[tuple[Runtime, Any]]:
    """The app on a local port, talking to an in-process phone network."""
    from phonesim import BackgroundServer, PhoneNetwork, SimClock

    # One access-log line per webhook would bury the demo's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    network = PhoneNetwork(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        clock=SimClock(datetime.now(UTC).replace(microsecond=0)),
        seed=seed,
    )
    network.start()
    late_app = _LateBoundApp()
    server = BackgroundServer(late_app).start()
    runtime = Runtime.from_settings(
        settings.with_overrides(public_base_url=server.base_url, twilio_api_base=network.api_base)
    )
    late_app.app = create_app(runtime=runtime)
    try:
        yield runtime, network
    finally:
        server.stop()
        network.stop()
        runtime.db.dispose()


def run_demo(
    calls: int, seed: int, settings: Settings, progress: Callable[[int], None] = lambda n: None
) -> DemoResult:
    migrate.upgrade(settings.database_url)
    rejected = 0
    first_sid = None
    with simulated_deployment(settings, seed) as (runtime, network):
        for ended in finished_support_calls(calls, seed, datetime.now(UTC)):
            try:
                with runtime.db.session() as session:
                    request = register_call(
                        session, runtime.catalog, ended, default_survey=settings.default_survey
                    )
                    session.flush()
                    request_id = request.id
            except IntakeRejected:
                rejected += 1
                progress(1)
                continue
            placed = place_call(runtime, request_id)
            first_sid = first_sid or (placed.call_sid if placed else None)
            progress(1)
        network.run_until_idle(timeout=max(60.0, calls * 2.0))
        transcript = _transcript(network.call(first_sid)) if first_sid else []
        with runtime.db.session() as session:
            return DemoResult(
                outcome_counts(session), scores_by_agent(session), rejected, transcript
            )


def _transcript(call: Any) -> list[str]:
    """What the customer heard and pressed, in order (simulated time)."""
    # A key and the prompt it led to share a simulated instant; the key came first.
    events = [(p.at, 1, f"  aftercall: {p.text}") for p in call.prompts if p.kind == "say"]
    events += [(k.at, 0, f"  customer presses {k.key}") for k in call.key_presses]
    return [line for _, _, line in sorted(events, key=lambda e: (e[0], e[1]))]
