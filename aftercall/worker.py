"""The rq worker class for aftercall's queues:
`rq worker --with-scheduler --worker-class aftercall.worker.CallWorker calls messages alerts`.

rq's stock worker forks a work horse for every job, and the horse exits after it. Every
call job then paid, in a fresh process: importing the dialer (SQLAlchemy, the twilio
SDK, rq) and reading the survey files (about a second on a busy machine; found by
tests/chaos), a new PostgreSQL connection (TCP and SCRAM authentication), and compiling
every SQL statement again into an empty cache: about 0.1 s of CPU per call, four times
a job that does nothing (bench.dialer_throughput). This worker runs jobs in its own
process (rq's SimpleWorker), so the Runtime, its connection pools and SQLAlchemy's
compiled statements are built once and serve every job.

What a fork would have isolated, and why it is safe here: rq's job timeout still holds
(rq enforces it with SIGALRM in this process); a job's database work is in its own unit
of work (rolled back on error) and a connection that went stale is pinged before reuse
(core.db); a worker killed in the middle of a job leaves it in rq's started
registry, which rq fails once the worker's heartbeat expires, and the dialer's
reconciliation re-queues whatever the database says is still due.
"""

from __future__ import annotations

from typing import Any

from rq.worker import SimpleWorker

import dialer.jobs  # noqa: F401 - imported once, before the first job
import scoring.jobs  # noqa: F401
from aftercall.observability import configure_logging
from aftercall.wiring import runtime_from_settings
from core.config import Settings
from core.runtime import use_worker_runtime, worker_runtime


class CallWorker(SimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The Runtime every job of this process works with (jobs take plain ids), built
        # here, by the entry point, with the job queue it hands to the core.
        runtime = runtime_from_settings(Settings.from_env())
        configure_logging(runtime.settings.json_logs)
        use_worker_runtime(runtime)
        # Settings, survey catalog, database engine, and the twilio SDK's Calls API
        # modules (it imports them lazily); no connection is opened until a job needs one.
        worker_runtime().twilio.calls  # noqa: B018
