"""Pacing shared by every worker on every machine: calls (and texts) per second, through
Redis. Calls and texts have a log each, with their own limit (CALLS_PER_SECOND,
MESSAGES_PER_SECOND): Twilio limits them apart.

A sliding-window log: a Redis sorted set holds the start times of the calls admitted in
the last window, and a call is admitted only while fewer than the limit started in the
window ending now. The check and the admission are one optimistic WATCH/MULTI
transaction (real Redis and the demo's in-process stand-in both support it), and the
time is Redis's own clock (TIME), so any number of workers on any number of machines
share one limit and no 1-second window ever holds more calls than the configured CPS.
Below 1 CPS the window stretches instead (0.5 CPS: one call per 2 seconds).

Twilio queues calls beyond an account's CPS rather than refusing them, so a call handed
over late could ring outside calling hours; pacing on our side keeps that from happening.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import WatchError

PACING_KEY = "aftercall:pacing:call-starts"
MESSAGE_PACING_KEY = "aftercall:pacing:message-sends"


@dataclass(frozen=True)
class Admission:
    granted: bool
    started_at: float  # Redis clock, seconds since the epoch (granted), else when asked
    retry_after: float = 0.0  # seconds until a slot frees up (not granted)


def window_and_limit(calls_per_second: float) -> tuple[float, int]:
    if calls_per_second >= 1:
        return 1.0, math.floor(calls_per_second)
    return 1.0 / calls_per_second, 1


def try_admit(redis: Redis, calls_per_second: float, key: str = PACING_KEY) -> Admission:
    """Admit one call now if the limit allows, in one atomic step."""
    window, limit = window_and_limit(calls_per_second)
    with redis.pipeline() as pipe:
        while True:
            try:
                # Between WATCH and MULTI commands run at once; EXEC fails if another
                # worker changed the log meanwhile, and the loop reads it again.
                pipe.watch(key)
                seconds, micros = pipe.time()
                now = seconds + micros / 1_000_000
                recent = pipe.zrangebyscore(key, now - window, "+inf", withscores=True)
                if len(recent) >= limit:
                    pipe.unwatch()
                    oldest = recent[-limit][1]
                    return Admission(False, now, max(oldest + window - now, 0.001))
                pipe.multi()
                pipe.zremrangebyscore(key, "-inf", now - window)
                pipe.zadd(key, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})
                pipe.pexpire(key, int(window * 1000) + 1000)
                pipe.execute()
                return Admission(True, now)
            except WatchError:
                continue


def acquire_call_slot(
    redis: Redis, calls_per_second: float, max_wait: float, key: str = PACING_KEY
) -> Admission:
    """Wait up to `max_wait` seconds for a slot; if none by then, say how long to wait."""
    deadline = time.monotonic() + max_wait
    while True:
        admission = try_admit(redis, calls_per_second, key)
        if admission.granted:
            return admission
        remaining = deadline - time.monotonic()
        if admission.retry_after > remaining:
            return admission
        time.sleep(admission.retry_after)
