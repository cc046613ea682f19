"""The follow-ups page's speed (issue 18): "the dashboard page of follow-ups stays under
300 ms with 100,000 follow-ups on PostgreSQL".

Fills a fresh, migrated database with N follow-ups, each with its survey request, call
attempt and answers (NPS, CSAT for most, a recorded comment for some), spread over a
year, 2,000 agents in 100 teams, owned by each team's lead (15% unassigned). Those
opened in the last week are mostly open; older ones mostly closed, with a backlog of
about 8% still open long past due. Loaded with COPY on PostgreSQL (triggers and
foreign-key checks off for the load, as bench.reports does; the rollup is not built:
the page does not read it), executemany on SQLite.

Then times, through the real Flask app (the Flask test client, so no network and no
server's workers are measured), signed in as an admin and as a supervisor who leads
one team (team-007, whose follow-ups they own):

  - GET /dashboard/follow-ups, each preset a user clicks: an admin's own open ones
    (the default), all open, all overdue, one team's open, everything; a supervisor's
    own open ones and all open ones of their team;
  - scoring.follow_up_figures alone (no HTTP): an admin's figures by team with their
    total (`with_total`), over every follow-up and over the last 30 days, and a
    supervisor's total;

each as the median and 95th percentile of --repeat requests after two to warm up. The
baseline, measured in the same run, is the sign-in page (GET /dashboard/login, signed
out): a page the same app renders that reads nothing from the database, so the ratio is
what the follow-ups cost beyond serving a page at all.

    python -m bench.follow_ups_page --follow-ups 100000 --repeat 50 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_fubench \\
        --redis-url redis://127.0.0.1:6390/13

Localhost only. It resets the database it is given (unless --measure-only).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, text

from aftercall.web import create_app
from bench.fresh_database import reset
from core.config import Settings
from core.db import Database
from core.models import FollowUp, User
from core.users import create_user
from scoring.follow_up_figures import total, with_total
from scoring.follow_ups import OPEN, Viewer, set_teams, visible

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # the app's clock while measuring
DAYS = 365
AGENTS, TEAMS, QUEUES = 2000, 100, 20
SLA = timedelta(hours=48)
ADMIN, LEAD, PASSWORD = "bench-admin", "lead-007", "bench-password-1234"
LED_TEAM = "team-007"
TARGET_MS = 300.0
PAGE = "/dashboard/follow-ups"


def generate(url: str, follow_ups: int, seed: int = 18) -> dict[str, int]:
    """Insert `follow_ups` follow-ups and what they hang on; returns counts by kind."""
    rng = random.Random(seed)
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        inserted = connection.execute(
            text(
                "INSERT INTO survey_versions (survey_name, version, content_sha256, definition,"
                " source_path, created_at) VALUES ('post-call', 1, 'bench', '{}', '', :now)"
                + (" RETURNING id" if postgres else "")
            ),
            {"now": END},
        )
        version_id = inserted.scalar() if postgres else 1
    batch = Batch()
    counts = {"requests": 0, "answers": 0, "open": 0, "overdue": 0}
    for n in range(1, follow_ups + 1):
        agent = rng.randrange(AGENTS)
        team = f"team-{agent % TEAMS:03d}"
        opened = END - timedelta(seconds=rng.randrange(DAYS * 86400))
        ended = opened - timedelta(minutes=rng.randrange(5, 90))
        report_fields = (ended, f"agent-{agent:04d}", f"queue-{agent % QUEUES:02d}", team,
                         "post-call", "en")  # fmt: skip
        batch.requests.append(
            (n, f"+1415{n:07d}", f"fu-{n}", f"agent-{agent:04d}", f"queue-{agent % QUEUES:02d}",
             team, "en", ended, "{}", "post-call", version_id, "completed",
             ended + timedelta(minutes=5), ended, ended, 1)
        )  # fmt: skip
        batch.attempts.append((n, n, 1, "completed", ended))
        nps = rng.randrange(0, 7)  # a detractor: what opens a follow-up by default
        batch.answers.append(
            (n, n, version_id, "nps", "nps", nps, str(nps), None, ended, *report_fields)
        )
        if rng.random() < 0.9:
            csat = rng.randrange(1, 6)
            batch.answers.append(
                (n, n, version_id, "csat", "csat", csat, str(csat), None, ended, *report_fields)
            )
        if rng.random() < 0.4:
            batch.answers.append((n, n, version_id, "improve", "comment", None, "#",
                                  f"https://api.twilio.com/Recordings/RE{n}", ended,
                                  *report_fields))  # fmt: skip
        status = _status(rng, END - opened)
        contacted = closed = None
        if status != "new":
            contacted = opened + timedelta(hours=rng.expovariate(1 / 8))
        if status in ("resolved", "wont_fix"):
            closed = contacted + timedelta(hours=rng.expovariate(1 / 24))
        owner = None if rng.random() < 0.15 else f"lead-{agent % TEAMS:03d}"
        batch.follow_ups.append(
            (n, n, "post-call", f"agent-{agent:04d}", f"queue-{agent % QUEUES:02d}", team,
             False, f"nps {nps} <= 6", owner, status, opened, opened + SLA, contacted, closed,
             closed or contacted or opened, owner or "system")
        )  # fmt: skip
        counts["open"] += status in OPEN
        counts["overdue"] += status in OPEN and opened + SLA < END
        if len(batch.requests) >= 20_000:
            counts["requests"] += len(batch.requests)
            counts["answers"] += len(batch.answers)
            batch.flush(engine)
    counts["requests"] += len(batch.requests)
    counts["answers"] += len(batch.answers)
    batch.flush(engine)
    with engine.begin() as connection:
        if postgres:
            for table in ("survey_requests", "call_attempts", "answers", "follow_ups"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return counts


def _status(rng: random.Random, age: timedelta) -> str:
    """Recent follow-ups are mostly still open; old ones mostly closed, some left open
    long past due (the backlog the overdue view is for)."""
    weights = (50, 30, 15, 5) if age < timedelta(days=7) else (4, 4, 80, 12)
    return rng.choices(("new", "contacted", "resolved", "wont_fix"), weights)[0]


REQUEST_COLUMNS = ("id, phone, source_call_id, agent, queue, team, language, call_ended_at, "
                   "metadata, survey_name, survey_version_id, state, due_at, created_at, "
                   "updated_at, calls_placed")  # fmt: skip
ATTEMPT_COLUMNS = "id, request_id, number, status, created_at"
ANSWER_COLUMNS = ("request_id, attempt_id, survey_version_id, question_key, kind, value, keys, "
                  "recording_url, received_at, call_ended_at, agent, queue, team, survey_name, "
                  "language")  # fmt: skip
FOLLOW_UP_COLUMNS = ("id, request_id, survey_name, agent, queue, team, is_test, reason, owner, "
                     "status, opened_at, due_at, first_contacted_at, closed_at, changed_at, "
                     "changed_by")  # fmt: skip


@dataclass
class Batch:
    """Rows waiting to be written, table by table, in the order foreign keys need."""

    requests: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    follow_ups: list[tuple[Any, ...]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
        return [
            ("survey_requests", REQUEST_COLUMNS, self.requests),
            ("call_attempts", ATTEMPT_COLUMNS, self.attempts),
            ("answers", ANSWER_COLUMNS, self.answers),
            ("follow_ups", FOLLOW_UP_COLUMNS, self.follow_ups),
        ]

    def flush(self, engine: Any) -> None:
        if not self.requests:
            return
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if engine.dialect.name == "postgresql":
                # A bulk load: no per-statement rollup triggers, no foreign-key checks.
                cursor.execute("SET session_replication_role = replica")
                for table, columns, rows in self.tables():
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            else:
                for table, columns, rows in self.tables():
                    marks = ",".join("?" * len(columns.split(",")))
                    cursor.executemany(
                        f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                        [_sqlite_row(row) for row in rows],
                    )
            raw.commit()
        finally:
            raw.close()
        for _table, _columns, rows in self.tables():
            rows.clear()


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # The text form SQLAlchemy writes for the UTC datetimes core.db stores on SQLite.
    return tuple(
        v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
        for v in row
    )


# -- measuring ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p95_ms: float


def timed(run: Callable[[], object], repeat: int) -> Timing:
    """Median and 95th percentile (nearest rank) of `repeat` runs, after two warm-ups
    (the first compiles statements and templates, which no later request pays)."""
    for _ in range(2):
        run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return Timing(statistics.median(times), p95)


def add_users(db: Database) -> None:
    """An admin, and a supervisor who leads LED_TEAM (and owns its follow-ups)."""
    with db.session() as session:
        for name, role in ((ADMIN, "admin"), (LEAD, "supervisor")):
            if session.scalar(select(User.id).where(User.username == name)) is None:
                create_user(session, name, PASSWORD, role)
        lead = session.scalar(select(User.id).where(User.username == LEAD))
        set_teams(session, lead, [LED_TEAM])


def signed_in(client: FlaskClient, username: str) -> FlaskClient:
    login = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    response = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
    )
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {username}: {response.status_code}")
    return client


def page(client: FlaskClient, query: str) -> Callable[[], object]:
    url = f"{PAGE}?{query}" if query else PAGE

    def get() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url}: {response.status_code}")

    return get


def check_the_page_counts(admin: FlaskClient, db: Database, everyone: Any) -> None:
    """Before timing: the overdue view lists as many follow-ups as figures() counts
    overdue, so what is timed is the page at work, not an empty or an error page."""
    with db.session() as session:
        overdue = total(session, visible=everyone, now=END).overdue
    html = admin.get(f"{PAGE}?status=open&owner=&overdue=1").get_data(as_text=True)
    heading = re.search(r"<h2>\s*([\d,]+) follow-ups?", html)
    if heading is None:
        print("the page's count of follow-ups was not found: not compared")
        return
    listed = int(heading.group(1).replace(",", ""))
    if listed != overdue:
        raise SystemExit(f"the page lists {listed} overdue follow-ups, figures() counts {overdue}")
    print(f"the page lists as many overdue as figures() counts: yes ({overdue:,})")


def measure(url: str, repeat: int, redis_url: str | None) -> dict[str, Timing]:
    settings = Settings(database_url=url, **({"redis_url": redis_url} if redis_url else {}))
    app = create_app(settings)
    runtime = app.extensions["aftercall"]
    runtime.now = lambda: END
    add_users(runtime.db)
    admin = signed_in(app.test_client(), ADMIN)
    lead = signed_in(app.test_client(), LEAD)
    signed_out = app.test_client()

    def sign_in_page() -> None:
        if signed_out.get("/dashboard/login").status_code != 200:
            raise SystemExit("GET /dashboard/login failed")

    everyone = visible(Viewer(ADMIN, "admin"))
    their_team = visible(Viewer(LEAD, "supervisor", frozenset({LED_TEAM})))

    def admin_figures(since: datetime | None) -> Callable[[], object]:
        def run() -> None:
            with runtime.db.session() as session:
                with_total(session, ("team",), visible=everyone, now=END, since=since)

        return run

    def lead_figures() -> None:
        with runtime.db.session() as session:
            total(session, visible=their_team, now=END)

    check_the_page_counts(admin, runtime.db, everyone)
    cases: dict[str, Callable[[], object]] = {
        "baseline: sign-in page, signed out": sign_in_page,
        "admin: my open (the default)": page(admin, ""),
        "admin: all open": page(admin, "status=open&owner="),
        "admin: all overdue": page(admin, "status=open&owner=&overdue=1"),
        f"admin: {LED_TEAM}'s open": page(admin, f"status=open&owner=&team={LED_TEAM}"),
        "admin: everything, any status": page(admin, "status=&owner="),
        "admin: everything, page 40": page(admin, "status=&owner=&page=40"),
        "supervisor: my open (the default)": page(lead, ""),
        "supervisor: all open of my team": page(lead, "status=open&owner="),
        "figures(): admin, by team + total": admin_figures(None),
        "figures(): admin, by team + total, 30 d": admin_figures(END - timedelta(days=30)),
        "figures(): supervisor, total": lead_figures,
    }
    return {name: timed(run, repeat) for name, run in cases.items()}


def report(timings: dict[str, Timing]) -> bool:
    """Print each case against the baseline; True when every page met the target."""
    baseline = timings["baseline: sign-in page, signed out"]
    met = True
    print(f"  {'':<40} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}")
    for name, timing in timings.items():
        ratio = timing.median_ms / baseline.median_ms
        verdict = ""
        if name.startswith(("admin:", "supervisor:")):
            ok = timing.p95_ms < TARGET_MS
            met = met and ok
            verdict = f"  {'under' if ok else 'OVER'} {TARGET_MS:.0f} ms"
        print(f"  {name:<40} {timing.median_ms:10.1f} {timing.p95_ms:8.1f} {ratio:10.1f}x{verdict}")
    print(f"every page's p95 under {TARGET_MS:.0f} ms: {'yes' if met else 'no'}")
    return met


def loaded(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count(FollowUp.id)))
    engine.dispose()
    return count or 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follow-ups", type=int, default=100_000)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure what a previous run left in --database-url, without reloading",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'follow_ups.db'}"
        backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        if not args.measure_only:
            reset(url)
            started = time.perf_counter()
            counts = generate(url, args.follow_ups)
            print(
                f"{backend}: {args.follow_ups:,} follow-ups ({counts['open']:,} open, "
                f"{counts['overdue']:,} overdue), {counts['requests']:,} requests, "
                f"{counts['answers']:,} answers (loaded in {time.perf_counter() - started:.1f} s)"
            )
        else:
            print(f"{backend}: {loaded(url):,} follow-ups already loaded")
        met = report(measure(url, args.repeat, args.redis_url))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
