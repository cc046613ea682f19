"""The rq worker class for the call queue:
`rq worker --with-scheduler --worker-class dialer.worker.CallWorker calls alerts`.

rq forks a work horse for every job, and the horse imports the job's module and builds
the worker's Runtime on first use, then exits. With the stock worker, every call job
therefore pays for importing the dialer (SQLAlchemy, the twilio SDK, rq) and reading
the survey files: about a second on a busy machine, which caps a worker at about one
call a second (found by tests/chaos). This class does both once, in the worker process
before any fork, and every horse inherits them. Connections are not shared across the
fork: the database engine and Redis client open theirs on first use, in the horse.
"""

from __future__ import annotations

from typing import Any

from rq.worker import Worker

import dialer.jobs  # noqa: F401 - imported once here, inherited by every work horse
from aftercall.runtime import worker_runtime


class CallWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Settings, survey catalog, database engine, and the twilio SDK's Calls API
        # modules (it imports them lazily); no connection is opened yet.
        worker_runtime().twilio.calls  # noqa: B018
