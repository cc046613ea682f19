"""What the report rollup's triggers cost the call flow's writes (PostgreSQL).

The same sequence of small transactions, as the survey webhooks make them (store an
answer; move the request to its next state), timed with the rollup's triggers disabled
(the baseline) and enabled, in alternating blocks of calls in the same run on the same
database, so that whatever else the machine does falls on both alike:

    python -m bench.rollup_writes --requests 2000 \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/aftercall_bench
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from bench.fresh_database import reset
from core.db import Database
from core.models import Answer, CallAttempt, RequestState, SurveyRequest, SurveyVersion
from scoring import rollup

ENDED = datetime(2026, 11, 23, 15, tzinfo=UTC)


def seed(db: Database, first: int, count: int) -> list[tuple[int, int]]:
    """Requests in progress with one placed call each; returns (request, attempt) ids."""
    with db.session() as session:
        version = session.scalar(select(SurveyVersion.id))
        if version is None:
            version_row = SurveyVersion(survey_name="post-call", version=1,
                                        content_sha256="bench", definition={}, source_path="")  # fmt: skip
            session.add(version_row)
            session.flush()
        ids = []
        for i in range(first, first + count):
            request = SurveyRequest(
                phone=f"+1415{i:07d}", source_call_id=f"w-{i}", agent=f"agent-{i % 50}",
                queue="billing", team="north", language="en", survey_name="post-call",
                call_ended_at=ENDED - timedelta(minutes=i % 600), state=RequestState.IN_PROGRESS,
                calls_placed=1,
            )  # fmt: skip
            session.add(request)
            session.flush()
            attempt = CallAttempt(request_id=request.id, number=1, status="in-progress")
            session.add(attempt)
            session.flush()
            ids.append((request.id, attempt.id))
    return ids


def survey_calls(db: Database, calls: list[tuple[int, int]]) -> list[float]:
    """Per call: NPS and CSAT answers in their own transactions, then the outcome."""
    with db.session() as session:
        version = session.scalar(select(SurveyVersion.id))
    latencies = []
    for request_id, attempt_id in calls:
        for key, value in (("nps", 9), ("csat", 4)):
            started = time.perf_counter()
            with db.session() as session:
                session.add(Answer(request_id=request_id, attempt_id=attempt_id,
                                   survey_version_id=version, question_key=key, kind=key,
                                   value=value, keys=str(value)))  # fmt: skip
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        with db.session() as session:
            session.get(SurveyRequest, request_id).state = RequestState.COMPLETED
        latencies.append(time.perf_counter() - started)
    return latencies


BLOCK = 50  # calls per block; blocks alternate between the two modes


def set_triggers(db: Database, enabled: bool) -> None:
    action = "ENABLE" if enabled else "DISABLE"
    with db.session() as session:
        for table in ("survey_requests", "answers"):
            session.execute(text(f"ALTER TABLE {table} {action} TRIGGER USER"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    reset(args.database_url)
    db = Database(args.database_url)
    calls = seed(db, 0, args.requests)
    with db.session() as session:
        rollup.switch_on(session, ZoneInfo("America/New_York"))
    results: dict[str, list[float]] = {"triggers off": [], "triggers on": []}
    for number, start in enumerate(range(0, len(calls), BLOCK)):
        enabled = number % 2 == 1
        set_triggers(db, enabled)
        mode = "triggers on" if enabled else "triggers off"
        results[mode] += survey_calls(db, calls[start : start + BLOCK])
    set_triggers(db, True)
    base = statistics.mean(results["triggers off"])
    for name, latencies in results.items():
        latencies.sort()
        mean, p99 = statistics.mean(latencies), latencies[int(len(latencies) * 0.99)]
        print(f"{name:<12} {len(latencies):6d} transactions  mean {mean * 1000:6.2f} ms"
              f"  p99 {p99 * 1000:6.2f} ms  {mean / base:5.2f} x baseline")  # fmt: skip
    db.dispose()


if __name__ == "__main__":
    main()
