"""aftercall.queue_status against a real Redis with real `rq worker` and `rq cron`
processes: queue depths and registries, workers, schedulers, the cron process, failed
jobs with phone numbers masked, and requeue/delete of a failed job."""

from __future__ import annotations

import zlib
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from aftercall import queue_status
from aftercall.queue_status import JobDataExpired, NotFailed
from tests.aftercall.rq_processes import (
    PHONE,
    call_customer,
    cron,
    hold,
    run_burst_worker,
    wait_until,
    worker,
)

pytestmark = pytest.mark.redis

MASKED = "+1 415 ••• ••23"


@pytest.fixture
def redis(redis_url: str):
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


def fail_calls(redis, redis_url: str, line_up, count: int = 1) -> list[str]:
    """`count` call jobs failed by a real worker process; their ids, oldest first."""
    queue = Queue("calls", connection=redis)
    ids = [queue.enqueue(call_customer, PHONE, str(line_up)).id for _ in range(count)]
    run_burst_worker(redis_url, "calls")
    return ids


# -- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("no line to +14155550123 for request 42", f"no line to {MASKED} for request 42"),
        ("+1 (415) 555-0123 busy", f"{MASKED} busy"),
        ("call 4155550123", "call ••••••••23"),
        ("+44 20 7946 0123", "+44 20 •••• ••23"),
        ("ended_at 2026-11-23 is in the future", "ended_at 2026-11-23 is in the future"),
        ("request 42 attempt 3 took 4.5 s", "request 42 attempt 3 took 4.5 s"),
        ("", ""),
    ],
)
def test_mask_numbers(text, shown):
    assert queue_status.mask_numbers(text) == shown


@pytest.mark.parametrize(
    ("args", "kwargs", "call"),
    [
        ((42, 1), {}, "dialer.jobs.place_call(42, 1)"),
        ((PHONE,), {"note": "ring +14155550123"}, f"dialer.jobs.place_call('{MASKED}', note='ring {MASKED}')"),
        (([PHONE, 7],), {"meta": {"to": PHONE}}, f"dialer.jobs.place_call(['{MASKED}', 7], meta={{'to': '{MASKED}'}})"),
        ((None, True, 1.5), {}, "dialer.jobs.place_call(None, True, 1.5)"),
    ],
)  # fmt: skip
def test_masked_call(args, kwargs, call):
    assert queue_status.masked_call("dialer.jobs.place_call", args, kwargs) == call


def test_long_arguments_are_cut_short():
    call = queue_status.masked_call("f", ("x" * 1000,) * 10, {})
    assert len(call) == queue_status.MAX_CALL_CHARS
    assert call.endswith("…")


@pytest.mark.parametrize(
    ("exc_string", "line"),
    [
        (
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nConnectionError: no line to +14155550123\n",
            f"ConnectionError: no line to {MASKED}",
        ),
        ("RuntimeError: boom", "RuntimeError: boom"),
        ("", None),
        (None, None),
        ("\n  \n", None),
    ],
)  # fmt: skip
def test_last_line(exc_string, line):
    assert queue_status.last_line(exc_string) == line


# -- failed jobs ---------------------------------------------------------------------------


def test_a_job_failed_by_a_worker_is_listed_masked(redis, redis_url, tmp_path):
    (job_id,) = fail_calls(redis, redis_url, tmp_path / "line-up")

    page = queue_status.failed_jobs(redis, "calls")
    assert page.total == 1 and not page.has_next
    (failed,) = page.jobs
    assert failed.id == job_id
    assert failed.function == "tests.aftercall.rq_processes.call_customer"
    assert failed.call == f"{failed.function}('{MASKED}', '{tmp_path / 'line-up'}')"
    assert failed.error == f"ConnectionError: no line to {MASKED} for request 42"
    assert failed.enqueued_at is not None and failed.ended_at is not None
    assert failed.enqueued_at <= failed.ended_at
    assert not failed.expired
    assert "5550123" not in repr(page)  # the number appears nowhere, masked or not

    depth = queue_status.queue_depth(redis, "calls")
    assert (depth.waiting, depth.started, depth.failed) == (0, 0, 1)


def test_requeued_job_runs_again(redis, redis_url, tmp_path):
    line_up = tmp_path / "line-up"
    (job_id,) = fail_calls(redis, redis_url, line_up)
    line_up.touch()  # the cause is fixed

    queue_status.requeue_failed(redis, "calls", job_id)
    assert queue_status.queue_depth(redis, "calls").waiting == 1
    assert queue_status.failed_jobs(redis, "calls").total == 0
    run_burst_worker(redis_url, "calls")

    assert Job.fetch(job_id, connection=redis).get_status() == JobStatus.FINISHED
    assert line_up.read_text() == f"called {PHONE}"
    with pytest.raises(NotFailed):  # it is no longer a failed job
        queue_status.requeue_failed(redis, "calls", job_id)


def test_delete_removes_the_job_for_good(redis, redis_url, tmp_path):
    (job_id,) = fail_calls(redis, redis_url, tmp_path / "line-up")

    queue_status.delete_failed(redis, "calls", job_id)
    assert queue_status.failed_jobs(redis, "calls").total == 0
    assert not redis.exists(Job.key_for(job_id))
    with pytest.raises(NotFailed):
        queue_status.delete_failed(redis, "calls", job_id)


@pytest.mark.parametrize("action", [queue_status.requeue_failed, queue_status.delete_failed])
@pytest.mark.parametrize(
    ("queue", "job_id"),
    [("alerts", "the-job"), ("calls", "no-such-job"), ("calls", "a:b"), ("calls", "../x"), ("calls", "")],
)  # fmt: skip
def test_only_a_failed_job_of_that_queue_can_be_acted_on(
    redis, redis_url, tmp_path, action, queue, job_id
):
    (failed_id,) = fail_calls(redis, redis_url, tmp_path / "line-up")
    with pytest.raises(NotFailed):
        action(redis, queue, failed_id if job_id == "the-job" else job_id)
    assert queue_status.failed_jobs(redis, "calls").total == 1


def test_a_job_whose_data_expired_can_be_deleted_not_requeued(redis, redis_url, tmp_path):
    (job_id,) = fail_calls(redis, redis_url, tmp_path / "line-up")
    redis.delete(Job.key_for(job_id))  # the job hash's TTL ran out; the registry entry stays

    (entry,) = queue_status.failed_jobs(redis, "calls").jobs
    assert entry.expired and entry.function is None and entry.error is None
    with pytest.raises(JobDataExpired):
        queue_status.requeue_failed(redis, "calls", job_id)
    queue_status.delete_failed(redis, "calls", job_id)
    assert queue_status.failed_jobs(redis, "calls").total == 0


def test_failed_jobs_are_paged_newest_first(redis, redis_url, tmp_path):
    ids = fail_calls(redis, redis_url, tmp_path / "line-up", count=5)
    # The burst worker fails them in queue order within the same second or so; rq scores
    # the failed registry by time, so give each a distinct, known score.
    for n, job_id in enumerate(ids):
        redis.zadd("rq:failed:calls", {job_id: 2_000_000_000 + n})

    first = queue_status.failed_jobs(redis, "calls", page=1, per_page=2)
    second = queue_status.failed_jobs(redis, "calls", page=2, per_page=2)
    last = queue_status.failed_jobs(redis, "calls", page=3, per_page=2)
    assert [j.id for j in first.jobs + second.jobs + last.jobs] == ids[::-1]
    assert (first.has_next, second.has_next, last.has_next) == (True, True, False)
    assert (second.first_shown, second.last_shown, second.total) == (3, 4, 5)
    beyond = queue_status.failed_jobs(redis, "calls", page=9, per_page=2)
    assert beyond.jobs == [] and (beyond.first_shown, beyond.last_shown) == (0, 0)
    with pytest.raises(ValueError, match="page"):
        queue_status.failed_jobs(redis, "calls", page=0)


def test_unreadable_arguments_are_said_so(redis):
    job = Queue("calls", connection=redis).enqueue(call_customer, PHONE, "x")
    redis.lrem("rq:queue:calls", 0, job.id)
    Queue("calls", connection=redis).failed_job_registry.add(job)
    # Written by an older release: data this one cannot load, and the failure kept in the
    # job's hash (as rq before results did) rather than as a result.
    traceback = "Traceback (most recent call last):\nRuntimeError: could not unpickle"
    redis.hset(
        Job.key_for(job.id),
        mapping={"data": b"not a pickle", "exc_info": zlib.compress(traceback.encode())},
    )

    (entry,) = queue_status.failed_jobs(redis, "calls").jobs
    assert entry.call == queue_status.UNREADABLE and entry.function is None
    assert entry.error == "RuntimeError: could not unpickle"


# -- the overview --------------------------------------------------------------------------


def test_nothing_running(redis):
    overview = queue_status.overview(redis)
    assert [q.name for q in overview.queues] == ["calls", "messages", "alerts"]
    assert all(q.scheduler is None for q in overview.queues)
    assert overview.workers == [] and overview.cron == []
    assert all(
        (q.waiting, q.started, q.scheduled, q.deferred, q.failed) == (0, 0, 0, 0, 0)
        for q in overview.queues
    )


def test_workers_schedulers_and_cron_as_they_run(redis, redis_url):
    calls = Queue("calls", connection=redis)
    later = calls.enqueue_in(timedelta(hours=1), hold, 0)
    first = calls.enqueue(hold, 0)
    calls.enqueue(hold, 0, depends_on=first)  # deferred until `first` has run
    with cron(redis_url), worker(redis_url, "calls", "messages", "alerts"):
        busy = calls.enqueue(hold, 30)
        wait_until(lambda: Job.fetch(busy.id, connection=redis).get_status() == "started", "busy")

        overview = queue_status.overview(redis)
        (running,) = overview.workers
        assert running.name == "queue-test-worker"
        assert running.state == "busy"
        assert running.queues == ("calls", "messages", "alerts")
        assert running.current_job_id == busy.id
        assert running.current_function == "tests.aftercall.rq_processes.hold"
        assert running.pid and running.hostname
        assert overview.read_at - running.last_heartbeat < timedelta(seconds=30)

        calls_depth, _, alerts_depth = overview.queues[:3]
        assert calls_depth.started == 1
        assert (calls_depth.workers, alerts_depth.workers) == (1, 1)
        assert calls_depth.scheduled == 1  # `later`
        assert calls_depth.deferred == 0  # `first` ran, so its dependent ran too
        assert calls_depth.scheduler is not None and alerts_depth.scheduler is not None
        assert calls_depth.scheduler.pid and calls_depth.scheduler.last_heartbeat is not None

        (live,) = overview.cron
        assert live.jobs == 1 and live.pid
        assert queue_status.live_cron(redis, at=overview.read_at + timedelta(minutes=5)) == []
        # The cron's own queue is listed after aftercall's, as any other queue in Redis.
        (upkeep,) = overview.queues[3:]
        assert upkeep.name == "upkeep" and upkeep.workers == 0 and upkeep.scheduler is None
        assert queue_status.check_queue_name(redis, "upkeep") == "upkeep"
    assert Job.fetch(later.id, connection=redis).get_status() == JobStatus.SCHEDULED


def test_deferred_jobs_are_counted(redis):
    calls = Queue("calls", connection=redis)
    first = calls.enqueue(hold, 0)
    calls.enqueue(hold, 0, depends_on=first)
    depth = queue_status.queue_depth(redis, "calls")
    assert (depth.waiting, depth.deferred) == (1, 1)


def test_unknown_queue_names_are_refused(redis):
    with pytest.raises(ValueError, match="queue: expected one of calls, messages, alerts"):
        queue_status.check_queue_name(redis, "nope")
