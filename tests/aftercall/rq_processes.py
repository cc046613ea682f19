"""Real rq processes for tests of what Redis holds: `rq worker` and `rq cron` started as
the Procfile starts them (plain `rq`, so no database is needed), and the jobs they run.

The jobs live here, importable by the worker processes from the repository root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parents[2]
CRON_CONFIG = "tests.aftercall.rq_cron"
PHONE = "+14155550123"


# -- the jobs ----------------------------------------------------------------------------


def call_customer(phone: str, line_up: str) -> str:
    """Fails while the file `line_up` does not exist (the line is down), then succeeds:
    a failed job that runs once it is requeued after the cause is fixed."""
    if not Path(line_up).exists():
        raise ConnectionError(f"no line to {phone} for request 42")
    Path(line_up).write_text(f"called {phone}")
    return "called"


def hold(seconds: float) -> None:
    """Keeps a worker busy, so the worker has a current job to show."""
    time.sleep(seconds)


def nothing() -> None:
    """The periodic job of the test cron configuration."""


# -- the processes -----------------------------------------------------------------------


def _env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url}


def run_burst_worker(redis_url: str, *queues: str) -> None:
    """One `rq worker --burst`: runs every job waiting on `queues`, then exits."""
    done = subprocess.run(
        ["rq", "worker", "--burst", "--url", redis_url, *queues],
        env=_env(redis_url), cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


@contextmanager
def running(command: list[str], redis_url: str, ready: Callable[[], bool]) -> Iterator[None]:
    """A long-running rq process, until it has registered in Redis (`ready`); stopped
    with SIGTERM (rq's warm shutdown) afterwards."""
    process = subprocess.Popen(
        command, env=_env(redis_url), cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 45
        while not ready():
            if process.poll() is not None:
                raise AssertionError(
                    f"{command[:2]} exited: {process.stderr.read().decode()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{command[:2]} did not register in Redis within 45 s")
            time.sleep(0.1)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextmanager
def worker(redis_url: str, *queues: str, name: str = "queue-test-worker") -> Iterator[None]:
    """`rq worker --with-scheduler` on `queues`, as the Procfile runs it."""
    from rq import Worker
    from rq.scheduler import RQScheduler

    connection = Redis.from_url(redis_url)

    def ready() -> bool:
        names = [w.name for w in Worker.all(connection=connection)]
        locks = all(connection.exists(RQScheduler.get_locking_key(q)) for q in queues)
        return name in names and locks

    command = ["rq", "worker", "--with-scheduler", "--name", name, "--url", redis_url, *queues]
    with running(command, redis_url, ready):
        yield
    connection.close()


@contextmanager
def cron(redis_url: str) -> Iterator[None]:
    """`rq cron` with the test configuration (one harmless job on the `upkeep` queue)."""
    from rq.cron import CronScheduler

    connection = Redis.from_url(redis_url)
    command = ["rq", "cron", CRON_CONFIG, "--url", redis_url]
    with running(command, redis_url, lambda: bool(CronScheduler.all(connection, cleanup=False))):
        yield
    connection.close()
