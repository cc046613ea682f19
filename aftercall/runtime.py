"""What a running process holds: settings, the database, the survey catalog, Twilio.

Built once per process (web app factory, worker start, CLI command) from `Settings` and
handed to the code that needs it, rather than living in module globals, so tests and the
demo can run several differently configured instances side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from redis import Redis
from rq import Queue
from twilio.rest import Client

from aftercall.config import Settings
from aftercall.db import Database, utcnow
from aftercall.survey import SurveyCatalog
from aftercall.telephony import rest_client

CALL_QUEUE = "calls"
ALERT_QUEUE = "alerts"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: SurveyCatalog
    _twilio: Client | None = field(default=None, repr=False)
    _redis: Redis | None = field(default=None, repr=False)
    # The dialer's clock; the demo runs it in simulated time.
    now: Callable[[], datetime] = utcnow

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            catalog=SurveyCatalog.from_directory(settings.surveys_dir),
        )

    @cached_property
    def twilio(self) -> Client:
        return self._twilio or rest_client(self.settings)

    @cached_property
    def redis(self) -> Redis:
        return self._redis or Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )

    @cached_property
    def call_queue(self) -> Queue:
        """The rq queue of survey calls, kept apart from any other work.

        One instance per process: rq's Queue asks the server for its version (INFO) the
        first time it enqueues and remembers it, so a fresh Queue per job costs a round
        trip and the parsing of INFO's reply every time.
        """
        return Queue(CALL_QUEUE, connection=self.redis)

    @cached_property
    def alert_queue(self) -> Queue:
        """The rq queue of detractor alerts (one instance per process, as `call_queue`)."""
        return Queue(ALERT_QUEUE, connection=self.redis)


# -- the Runtime of a worker process ------------------------------------------------
# rq jobs take plain ids; the Runtime they work with is built once per worker process,
# shared by every queue the worker serves (calls, alerts).

_worker_runtime: Runtime | None = None


def use_worker_runtime(runtime: Runtime | None) -> None:
    """Let an in-process worker (the demo, tests) run jobs against its own Runtime."""
    global _worker_runtime
    _worker_runtime = runtime


def worker_runtime() -> Runtime:
    global _worker_runtime
    if _worker_runtime is None:
        from aftercall.observability import configure_logging

        _worker_runtime = Runtime.from_settings(Settings.from_env())
        configure_logging(_worker_runtime.settings.json_logs)
    return _worker_runtime
