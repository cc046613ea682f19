"""What the rq side of aftercall is doing, read from Redis: the queues and their
registries, the workers, the schedulers, the cron process, and the failed jobs; and the
two things an operator does about a failed job (queue it again, or delete it).

Every read uses rq's registries without their `cleanup`: cleaning the started registry
moves jobs of dead workers to the failed registry and runs their failure callbacks,
which is the workers' business, not a status page's. So a count can include a job whose
worker died moments ago; the next worker's maintenance settles it.

Failed jobs are shown with customers' phone numbers masked (scoring.detractors.mask_phone,
as analysts see them on the dashboard), in their arguments and in the exception's last
line: whoever reads queue health has no need of the number, and an exception message can
carry one. Integers are left alone: aftercall's jobs take request ids.

This module knows nothing of Flask: the dashboard's Queues page (aftercall.web.dashboard.queues)
calls it with a Redis connection and plain values.
"""

from __future__ import annotations

import re
import warnings
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_CRON_SCHEDULER_TTL
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.utils import as_text, now, utcparse

from core.masking import mask_phone
from dialer.scheduling import CALL_QUEUE
from scoring.alerts import ALERT_QUEUE
from sms.outbox import MESSAGE_QUEUE

# Always listed, even before their first job: the queues aftercall's processes serve.
KNOWN_QUEUES = (CALL_QUEUE, MESSAGE_QUEUE, ALERT_QUEUE)
MAX_PER_PAGE = 100
# Seven or more digits, with the spaces, dots, brackets and hyphens people write numbers
# with: every phone number, and few other things (an ISO date is let through below).
PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){6,}")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_ARGUMENT_CHARS = 120
MAX_CALL_CHARS = 400
MAX_ERROR_CHARS = 300
UNREADABLE = "(the arguments could not be read)"


class NotFailed(LookupError):
    """The job is not (or no longer) in that queue's failed registry: requeued or deleted
    by someone else, expired, or never there."""


class JobDataExpired(LookupError):
    """The failed registry still names the job but Redis no longer holds its data, so
    there is nothing to run again; it can only be deleted."""


@dataclass(frozen=True)
class SchedulerHolder:
    """The rq scheduler (started by `rq worker --with-scheduler`) that holds a queue's
    lock and so moves its scheduled jobs onto it when due."""

    name: str
    hostname: str | None
    pid: int | None
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class QueueDepth:
    name: str
    waiting: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    scheduler: SchedulerHolder | None  # None: scheduled jobs on this queue never run
    workers: int = 0  # workers listening on it


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    hostname: str | None
    pid: int | None
    state: str
    queues: tuple[str, ...]
    current_job_id: str | None
    current_function: str | None
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class CronStatus:
    """A live `rq cron` process: one per deployment runs aftercall's periodic jobs."""

    name: str
    hostname: str | None
    pid: int | None
    last_heartbeat: datetime | None
    jobs: int  # periodic jobs it registered


@dataclass(frozen=True)
class Overview:
    queues: list[QueueDepth]
    workers: list[WorkerStatus]
    cron: list[CronStatus]
    read_at: datetime

    def queue(self, name: str) -> QueueDepth | None:
        return next((q for q in self.queues if q.name == name), None)


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    function: str | None  # None: the job's data has expired or cannot be read
    call: str  # the function with its arguments, phone numbers masked
    error: str | None  # the exception's last line, phone numbers masked
    enqueued_at: datetime | None
    ended_at: datetime | None
    expired: bool = False  # only the registry entry is left: delete is all that can be done


@dataclass(frozen=True)
class FailedPage:
    queue: str
    jobs: list[FailedJob]
    total: int
    page: int
    per_page: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.jobs else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.per_page + len(self.jobs) if self.jobs else 0


# -- masking ---------------------------------------------------------------------------


def mask_numbers(text: str) -> str:
    """`text` with everything that could be a phone number masked as the dashboard masks
    numbers for analysts: `failed for +14155550123` -> `failed for +1 415 ••• ••23`."""

    def mask(match: re.Match[str]) -> str:
        found = match.group()
        if ISO_DATE.fullmatch(found):
            return found
        return mask_phone(found) or ""

    return PHONE_LIKE.sub(mask, text)


def _shown(value: Any) -> str:
    """One argument as a call would be written, strings' phone numbers masked, cut short."""
    if isinstance(value, str):
        text = repr(mask_numbers(value))
    elif isinstance(value, list | tuple):
        inner = ", ".join(_shown(v) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner})"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_shown(k)}: {_shown(v)}" for k, v in value.items()) + "}"
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:  # an object of some class: its repr may say anything, so mask it too
        text = mask_numbers(repr(value))
    return text if len(text) <= MAX_ARGUMENT_CHARS else text[: MAX_ARGUMENT_CHARS - 1] + "…"


def masked_call(function: str, args: tuple | list, kwargs: dict[str, Any]) -> str:
    """`dialer.jobs.place_call(42, 1)`; `alert('+1 415 ••• ••23')`."""
    parts = [_shown(a) for a in args] + [f"{k}={_shown(v)}" for k, v in kwargs.items()]
    call = f"{function}({', '.join(parts)})"
    return call if len(call) <= MAX_CALL_CHARS else call[: MAX_CALL_CHARS - 1] + "…"


def last_line(exc_string: str | None) -> str | None:
    """The line a traceback ends with (`RuntimeError: ...`), phone numbers masked."""
    if not exc_string:
        return None
    lines = [line.strip() for line in exc_string.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = mask_numbers(lines[-1])
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


# -- the overview ----------------------------------------------------------------------


def queue_names(connection: Redis) -> list[str]:
    """aftercall's queues first, then any other queue Redis knows of, by name."""
    others = sorted({q.name for q in Queue.all(connection=connection)} - set(KNOWN_QUEUES))
    return [*KNOWN_QUEUES, *others]


def check_queue_name(connection: Redis, name: str) -> str:
    """`name` if it is a queue this page lists; ValueError saying which ones it lists."""
    names = queue_names(connection)
    if name not in names:
        raise ValueError(f"queue: expected one of {', '.join(names)}")
    return name


def _scheduler_holding(connection: Redis, queue: str) -> SchedulerHolder | None:
    holder = connection.get(RQScheduler.get_locking_key(queue))
    if holder is None:
        return None
    name = as_text(holder)
    details = {
        as_text(k): as_text(v) for k, v in connection.hgetall(SCHEDULER_KEY_TEMPLATE % name).items()
    }
    beat = details.get("last_heartbeat")
    pid = details.get("pid", "")
    return SchedulerHolder(
        name=name,
        hostname=details.get("hostname") or None,
        pid=int(pid) if pid.isdigit() else None,
        last_heartbeat=utcparse(beat) if beat else None,
    )


def queue_depth(connection: Redis, name: str, workers: int = 0) -> QueueDepth:
    queue = Queue(name, connection=connection)
    return QueueDepth(
        name=name,
        waiting=queue.count,
        started=queue.started_job_registry.get_job_count(cleanup=False),
        scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
        deferred=queue.deferred_job_registry.get_job_count(cleanup=False),
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
        scheduler=_scheduler_holding(connection, name),
        workers=workers,
    )


def _function_of(job: Job | None) -> str | None:
    if job is None:
        return None
    try:
        return job.func_name
    except DeserializationError:
        return None


def worker_status(connection: Redis, worker: Worker) -> WorkerStatus:
    job_id = worker.get_current_job_id()
    job = Job.fetch_many([job_id], connection=connection)[0] if job_id else None
    return WorkerStatus(
        name=worker.name,
        hostname=worker.hostname,
        pid=worker.pid,
        state=str(getattr(worker.get_state(), "value", worker.get_state())),
        queues=tuple(worker.queue_names()),
        current_job_id=job_id,
        current_function=_function_of(job),
        last_heartbeat=worker.last_heartbeat,
    )


def live_cron(connection: Redis, at: datetime | None = None) -> list[CronStatus]:
    """The `rq cron` processes that sent a heartbeat within rq's own time-to-live for
    them; read without rq's cleanup of the stale ones (a status page writes nothing)."""
    at = at or now()
    oldest = at - timedelta(seconds=DEFAULT_CRON_SCHEDULER_TTL)
    found = []
    for scheduler in CronScheduler.all(connection, cleanup=False):
        beat = scheduler.last_heartbeat
        if beat is None or beat < oldest:
            continue
        found.append(
            CronStatus(
                name=scheduler.name,
                hostname=scheduler.hostname or None,
                pid=scheduler.pid or None,
                last_heartbeat=beat,
                jobs=len(scheduler.get_jobs()),
            )
        )
    return found


def overview(connection: Redis) -> Overview:
    """Every queue with its registries' counts and scheduler, every worker, the cron
    processes. A few round trips per queue and per worker, whatever the queues hold."""
    workers = [
        worker_status(connection, w)
        for w in sorted(Worker.all(connection=connection), key=lambda w: w.name)
    ]
    return Overview(
        queues=[
            queue_depth(connection, name, sum(name in w.queues for w in workers))
            for name in queue_names(connection)
        ],
        workers=workers,
        cron=live_cron(connection),
        read_at=now(),
    )


# -- failed jobs -----------------------------------------------------------------------


def _failed_job(queue: str, job_id: str, job: Job | None) -> FailedJob:
    if job is None:
        return FailedJob(
            id=job_id, queue=queue, function=None, call="(the job's data has expired)",
            error=None, enqueued_at=None, ended_at=None, expired=True,
        )  # fmt: skip
    try:
        function = job.func_name
        call = masked_call(function or "?", job.args, job.kwargs)
    except DeserializationError:
        function, call = None, UNREADABLE
    return FailedJob(
        id=job.id,
        queue=queue,
        function=function,
        call=call,
        error=last_line(_exc_string(job)),
        enqueued_at=job.enqueued_at,
        ended_at=job.ended_at,
    )


def _exc_string(job: Job) -> str | None:
    result = job.latest_result()
    if result is not None and result.type == Result.Type.FAILED:
        return result.exc_string
    # A failure recorded without a result (by an older rq, or put into the registry by
    # hand) has only the job's own exc_info, which rq 3 reads through a deprecated name.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return job.exc_info


def failed_jobs(connection: Redis, queue: str, page: int = 1, per_page: int = 20) -> FailedPage:
    """One page of a queue's failed jobs, the most recent failure first (rq scores them
    by when they expire, which is the failure time plus a TTL that is the same for all
    of aftercall's jobs)."""
    if page < 1:
        raise ValueError("page: expected a number from 1")
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    registry = FailedJobRegistry(queue, connection=connection)
    total = registry.get_job_count(cleanup=False)
    start = (page - 1) * per_page
    ids = registry.get_job_ids(start, start + per_page - 1, desc=True, cleanup=False)
    jobs = Job.fetch_many(ids, connection=connection) if ids else []
    return FailedPage(
        queue=queue,
        jobs=[_failed_job(queue, job_id, job) for job_id, job in zip(ids, jobs, strict=True)],
        total=total,
        page=page,
        per_page=per_page,
    )


def _check_job_id(job_id: str) -> None:
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise NotFailed(f"{job_id!r} is not an rq job id")


def requeue_failed(connection: Redis, queue: str, job_id: str) -> None:
    """Put a failed job back on its queue to run again (aftercall's jobs are idempotent,
    so a job that partly ran before failing is safe to run again).

    NotFailed if the job is not in `queue`'s failed registry (any more); JobDataExpired
    if only the registry's entry is left.
    """
    _check_job_id(job_id)
    registry = FailedJobRegistry(queue, connection=connection)
    if job_id not in registry:
        raise NotFailed(f"job {job_id} is not among the failed jobs of queue {queue!r}")
    try:
        registry.requeue(job_id)
    except NoSuchJobError:
        raise JobDataExpired(f"job {job_id}'s data has expired; it can only be deleted") from None
    except InvalidJobOperation:  # requeued or deleted between the check and the move
        raise NotFailed(f"job {job_id} is not among the failed jobs of queue {queue!r}") from None


def delete_failed(connection: Redis, queue: str, job_id: str) -> None:
    """Remove a failed job and its data for good; NotFailed if it is not in `queue`'s
    failed registry (any more). The registry entry goes first, so of two admins deleting
    the same job at once exactly one succeeds."""
    _check_job_id(job_id)
    registry = FailedJobRegistry(queue, connection=connection)
    if not registry.remove(job_id):
        raise NotFailed(f"job {job_id} is not among the failed jobs of queue {queue!r}")
    # Expired already: removing its entry was all there was to do.
    with suppress(NoSuchJobError):
        Job.fetch(job_id, connection=connection).delete()
