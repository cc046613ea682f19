"""Set-based intake (dialer.intake.accept_calls) on both databases: a batch is decided
row by row, stored in bulk, and reported in order; a bulk batch's call jobs are built
by a worker (dialer.scheduling.queue_first_calls)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from core.models import OptOut, RequestState, SurveyMode, SurveyRequest
from dialer import intake, scheduling
from dialer.intake import CallEnded, Rejection, accept_calls

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # Monday, 10:00 in California


@pytest.fixture
def runtime(runtime, redis_url):
    """The shared runtime on the test Redis (emptied), at a fixed time."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    return replace(runtime, now=lambda: NOW, _redis=redis)


def ended(number: int, **overrides) -> CallEnded:
    values = dict(
        phone=f"+1415555{number:04d}",
        source_call_id=f"crm-{number}",
        ended_at=NOW - timedelta(minutes=30),
        agent=f"agent-{number % 3}",
    )
    return CallEnded(**(values | overrides))


def stored(runtime) -> list[SurveyRequest]:
    with runtime.db.session() as session:
        rows = session.scalars(select(SurveyRequest).order_by(SurveyRequest.id)).all()
        session.expunge_all()
        return list(rows)


def test_one_bad_row_spoils_nothing_and_every_row_gets_its_own_result(runtime):
    with runtime.db.session() as session:
        session.add(OptOut(phone="+14155550004", source="api"))
    accept_calls(runtime, [ended(9)])  # sent before: comes back as a duplicate
    batch = [
        ended(1),
        ended(2, phone="not a number"),
        ended(3, survey="no-such-survey"),
        ended(9),  # stored by the earlier batch
        ended(4),  # on the do-not-call list: stored, suppressed
        ended(5),
        ended(5, phone="+14155550006"),  # the same source call twice in one batch
        ended(7, phone="+14155550001"),  # the number of the first call: under way
        ended(8, language="english!"),
    ]
    results = accept_calls(runtime, batch)

    assert [r.source_call_id for r in results] == [c.source_call_id for c in batch]
    assert [r.reason for r in results] == [
        None,
        Rejection.INVALID_PHONE.value,
        Rejection.UNKNOWN_SURVEY.value,
        Rejection.DUPLICATE.value,
        "opted_out",
        None,
        Rejection.DUPLICATE.value,
        "survey_under_way",
        Rejection.INVALID_FIELD.value,
    ]
    rows = {row.source_call_id: row for row in stored(runtime)}
    assert sorted(rows) == ["crm-1", "crm-4", "crm-5", "crm-7", "crm-9"]
    assert rows["crm-1"].state is RequestState.SCHEDULED
    assert rows["crm-1"].due_at == results[0].due_at
    assert rows["crm-1"].survey_version_id is not None
    assert rows["crm-1"].agent == "agent-1"
    assert rows["crm-4"].state is RequestState.SUPPRESSED
    assert results[4].request_id == rows["crm-4"].id
    assert rows["crm-5"].phone == "+14155550005"  # the first of the two, not the second
    assert rows["crm-7"].suppression_reason == "survey_under_way"


def test_a_source_call_another_intake_stored_meanwhile_is_a_duplicate(runtime, monkeypatch):
    accept_calls(runtime, [ended(1)])
    # The other intake committed after this one looked: only the unique constraint
    # (ON CONFLICT DO NOTHING) sees it.
    monkeypatch.setattr(intake, "_stored_source_calls", lambda session, ids: set())
    results = accept_calls(runtime, [ended(1, phone="+14155550002"), ended(3)])
    assert [r.reason for r in results] == [Rejection.DUPLICATE.value, None]
    assert results[0].request_id is None
    assert [row.phone for row in stored(runtime)] == ["+14155550001", "+14155550003"]


def test_metadata_and_fields_survive_the_bulk_insert(runtime):
    call = ended(
        1,
        queue="billing",
        team="north",
        language="ES-mx",
        metadata={"crm": "zendesk", "ticket": "12 345", "note": "ñ ✓"},
    )
    (result,) = accept_calls(runtime, [call])
    (row,) = stored(runtime)
    assert result.request_id == row.id
    assert (row.queue, row.team, row.language) == ("billing", "north", "es-mx")
    assert row.extra == {"crm": "zendesk", "ticket": "12 345", "note": "ñ ✓"}
    assert row.call_ended_at == call.ended_at
    assert row.mode is SurveyMode.CALLBACK
    assert row.created_at is not None and row.updated_at is not None


def test_a_batch_is_stored_with_one_creation_time(runtime):
    """Stamped once for the batch, as one INSERT's rows would be: suppressed or not."""
    with runtime.db.session() as session:
        session.add(OptOut(phone="+14155550002", source="api"))
    accept_calls(runtime, [ended(number) for number in range(1, 6)])
    rows = stored(runtime)
    assert len(rows) == 5 and any(row.state is RequestState.SUPPRESSED for row in rows)
    assert {(row.created_at, row.updated_at) for row in rows} == {
        (rows[0].created_at, rows[0].created_at)
    }


def test_in_call_requests_in_a_batch_keep_their_place_and_their_transfer(runtime):
    batch = [ended(1), ended(2, mode=SurveyMode.IN_CALL), ended(3)]
    results = accept_calls(runtime, batch)
    assert [r.source_call_id for r in results] == ["crm-1", "crm-2", "crm-3"]
    assert all(r.accepted for r in results)
    assert results[1].transfer is not None and results[1].due_at is None
    assert results[0].transfer is None and results[0].due_at is not None
    states = {row.source_call_id: row.state for row in stored(runtime)}
    assert states["crm-2"] is RequestState.AWAITING_TRANSFER


def test_a_small_batch_queues_its_calls_at_once(runtime):
    results = accept_calls(runtime, [ended(n) for n in range(3)])
    registry = ScheduledJobRegistry(queue=runtime.queue(scheduling.CALL_QUEUE))
    assert sorted(registry.get_job_ids()) == sorted(
        scheduling.call_job_id(r.request_id, 1, r.due_at) for r in results
    )


def test_a_bulk_batch_hands_its_calls_to_a_worker_which_queues_each(runtime):
    count = scheduling.DIRECT_ENQUEUE_LIMIT + 5
    results = accept_calls(runtime, [ended(n) for n in range(count)])
    queue = runtime.queue(scheduling.CALL_QUEUE)
    registry = ScheduledJobRegistry(queue=queue)
    assert registry.count == 0
    (job,) = queue.get_jobs()
    assert job.func_name == scheduling.QUEUE_FIRST_CALLS
    assert sorted(job.args[0]) == sorted(r.request_id for r in results)

    # Meanwhile one request was opted out (it is no longer scheduled): no call for it.
    with runtime.db.session() as session:
        session.get(SurveyRequest, results[0].request_id).state = RequestState.OPTED_OUT
    assert scheduling.queue_first_calls(runtime, job.args[0]) == count - 1
    assert sorted(registry.get_job_ids()) == sorted(
        scheduling.call_job_id(r.request_id, 1, r.due_at) for r in results[1:]
    )
    # Run twice (a retried job), it queues the same jobs, not new ones.
    scheduling.queue_first_calls(runtime, job.args[0])
    assert registry.count == count - 1


def test_reconciliation_queues_a_bulk_batch_whose_job_redis_lost(runtime):
    count = scheduling.DIRECT_ENQUEUE_LIMIT + 1
    accept_calls(runtime, [ended(n) for n in range(count)])
    runtime.queue(scheduling.CALL_QUEUE).empty()
    assert scheduling.reconcile(runtime) == count
    with runtime.db.session() as session:
        scheduled = session.scalar(
            select(func.count(SurveyRequest.id)).where(
                SurveyRequest.state == RequestState.SCHEDULED
            )
        )
    assert scheduled == count
