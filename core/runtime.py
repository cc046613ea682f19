"""What a running process holds: settings, the database, the survey catalog (the files in
SURVEYS_DIR and the surveys kept in the database), Twilio, Redis, and the job queues.

Built once per process (web app factory, worker start, CLI command) from `Settings` and
handed to the code that needs it, rather than living in module globals, so tests and the
demo can run several differently configured instances side by side.

The core knows no job queue library and no domain: the entry point that builds a
Runtime hands in its `Wiring` (aftercall.wiring): how jobs are queued (a domain asks for
its queue by name, `runtime.queue(CALL_QUEUE)`), and who listens to what one domain tells
another (core.events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from redis import Redis
from twilio.rest import Client

from core.config import Settings
from core.db import Database, utcnow
from core.survey import SurveyCatalog
from core.survey_store import CombinedSurveyCatalog
from core.telephony import rest_client

if TYPE_CHECKING:
    from core.events import AlertRule, AnswerListener, TextOpener


class JobQueue(Protocol):
    """What aftercall asks of a job queue (rq's `Queue` is one)."""

    name: str

    def enqueue(self, f: Any, *args: Any, **kwargs: Any) -> Any: ...

    def enqueue_at(self, datetime: datetime, f: Any, *args: Any, **kwargs: Any) -> Any: ...


QueueFactory = Callable[[str, Redis], JobQueue]


@dataclass(frozen=True)
class Wiring:
    """What the entry point that builds a Runtime hands the core: how jobs are queued
    (None: this Runtime queues none, and says so if asked to), and who listens to what
    one domain tells another (core.events)."""

    queue_factory: QueueFactory | None = None
    answer_listeners: tuple[AnswerListener, ...] = ()
    # Whether an answer calls for an alert, whose outbox row is then written with it.
    alert_rule: AlertRule | None = None
    text_opener: TextOpener | None = None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: SurveyCatalog
    _twilio: Client | None = field(default=None, repr=False)
    _redis: Redis | None = field(default=None, repr=False)
    # The dialer's clock; the demo runs it in simulated time.
    now: Callable[[], datetime] = utcnow
    wiring: Wiring = field(default=Wiring(), repr=False)
    _queues: dict[str, JobQueue] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring | None = None) -> Runtime:
        db = Database(settings.database_url)
        # The survey files, and the surveys kept in the database (core.survey_store).
        catalog = CombinedSurveyCatalog(
            SurveyCatalog.from_directory(settings.surveys_dir),
            db,
            max_age=settings.survey_refresh_seconds,
        )
        return cls(settings=settings, db=db, catalog=catalog, wiring=wiring or Wiring())

    @cached_property
    def twilio(self) -> Client:
        return self._twilio or rest_client(self.settings)

    @cached_property
    def redis(self) -> Redis:
        return self._redis or Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )

    def queue(self, name: str) -> JobQueue:
        """The job queue `name`, one instance per Runtime.

        One instance per process: rq's Queue asks the server for its version (INFO) the
        first time it enqueues and remembers it, so a fresh Queue per job costs a round
        trip and the parsing of INFO's reply every time.
        """
        queue = self._queues.get(name)
        if queue is None:
            make = self.wiring.queue_factory
            if make is None:
                raise LookupError(
                    f"this Runtime was built without a job queue, so it cannot queue on {name!r}"
                )
            queue = self._queues[name] = make(name, self.redis)
        return queue


# -- the Runtime of a worker process ------------------------------------------------
# rq jobs take plain ids; the Runtime they work with is built once per worker process,
# shared by every queue the worker serves (calls, alerts).

_worker_runtime: Runtime | None = None


def use_worker_runtime(runtime: Runtime | None) -> None:
    """Let an in-process worker (the demo, tests) run jobs against its own Runtime."""
    global _worker_runtime
    _worker_runtime = runtime


def worker_runtime() -> Runtime:
    """The Runtime the worker process installed when it started (aftercall.worker)."""
    if _worker_runtime is None:
        raise LookupError(
            "no Runtime for this worker: run jobs with the Procfile's worker "
            "(--worker-class aftercall.worker.CallWorker), or call use_worker_runtime() first"
        )
    return _worker_runtime
