"""Intake throughput: finished calls per second through the batch API and CSV import.

Both paths run the full intake (validation, phone parsing, every dialing rule, the
insert, and handing the accepted requests to the call queue) against a fresh database.
The baseline, measured in the same run on the same database, is a bare bulk INSERT of
the same number of request rows: the storage ceiling that intake's rules and checks are
measured against. A bulk batch's call jobs are built by a worker after intake answered
(dialer.scheduling.enqueue_first_calls); the bench runs those jobs too, in this process,
and prints their time apart, since it is off the caller's path but not free.

    python -m bench.intake --count 100000                       # SQLite, fakeredis
    python -m bench.intake --count 100000 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/bench \\
        --redis-url redis://127.0.0.1:6390/0

`--memory 100000 1000000` instead imports CSV files of each size, each in a fresh
process, and prints the peak resident memory of each: flat means the big file takes
about what the small one does.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rq.registry import ScheduledJobRegistry
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
from dialer.scheduling import CALL_QUEUE, QUEUE_FIRST_CALLS, queue_first_calls

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # a Monday, inside US calling hours
AREA_CODES = ("415", "212", "312", "617", "206", "303", "404", "512", "602", "702", "713")
BATCH = 1000


def phone_number(i: int) -> str:
    """A distinct valid US number for each i below 9,000,000 (no N11 exchanges)."""
    block = i // 10_000
    exchange = 555 if block < len(AREA_CODES) else 220 + block // len(AREA_CODES)
    return f"+1{AREA_CODES[block % len(AREA_CODES)]}{exchange}{i % 10_000:04d}"


def phones(count: int, offset: int) -> list[str]:
    return [phone_number(i) for i in range(offset, offset + count)]


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


def run_queued_call_jobs(runtime: Runtime) -> float:
    """What the workers do after a bulk intake: build the call jobs intake handed them
    (dialer.scheduling.queue_first_calls), here in this process. Returns the seconds."""
    queue = runtime.queue(CALL_QUEUE)
    started = time.perf_counter()
    queued = 0
    for job in queue.get_jobs():
        if job.func_name == QUEUE_FIRST_CALLS:
            queued += queue_first_calls(runtime, *job.args)
            job.delete()
    elapsed = time.perf_counter() - started
    assert ScheduledJobRegistry(queue=queue).count >= queued
    return elapsed


def bench_api(url: str, redis_url: str | None, count: int) -> tuple[float, float]:
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
    worker = run_queued_call_jobs(runtime)
    runtime.db.dispose()
    return count / elapsed, worker


def write_csv(path: Path, count: int) -> None:
    """A call log of `count` rows, written a row at a time."""
    ended = (NOW - timedelta(minutes=20)).isoformat()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["phone", "source_call_id", "agent", "queue", "team", "language", "ended_at"]
        )
        for i in range(count):
            writer.writerow(
                [phone_number(i), f"csv-{i}", f"agent-{i % 40}", "billing", "north", "en", ended]
            )


def bench_csv(url: str, redis_url: str | None, count: int, folder: Path) -> tuple[float, float]:
    runtime = runtime_for(url, redis_url)
    path = folder / "calls.csv"
    write_csv(path, count)
    started = time.perf_counter()
    report = import_calls(runtime, read_calls_file(path))
    elapsed = time.perf_counter() - started
    assert report.accepted == count, f"only {report.accepted} of {count} accepted"
    worker = run_queued_call_jobs(runtime)
    runtime.db.dispose()
    return count / elapsed, worker


def peak_memory_of_import(url: str, path: str) -> tuple[int, int]:
    """In a fresh process: import the CSV file; (rows accepted, peak RSS in KiB)."""
    runtime = runtime_for(url, None)
    report = import_calls(runtime, read_calls_file(Path(path)))
    runtime.db.dispose()
    return report.accepted, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_memory(sizes: list[int], url_for: Callable[[Path, int], str]) -> None:
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        print("CSV import, each file in a fresh process (fakeredis)")
        first = None
        for count in sizes:
            path = Path(folder) / f"calls-{count}.csv"
            write_csv(path, count)
            url = url_for(Path(folder), count)
            reset(url)
            started = time.perf_counter()
            with context.Pool(1) as pool:
                accepted, peak = pool.apply(peak_memory_of_import, (url, str(path)))
            elapsed = time.perf_counter() - started
            assert accepted == count, f"only {accepted} of {count} accepted"
            first = first or peak
            print(f"  {count:>9,} rows ({path.stat().st_size / 1e6:,.0f} MB): {elapsed:6.1f} s, "
                  f"peak RSS {peak / 1024:7.1f} MiB ({peak / first:.2f} x the first)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--memory", type=int, nargs="+", metavar="ROWS")
    args = parser.parse_args(argv)

    if args.memory:
        bench_memory(
            args.memory,
            lambda folder, count: args.database_url or f"sqlite:///{folder / f'mem-{count}.db'}",
        )
        return
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        redis_url = args.redis_url or None
        figures: dict[str, float] = {}
        workers: dict[str, float] = {}
        reset(url)
        figures["baseline bulk INSERT"] = bench_baseline(url, args.count)
        reset(url)
        figures["batch API (1,000 per request)"], workers["batch API"] = bench_api(
            url, redis_url, args.count
        )
        reset(url)
        figures["CSV import"], workers["CSV import"] = bench_csv(
            url, redis_url, args.count, Path(folder)
        )

    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    queue = "redis" if redis_url else "fakeredis"
    print(f"intake of {args.count:,} calls on {backend} ({queue})")
    baseline = figures["baseline bulk INSERT"]
    for name, rate in figures.items():
        print(f"  {name:<32} {rate:>9,.0f} calls/s   {rate / baseline:6.3f} x baseline"
              f"   {args.count / rate:6.1f} s")  # fmt: skip
    for name, seconds in workers.items():
        print(f"  then the workers' call jobs after {name}: {seconds:.1f} s "
              f"({args.count / seconds if seconds else 0:,.0f} jobs/s, off the caller's path)")  # fmt: skip


if __name__ == "__main__":
    main()
