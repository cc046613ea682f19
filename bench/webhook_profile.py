"""Where one NPS answer webhook spends its time: cProfile and SQL round trips, in process.

The same app, production settings, database and signed posts as `bench.webhook_load`,
but driven one post at a time through Flask's test client (no gunicorn, no network),
so that the profile shows the handler alone. Prints the time per post, the SQL
statements one post runs (and the share of the time spent waiting on them), and the
functions that take the most time.

    python -m bench.webhook_profile --posts 2000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import Counter

from redis import Redis
from sqlalchemy import event

from aftercall.web import create_app
from bench.fresh_database import reset
from bench.webhook_load import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    HISTORY,
    NPS_KEYS,
    answer_form,
    production_env,
    seed_calls,
)
from core.config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--history", type=int, default=HISTORY, help="surveys answered before the run"
    )
    parser.add_argument("--dump", help="also write the profile here, for pstats or snakeviz")
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="only the timed posts (no cProfile run): for comparing two versions of the code",
    )
    args = parser.parse_args(argv)

    reset(args.database_url)
    Redis.from_url(args.redis_url).flushdb()
    warmup = 100
    n = args.posts
    # Warm-up, then n posts timed plainly (SQL counted), then n more under cProfile.
    calls = seed_calls(args.database_url, warmup + (1 if args.no_profile else 2) * n, args.history)
    forms = [answer_form(call, NPS_KEYS[i % len(NPS_KEYS)]) for i, call in enumerate(calls)]
    app = create_app(Settings.from_env(production_env(args.database_url, args.redis_url)))
    engine = app.extensions["aftercall"].db.engine
    client = app.test_client()

    statements: Counter[str] = Counter()
    sql_seconds = 0.0
    profiling = False

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        nonlocal sql_seconds
        if profiling:
            return
        sql_seconds += time.perf_counter() - conn.info.pop("bench_started")
        statements[" ".join(statement.split())[:110]] += 1

    # Round trips that bypass the cursor events: the pool's pre-ping and the COMMIT.
    dialect_seconds: Counter[str] = Counter()

    def timed(name: str, method):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if not profiling:
                    dialect_seconds[name] += time.perf_counter() - started

        return run

    engine.dialect.do_ping = timed("pre-ping (BEGIN; SELECT 1)", engine.dialect.do_ping)
    engine.dialect.do_commit = timed("COMMIT", engine.dialect.do_commit)

    def post(form: tuple[str, dict[str, str], dict[str, str]]) -> None:
        path, params, headers = form
        reply = client.post(path, data=params, headers=headers)
        assert reply.status_code == 200 and b"questions/csat" in reply.data, reply.data

    for form in forms[:warmup]:
        post(form)
    statements.clear()
    dialect_seconds.clear()
    sql_seconds = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    for form in forms[warmup : warmup + n]:
        post(form)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(
        f"{n} posts in {elapsed:.2f} s, one at a time: {elapsed / n * 1000:.2f} ms per post, "
        f"of which {cpu / n * 1000:.2f} ms CPU in this process"
    )
    print(
        f"SQL: {sum(statements.values()) / n:.1f} statements per post, "
        f"{sql_seconds / n * 1000:.2f} ms per post in cursor.execute "
        f"({sql_seconds / elapsed:.0%} of the time)"
    )
    for statement, count in statements.most_common():
        print(f"  {count / n:5.2f} x  {statement}")
    for name, seconds in dialect_seconds.items():
        print(f"{name}: {seconds / n * 1000:.2f} ms per post ({seconds / elapsed:.0%} of the time)")
    if args.no_profile:
        return
    profiling = True
    # CPU time, not wall time: waiting for PostgreSQL is shown by the SQL figures above.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for form in forms[warmup + n :]:
        post(form)
    profile.disable()
    if args.dump:
        profile.dump_stats(args.dump)

    print(
        f"\nCPU seconds under cProfile (another {n} posts), the handler's steps by cumulative time:"
    )
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats(r"/(ivr|aftercall|scoring)/|rq/queue.py.*enqueue|request_validator", args.top)
    print(out.getvalue().split("filename:lineno(function)", 1)[-1])
    print("CPU seconds, everything, by own time:")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue().split("filename:lineno(function)", 1)[-1])


if __name__ == "__main__":
    main()
