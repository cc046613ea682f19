"""aftercall.worker.CallWorker: what it prepares before its first job."""

from __future__ import annotations

import sys

from redis import Redis

from core import runtime as runtime_module
from core.runtime import use_worker_runtime, worker_runtime
from tests.conftest import _required_server


def test_the_call_worker_prepares_the_dialer_before_its_first_job_without_connecting(monkeypatch):
    # An address nothing listens on: building the worker must not connect to it.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none")
    use_worker_runtime(None)
    try:
        from aftercall.worker import CallWorker

        # rq asks Redis its version when a worker is made; nothing is written.
        redis = Redis.from_url(_required_server("AFTERCALL_TEST_REDIS_URL", "Redis"))
        CallWorker(["calls"], connection=redis)
        prepared = runtime_module._worker_runtime
        assert prepared is not None and worker_runtime() is prepared
        assert prepared.db.engine.pool.checkedin() == 0  # no connection opened
        assert "dialer.jobs" in sys.modules
        assert "twilio.rest.api.v2010.account.call" in sys.modules
    finally:
        use_worker_runtime(None)
