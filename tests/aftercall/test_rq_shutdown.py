"""A worker stops when asked, not a minute later.

On its way out an rq 3.0 worker unsubscribes its command channel and stops the pub/sub
thread it runs with a 60 s poll (`run_in_thread(sleep_time=60)`, then `stop()`). redis
8.2.0's `PubSubWorkerThread.stop()` waits for that thread, which by then may sit in a
60 s wait for a subscription that will not come: the worker (a deploy, a burst worker,
the suite's own 60 s waits for workers) hung for up to a minute, at random. pyproject.toml
pins redis below 8.2; this test is the same sequence, made deterministic, so that a
redis or rq that brings the wait back fails here rather than at random elsewhere.
"""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

pytestmark = pytest.mark.redis

RQ_POLL_SECONDS = 60  # rq.worker.base.BaseWorker.subscribe()
STOPS_WITHIN_SECONDS = 5


def test_stopping_the_pub_sub_thread_of_an_unsubscribed_worker_does_not_wait(redis_url):
    pubsub = Redis.from_url(redis_url).pubsub()
    pubsub.subscribe(**{"rq:pubsub:shutdown-test": lambda message: None})
    thread = pubsub.run_in_thread(sleep_time=RQ_POLL_SECONDS, daemon=True)
    _wait_until(lambda: pubsub.subscribed, "the thread read the subscription")
    pubsub.unsubscribe()
    _wait_until(lambda: not pubsub.subscribed, "the thread read the unsubscription")
    time.sleep(0.2)  # the thread is back in get_message(), waiting for a subscription

    stopped = threading.Event()
    stopper = threading.Thread(target=lambda: (thread.stop(), stopped.set()), daemon=True)
    started = time.monotonic()
    stopper.start()
    assert stopped.wait(STOPS_WITHIN_SECONDS), (
        f"PubSubWorkerThread.stop() still waiting after {time.monotonic() - started:.0f} s"
    )
    pubsub.close()


def _wait_until(condition, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.01)
