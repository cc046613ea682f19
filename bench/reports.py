"""Report speed on realistic volumes: a generator, then the queries supervisors run.

Fills a fresh database with a year of survey requests and answers (2,000 agents in 100
teams and 20 queues; per request NPS, CSAT for most, a comment for some detractors) and
times, on the same data:
  - the headline report (no grouping) for the last 90 days,
  - the per-agent report for the last 90 days,
  - the per-agent-per-day report for the last 30 days (60,000 groups), and the same
    written as CSV (every row's figures read, as the CLI and the API do),
  - the detractor list (first page),
each as the median of a few runs. The baseline, measured in the same run, is a bare
`SELECT count(*)` over the answers of the same 90 days: the cost of touching the rows
at all, which the report queries are compared against.

    python -m bench.reports --answers 1000000                       # SQLite file
    python -m bench.reports --answers 1000000 --database-url sqlite:////tmp/reports1m.db
    python -m bench.reports --answers 10000000 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text

from bench.fresh_database import reset
from core.db import Database, one_off_session
from core.models import Answer, SurveyRequest, User
from scoring import rollup
from scoring.detractors import detractors
from scoring.formats import to_csv
from scoring.report import ReportQuery, report

END = datetime(2026, 11, 23, tzinfo=UTC)
DAYS = 365
AGENTS, TEAMS, QUEUES = 2000, 100, 20
ANSWERS_PER_REQUEST = 2.2  # NPS always, CSAT for 90%, a comment for some detractors
ZONE = ZoneInfo("America/New_York")


def generate(url: str, answers: int, seed: int = 7) -> tuple[int, int]:
    """Insert about `answers` answers; returns (requests, answers) inserted."""
    rng = random.Random(seed)
    requests = int(answers / ANSWERS_PER_REQUEST)
    engine = create_engine(url)
    with engine.begin() as connection:
        version_id = connection.execute(
            text(
                "INSERT INTO survey_versions (survey_name, version, content_sha256, definition,"
                " source_path, created_at) VALUES ('post-call', 1, 'bench', '{}', '', :now)"
                + (" RETURNING id" if engine.dialect.name == "postgresql" else "")
            ),
            {"now": END},
        )
        version_id = version_id.scalar() if engine.dialect.name == "postgresql" else 1
    request_rows, attempt_rows, answer_rows = [], [], []
    made = 0
    for request_id in range(1, requests + 1):
        agent = rng.randrange(AGENTS)
        ended = END - timedelta(seconds=rng.randrange(DAYS * 86400))
        request_rows.append(
            (request_id, f"+1415{request_id:07d}", f"b-{request_id}", f"agent-{agent:04d}",
             f"queue-{agent % QUEUES:02d}", f"team-{agent % TEAMS:03d}", "en", ended,
             json.dumps({"product": rng.choice(["fiber", "mobile", "tv"])}), "post-call",
             version_id, "completed", ended + timedelta(minutes=5), ended, ended, 1)
        )  # fmt: skip
        attempt_rows.append((request_id, request_id, 1, "completed", ended))
        # The request's report fields, copied onto each answer as the product does.
        copied = (ended, f"agent-{agent:04d}", f"queue-{agent % QUEUES:02d}",
                  f"team-{agent % TEAMS:03d}", "post-call", "en")  # fmt: skip
        nps = min(10, max(0, int(rng.gauss(7.5, 2.5))))
        answer_rows.append(
            (request_id, request_id, version_id, "nps", "nps", nps, str(nps), None, ended, *copied)
        )
        made += 1
        if rng.random() < 0.9:
            csat = min(5, max(1, int(rng.gauss(3.9, 1.1))))
            answer_rows.append(
                (
                    request_id,
                    request_id,
                    version_id,
                    "csat",
                    "csat",
                    csat,
                    str(csat),
                    None,
                    ended,
                    *copied,
                )
            )
            made += 1
        if nps <= 6 and rng.random() < 0.6:
            answer_rows.append((request_id, request_id, version_id, "improve", "comment", None, "#",
                                f"https://api.twilio.com/Recordings/RE{request_id}", ended,
                                *copied))  # fmt: skip
            made += 1
        if len(request_rows) >= 50_000:
            _flush(engine, request_rows, attempt_rows, answer_rows)
    _flush(engine, request_rows, attempt_rows, answer_rows)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for table in ("survey_requests", "call_attempts", "answers"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )
            connection.execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    return requests, made


REQUEST_COLUMNS = ("id, phone, source_call_id, agent, queue, team, language, call_ended_at, "
                   "metadata, survey_name, survey_version_id, state, due_at, created_at, updated_at, "
                   "calls_placed")  # fmt: skip
ATTEMPT_COLUMNS = "id, request_id, number, status, created_at"
ANSWER_COLUMNS = ("request_id, attempt_id, survey_version_id, question_key, kind, value, keys, "
                  "recording_url, received_at, call_ended_at, agent, queue, team, survey_name, "
                  "language")  # fmt: skip


def _flush(engine, requests: list, attempts: list, answers: list) -> None:
    if not requests:
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            # A bulk load, as a migration from another tool would be: no per-statement
            # rollup triggers (or foreign key checks); the rollup is rebuilt afterwards.
            cursor.execute("SET session_replication_role = replica")
            for table, columns, rows in (
                ("survey_requests", REQUEST_COLUMNS, requests),
                ("call_attempts", ATTEMPT_COLUMNS, attempts),
                ("answers", ANSWER_COLUMNS, answers),
            ):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            naive = [_sqlite_row(row) for row in requests]
            cursor.executemany(
                f"INSERT INTO survey_requests ({REQUEST_COLUMNS}) VALUES ({','.join('?' * 16)})",
                naive,
            )
            cursor.executemany(f"INSERT INTO call_attempts ({ATTEMPT_COLUMNS}) VALUES (?,?,?,?,?)",
                               [_sqlite_row(row) for row in attempts])  # fmt: skip
            cursor.executemany(f"INSERT INTO answers ({ANSWER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                               [_sqlite_row(row) for row in answers])  # fmt: skip
        raw.commit()
    finally:
        raw.close()
    requests.clear()
    attempts.clear()
    answers.clear()


def _sqlite_row(row: tuple) -> tuple:
    # The same text form SQLAlchemy writes for naive UTC datetimes on SQLite.
    return tuple(
        v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
        for v in row
    )


def dashboard_page(url: str) -> Callable[[], object]:
    """GET /dashboard for the last 30 days, signed in, through the real Flask app."""
    import re

    from aftercall.web import create_app
    from core.config import Settings
    from core.users import create_user

    settings = Settings(database_url=url, report_time_zone=ZONE.key)
    app = create_app(settings)
    runtime = app.extensions["aftercall"]
    runtime.now = lambda: END
    with runtime.db.session() as session:
        if session.scalar(select(User).where(User.username == "bench")) is None:
            create_user(session, "bench", "bench-password-1234", role="supervisor")
    client = app.test_client()
    login = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": "bench", "password": "bench-password-1234"},
    )
    since = (END - timedelta(days=30)).date().isoformat()
    until = (END - timedelta(days=1)).date().isoformat()

    def get() -> None:
        response = client.get(f"/dashboard?since={since}&until={until}&unit=day")
        assert response.status_code == 200, response.status_code

    return get


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(url: str, repeat: int) -> dict[str, float]:
    db = Database(url)
    # Supervisors ask for whole local days: the range ends at the local midnight before END.
    end = datetime.combine(END.astimezone(ZONE).date(), datetime.min.time(), ZONE)
    since90, since30 = end - timedelta(days=90), end - timedelta(days=30)

    def baseline() -> None:
        with db.session() as session:
            session.scalar(
                select(func.count(Answer.id))
                .join(Answer.request)
                .where(SurveyRequest.call_ended_at >= since90, SurveyRequest.call_ended_at < end)
            )

    def run(query: ReportQuery) -> Callable[[], object]:
        def go() -> None:
            with db.session() as session:
                report(session, query)

        return go

    def detractor_page() -> None:
        with db.session() as session:
            detractors(session, ReportQuery(since=since90, until=end, time_zone=ZONE))

    def without_rollup(query: ReportQuery) -> Callable[[], object]:
        def go() -> None:
            real = rollup.covers
            rollup.covers = lambda *args: False
            try:
                run(query)()
            finally:
                rollup.covers = real

        return go

    def as_csv(query: ReportQuery) -> Callable[[], object]:
        def go() -> None:
            with db.session() as session:
                to_csv(report(session, query), query.by)

        return go

    page = dashboard_page(url)
    per_agent = ReportQuery(by=("agent",), since=since90, until=end, time_zone=ZONE)
    per_agent_day = ReportQuery(by=("agent", "day"), since=since30, until=end, time_zone=ZONE)
    figures = {
        "baseline count(*) of 90 days of answers": median_seconds(baseline, repeat),
        "headline report, 90 days": median_seconds(
            run(ReportQuery(since=since90, until=end, time_zone=ZONE)), repeat
        ),
        "per-agent report, 90 days": median_seconds(run(per_agent), repeat),
        "per-agent report, 90 days, no rollup": median_seconds(without_rollup(per_agent), repeat),
        "per-agent-per-day report, 30 days": median_seconds(run(per_agent_day), repeat),
        "per-agent-per-day report, 30 days, CSV": median_seconds(as_csv(per_agent_day), repeat),
        "detractor list, first page": median_seconds(detractor_page, repeat),
        "dashboard page, 30 days by day (HTTP)": median_seconds(page, repeat),
    }
    db.dispose()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the data a previous run left in --database-url, without reloading",
    )
    args = parser.parse_args(argv)
    if args.measure_only:
        _print(measure(args.database_url, args.repeat))
        return
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'reports.db'}"
        backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        for answers in args.answers:
            reset(url)
            started = time.perf_counter()
            requests, made = generate(url, answers)
            loaded = time.perf_counter() - started
            print(f"{backend}: {made:,} answers, {requests:,} requests (loaded in {loaded:.0f} s)")
            started = time.perf_counter()
            with one_off_session(url) as session:
                if rollup.switch_on(session, ZONE):
                    print(f"  rollup built in {time.perf_counter() - started:.1f} s")
            _print(measure(url, args.repeat))


def _print(figures: dict[str, float]) -> None:
    baseline = figures["baseline count(*) of 90 days of answers"]
    for name, seconds in figures.items():
        print(f"  {name:<42} {seconds * 1000:9.1f} ms   {seconds / baseline:6.2f} x baseline")


if __name__ == "__main__":
    main()
