"""The placement's count of calls in flight reads only the calls in flight.

Every placement runs it inside the lock all workers share; over the whole call history
it took 0.2-0.3 s at a million attempts (bench.dialer_throughput), which would cap the
deployment at a few calls a second. The partial index ix_call_attempts_in_flight holds
only the calls not yet over, and the count must be able to use it on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, text

from core.models import IN_FLIGHT_STATUSES, CallAttempt, RequestState, SurveyRequest
from dialer.placement import calls_in_flight

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _history(session, ended: int, live: int) -> None:
    requests = session.execute(
        insert(SurveyRequest).returning(SurveyRequest.id),
        [
            {
                "phone": f"+1415555{i:04d}",
                "source_call_id": f"history-{i}",
                "call_ended_at": NOW,
                "survey_name": "post-call",
                "state": RequestState.COMPLETED,
            }
            for i in range(ended + live)
        ],
    ).scalars()
    session.execute(
        insert(CallAttempt),
        [
            {
                "request_id": request_id,
                "number": 1,
                "status": "completed" if i < ended else IN_FLIGHT_STATUSES[i % 4],
                "created_at": NOW,
            }
            for i, request_id in enumerate(requests)
        ],
    )


def test_the_count_of_calls_in_flight_is_right_and_reads_the_partial_index(runtime):
    with runtime.db.session() as session:
        _history(session, ended=3000, live=7)
        assert session.scalar(calls_in_flight(NOW)) == 7
        compiled = str(
            calls_in_flight(NOW).compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        )
    with runtime.db.engine.connect() as connection:
        if runtime.db.engine.dialect.name == "sqlite":
            connection.execute(text("ANALYZE"))
            plan = "\n".join(
                row[3] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
        else:
            connection.execute(text("ANALYZE call_attempts"))
            plan = "\n".join(connection.scalars(text(f"EXPLAIN {compiled}")))
    assert "ix_call_attempts_in_flight" in plan, plan
