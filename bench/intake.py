"""Intake throughput: finished calls per second through the batch API and CSV import.

Both paths run the full intake (validation, phone parsing, every dialing rule, the
insert, and queueing the rq job) against a fresh database. The baseline, measured in
the same run on the same database, is a bare bulk INSERT of the same number of request
rows: the storage ceiling that intake's rules and checks are measured against.

    python -m bench.intake --count 100000                       # SQLite, fakeredis
    python -m bench.intake --count 100000 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/bench \\
        --redis-url redis://127.0.0.1:6390/0
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from bench.fresh_database import reset
from core.apikeys import create_key
from core.config import Settings
from core.db import Database
from core.models import SurveyRequest
from core.runtime import Runtime
from core.survey import SurveyCatalog
from dialer.csv_import import import_calls, read_calls_file

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # a Monday, inside US calling hours
AREA_CODES = ("415", "212", "312", "617", "206", "303", "404", "512", "602", "702", "713")
BATCH = 1000


def phones(count: int, offset: int) -> list[str]:
    numbers = []
    for i in range(offset, offset + count):
        area = AREA_CODES[i // 10_000 % len(AREA_CODES)]
        numbers.append(f"+1{area}555{i % 10_000:04d}")
    return numbers


def calls(prefix: str, count: int, offset: int) -> list[dict]:
    ended = (NOW - timedelta(minutes=20)).isoformat()
    return [
        {"phone": phone, "source_call_id": f"{prefix}-{i}", "agent": f"agent-{i % 40}",
         "queue": "billing", "team": "north", "language": "en", "ended_at": ended}
        for i, phone in enumerate(phones(count, offset))
    ]  # fmt: skip


def runtime_for(url: str, redis_url: str | None) -> Runtime:
    from fakeredis import FakeRedis
    from redis import Redis

    settings = Settings(
        database_url=url, twilio_auth_token="bench", twilio_account_sid="AC" + "0" * 32
    )
    redis = Redis.from_url(redis_url) if redis_url else FakeRedis()
    redis.flushdb()
    return Runtime(
        wiring=PROCESS_WIRING,
        settings=settings,
        db=Database(url),
        catalog=SurveyCatalog.from_directory(settings.surveys_dir),
        _redis=redis,
        now=lambda: NOW,
    )


def bench_baseline(url: str, count: int) -> float:
    rows = [
        {"phone": c["phone"], "source_call_id": c["source_call_id"], "agent": c["agent"],
         "queue": c["queue"], "team": c["team"], "language": "en", "call_ended_at": NOW,
         "extra": {}, "survey_name": "post-call", "state": "scheduled", "due_at": NOW,
         "created_at": NOW, "updated_at": NOW}
        for c in calls("base", count, 0)
    ]  # fmt: skip
    db = Database(url)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        with db.session() as session:
            session.execute(insert(SurveyRequest), rows[start : start + BATCH])
    elapsed = time.perf_counter() - started
    db.dispose()
    return count / elapsed


def bench_api(url: str, redis_url: str | None, count: int) -> float:
    runtime = runtime_for(url, redis_url)
    app = create_app(runtime=runtime)
    with runtime.db.session() as session:
        key = create_key(session, "bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    items = calls("api", count, 0)
    accepted = 0
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        reply = client.post(
            "/api/v1/survey-requests", json={"requests": items[start : start + BATCH]},
            headers=headers,
        )  # fmt: skip
        assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
        accepted += reply.get_json()["accepted"]
    elapsed = time.perf_counter() - started
    assert accepted == count, f"only {accepted} of {count} accepted"
    runtime.db.dispose()
    return count / elapsed


def bench_csv(url: str, redis_url: str | None, count: int, folder: Path) -> float:
    runtime = runtime_for(url, redis_url)
    path = folder / "calls.csv"
    items = calls("csv", count, 0)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(items[0]))
        writer.writeheader()
        writer.writerows(items)
    started = time.perf_counter()
    report = import_calls(runtime, read_calls_file(path))
    elapsed = time.perf_counter() - started
    accepted = sum(1 for row in report.rows if row.result.accepted)
    assert accepted == count, f"only {accepted} of {count} accepted"
    runtime.db.dispose()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        redis_url = args.redis_url or None
        figures = {}
        for name, run in (
            ("baseline bulk INSERT", lambda: bench_baseline(url, args.count)),
            ("batch API (1,000 per request)", lambda: bench_api(url, redis_url, args.count)),
            ("CSV import", lambda: bench_csv(url, redis_url, args.count, Path(folder))),
        ):
            reset(url)
            figures[name] = run()

    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    queue = "redis" if redis_url else "fakeredis"
    print(f"intake of {args.count:,} calls on {backend} ({queue})")
    baseline = figures["baseline bulk INSERT"]
    for name, rate in figures.items():
        print(f"  {name:<32} {rate:>9,.0f} calls/s   {rate / baseline:6.3f} x baseline")


if __name__ == "__main__":
    main()
