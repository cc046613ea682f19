"""Putting survey calls on the rq call queue for their due time, and keeping it honest.

Jobs are scheduled with rq's own scheduler (`Queue.enqueue_at` with aware UTC times;
workers run `--with-scheduler`). The database is the source of truth: a request is
`scheduled` with its `due_at` before any job exists, so if Redis loses the job (a
restart without persistence, an enqueue that failed), `reconcile()` rebuilds it.
Job ids are derived from (request, attempt, due time): the same job is never queued
twice, and a rescheduled call gets a new id instead of clobbering a running job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from core.db import utcnow
from core.models import CallAttempt, RequestState, SurveyRequest
from core.runtime import Runtime
from dialer.chunking import chunks
from dialer.settlement import FINAL_STATUS_OVERDUE, settle_overdue_attempts

log = logging.getLogger(__name__)

# The queue of survey calls and the dialer's follow-ups, kept apart from any other work.
CALL_QUEUE = "calls"
PLACE_CALL = "dialer.jobs.place_due_call"
AFTER_ATTEMPT = "dialer.jobs.after_attempt"
QUEUE_FIRST_CALLS = "dialer.jobs.queue_first_calls"
# Up to this many accepted requests, intake queues their call jobs itself; more go to a
# worker, QUEUE_JOB_REQUESTS per job (enqueue_first_calls).
DIRECT_ENQUEUE_LIMIT = 50
QUEUE_JOB_REQUESTS = 1000
# Outcomes after which the dialer decides about a retry (dispatch.after_attempt).
AWAITING_FOLLOW_UP = (
    RequestState.NO_ANSWER,
    RequestState.BUSY,
    RequestState.FAILED,
    RequestState.VOICEMAIL,
)
# The usual path (the status webhook queues the follow-up) gets this long first.
FOLLOW_UP_GRACE = timedelta(minutes=2)
# A call job that has not run 6 hours after its time is not worth running.
JOB_TTL_SECONDS = 6 * 3600
# A job still marked started with no heartbeat for this long lost its worker (rq beats
# every DEFAULT_JOB_MONITORING_INTERVAL seconds while a job runs). rq itself notices
# only at its next maintenance, up to 10 minutes later, and then calls it failed.
STALLED_JOB = timedelta(seconds=3 * DEFAULT_JOB_MONITORING_INTERVAL)
# rq's scheduler moves a due job onto the queue within a second or two. A call job still
# waiting a minute after its time has no scheduler: the worker holding rq's scheduler
# lock died, and the others only try to take the lock over at their maintenance, every
# 10 minutes (rq's DEFAULT_MAINTENANCE_TASK_INTERVAL). Found by tests/chaos.
SCHEDULER_STALLED = timedelta(minutes=1)
# Job states from which rq will still run the job.
_WILL_RUN = (
    JobStatus.CREATED,
    JobStatus.QUEUED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
    JobStatus.RATE_LIMITED,
    JobStatus.READY_TO_ENQUEUE,
)


@dataclass(frozen=True)
class Patience:
    """How long reconciliation waits before it takes silence for loss."""

    final_status: timedelta = FINAL_STATUS_OVERDUE  # an attempt's end, from Twilio
    without_call_sid: timedelta = FINAL_STATUS_OVERDUE  # an attempt Twilio never named
    stalled_job: timedelta = STALLED_JOB  # a job marked started whose worker is silent
    follow_up: timedelta = FOLLOW_UP_GRACE  # the status webhook's own follow-up
    scheduler: timedelta = SCHEDULER_STALLED  # rq's scheduler, to release a due job


def call_job_id(request_id: int, attempt_number: int, due_at: datetime) -> str:
    return f"survey-call-{request_id}-{attempt_number}-{int(due_at.timestamp())}"


def enqueue_call(
    runtime: Runtime,
    request_id: int,
    attempt_number: int,
    due_at: datetime,
    pipeline: Pipeline | None = None,
) -> str:
    job_id = call_job_id(request_id, attempt_number, due_at)
    runtime.queue(CALL_QUEUE).enqueue_at(
        due_at,
        PLACE_CALL,
        request_id,
        attempt_number,
        job_id=job_id,
        ttl=JOB_TTL_SECONDS,
        failure_ttl=7 * 24 * 3600,
        description=f"survey call {attempt_number} for request {request_id}",
        pipeline=pipeline,
    )
    return job_id


def enqueue_first_calls(runtime: Runtime, due: Iterable[tuple[int, datetime]]) -> None:
    """Queue accepted requests' first calls; a Redis failure is logged and left to
    reconcile().

    A few are queued here, in one round trip. A bulk batch (an API batch, a CSV chunk)
    is handed to a worker in one job per thousand (`queue_first_calls`): rq takes about
    0.3 ms of Python to build each job, which would be most of bulk intake's time, and
    the requests are stored `scheduled` already, so the job only carries them to Redis.
    """
    due = list(due)
    try:
        if len(due) <= DIRECT_ENQUEUE_LIMIT:
            with runtime.redis.pipeline() as pipeline:
                for request_id, due_at in due:
                    enqueue_call(runtime, request_id, 1, due_at, pipeline=pipeline)
                pipeline.execute()
            return
        with runtime.redis.pipeline() as pipeline:
            for start in range(0, len(due), QUEUE_JOB_REQUESTS):
                ids = [request_id for request_id, _ in due[start : start + QUEUE_JOB_REQUESTS]]
                runtime.queue(CALL_QUEUE).enqueue(
                    QUEUE_FIRST_CALLS,
                    ids,
                    job_id=f"first-calls-{ids[0]}-{ids[-1]}",
                    result_ttl=600,
                    failure_ttl=7 * 24 * 3600,
                    description=f"queue the first calls of {len(ids)} requests",
                    pipeline=pipeline,
                )
            pipeline.execute()
    except RedisError as exc:
        log.error("could not queue survey calls (reconciliation will): %s", exc)


def queue_first_calls(runtime: Runtime, request_ids: list[int]) -> int:
    """The worker's half of enqueue_first_calls: a call job for each of the requests
    still scheduled, at its due time (from the database, which may have moved on since
    intake). Safe to run twice: a job id names its request, attempt and due time."""
    with runtime.db.session() as session:
        scheduled = session.execute(
            select(SurveyRequest.id, SurveyRequest.due_at, _calls_placed()).where(
                SurveyRequest.id.in_(request_ids),
                SurveyRequest.state == RequestState.SCHEDULED,
                SurveyRequest.due_at.is_not(None),
            )
        ).all()
    with runtime.redis.pipeline() as pipeline:
        for request_id, due_at, attempts in scheduled:
            enqueue_call(runtime, request_id, attempts + 1, due_at, pipeline=pipeline)
        pipeline.execute()
    return len(scheduled)


def _calls_placed():
    """Calls placed for the request in the outer query (what the next attempt's number
    follows): an in-call survey's transfer is no call, a refused request no call either."""
    return (
        select(func.count(CallAttempt.id))
        .where(
            CallAttempt.request_id == SurveyRequest.id,
            CallAttempt.status != "rejected",
            CallAttempt.direction == "outbound",
        )
        .scalar_subquery()
    )


def reconcile(runtime: Runtime, patience: Patience = Patience()) -> int:
    """Rebuild from the database what Redis lost. Returns how many jobs were queued.

    - a `scheduled` request whose call job is gone, failed, or died with its worker
      gets it back (the job is safe to run twice: the claim decides);
    - an attempt whose final status never came is settled from Twilio's Calls API
      (dialer.settlement), and followed up like any ended attempt;
    - an attempt that ended (no answer, busy, failed, voicemail) whose follow-up never
      ran (Redis was down when the status webhook came, or the follow-up job failed)
      gets its follow-up: such a request still has the due time of the call just made,
      which the follow-up clears or replaces;
    - a call job rq's scheduler left waiting past its time is put on the queue.
    """
    now = runtime.now()
    late = release_due_jobs(runtime.queue(CALL_QUEUE), now - patience.scheduler)
    if late:
        log.warning("reconcile: %d call jobs were overdue (no rq scheduler running); "
                    "queued them", late)  # fmt: skip
    ended = [
        verdict.request_id
        for verdict in settle_overdue_attempts(
            runtime, patience.final_status, patience.without_call_sid
        )
        if verdict.outcome in ("ended", "lost")
    ]
    with runtime.db.session() as session:
        scheduled = session.execute(
            select(SurveyRequest.id, SurveyRequest.due_at, _calls_placed()).where(
                SurveyRequest.state == RequestState.SCHEDULED, SurveyRequest.due_at.is_not(None)
            )
        ).all()
        unsettled = session.scalars(
            select(SurveyRequest.id).where(
                SurveyRequest.state.in_(AWAITING_FOLLOW_UP),
                SurveyRequest.due_at.is_not(None),
                # updated_at is the database's wall-clock stamp (core.models), and
                # the grace is for a job running in real time: the wall clock, not
                # runtime.now(), which the demo and tests run in simulated time.
                SurveyRequest.updated_at < utcnow() - patience.follow_up,
            )
        ).all()
    unsettled = list(dict.fromkeys([*ended, *unsettled]))
    restored = 0
    waiting = _waiting_job_ids(runtime.queue(CALL_QUEUE))
    for request_id, due_at, attempts in scheduled:
        job_id = call_job_id(request_id, attempts + 1, due_at)
        if job_id in waiting:
            continue  # on the queue or in the scheduled registry: rq will run it
        if not _will_run(runtime, job_id, patience.stalled_job):
            enqueue_call(runtime, request_id, attempts + 1, due_at)
            restored += 1
    for request_id in unsettled:
        job_id = f"follow-up-{request_id}"
        if not _will_run(runtime, job_id, patience.stalled_job):
            runtime.queue(CALL_QUEUE).enqueue(
                AFTER_ATTEMPT, request_id, job_id=job_id, result_ttl=60
            )
            restored += 1
    if restored:
        log.warning("reconcile: queued %d survey call jobs that Redis had lost", restored)
    return restored + late


def _waiting_job_ids(queue: Queue) -> set[str]:
    """The jobs on the queue or in its scheduled registry that are marked as waiting
    there, read in a few round trips. After a bulk import most scheduled requests are
    there, and asking about each (a job fetch and a list search per request, LPOS
    scanning the whole queue) would cost Redis time in proportion to the square of the
    backlog. Anything else (a job marked started, failed, or gone) is asked about."""
    listed = [
        *((job_id, JobStatus.QUEUED) for job_id in queue.get_job_ids()),
        *(
            (job_id, JobStatus.SCHEDULED)
            for job_id in ScheduledJobRegistry(queue=queue).get_job_ids()
        ),
    ]
    waiting: set[str] = set()
    for chunk in chunks(listed, 1000):
        with queue.connection.pipeline(transaction=False) as pipeline:
            for job_id, _ in chunk:
                pipeline.hget(Job.key_for(job_id), "status")
            statuses = pipeline.execute()
        waiting.update(
            job_id
            for (job_id, expected), status in zip(chunk, statuses, strict=True)
            if status is not None and status.decode() == expected.value
        )
    return waiting


def _will_run(runtime: Runtime, job_id: str, stalled_after: timedelta) -> bool:
    """Whether rq will still run (or is running) the job. A job that failed, finished
    or died with its worker is deleted, so that the same id can be queued afresh."""
    try:
        job = Job.fetch(job_id, connection=runtime.redis)
    except NoSuchJobError:
        return False
    except DeserializationError:  # half a job, what a crash left: start afresh
        runtime.redis.delete(Job.key_for(job_id))
        return False
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
        # The status alone can lie: a worker takes the job off the queue, then marks it
        # started; Redis crashing in between (or losing its last second of writes)
        # leaves a job marked queued that is on no queue. Found by tests/chaos.
        queue = Queue(job.origin, connection=runtime.redis)
        if status == JobStatus.QUEUED:
            listed = runtime.redis.lpos(queue.key, job_id) is not None
        else:
            listed = runtime.redis.zscore(ScheduledJobRegistry(queue=queue).key, job_id) is not None
        if listed:
            return True
        log.warning("job %s is marked %s but is on no queue; queued again", job_id, status)
    elif status in _WILL_RUN:
        return True
    if status == JobStatus.STARTED:
        beat = job.last_heartbeat or job.started_at
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        # rq stamps jobs with the wall clock, whatever clock the dialer runs on.
        if beat is not None and datetime.now(UTC) - beat < stalled_after:
            return True
        log.warning("job %s lost its worker (last heard of %s); queued again", job_id, beat)
    job.delete()
    return False


def release_due_jobs(queue: Queue, now: datetime) -> int:
    """Move the jobs due at `now` from the scheduled registry onto the queue.

    This is what rq's scheduler does on the wall clock; the demo and the tests call it
    to run the same jobs on a simulated clock.
    """
    registry = ScheduledJobRegistry(queue=queue)
    released = 0
    for job_id in registry.get_jobs_to_schedule(int(now.timestamp())):
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:  # expired: its registry entry outlived it
            registry.remove(job_id)
            continue
        registry.remove(job)
        queue.enqueue_job(job)
        released += 1
    return released


def next_scheduled_time(queue: Queue) -> datetime | None:
    registry = ScheduledJobRegistry(queue=queue)
    first = queue.connection.zrange(registry.key, 0, 0, withscores=True)
    return datetime.fromtimestamp(first[0][1], UTC) if first else None
