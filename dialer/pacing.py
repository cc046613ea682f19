"""Pacing shared by every worker on every machine: calls per second, through Redis.

A GCRA-style reservation: a Redis key holds the earliest time the next call may start.
Each placement reserves the slot at that time and pushes it one interval (1 / CPS) on,
so calls start at least an interval apart however many workers compete. The time is
Redis's own clock (TIME), not each machine's. The update is an optimistic WATCH/MULTI
transaction, which real Redis and the demo's in-process stand-in both support.

Twilio queues calls beyond an account's CPS rather than refusing them, so a call handed
over late could ring outside calling hours; pacing on our side keeps that from happening.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.exceptions import WatchError

PACING_KEY = "aftercall:pacing:next-call-at"


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait_seconds: float  # until the reserved slot (granted), or until one frees up
    starts_at: float  # the slot, on Redis's clock (seconds since the epoch)


def reserve_call_slot(redis: Redis, calls_per_second: float, max_wait: float) -> Reservation:
    """Reserve the next slot if it is at most `max_wait` seconds away."""
    interval = 1.0 / calls_per_second
    with redis.pipeline() as pipe:
        while True:
            try:
                pipe.watch(PACING_KEY)
                seconds, micros = pipe.time()
                now = seconds + micros / 1_000_000
                stored = pipe.get(PACING_KEY)
                slot = max(float(stored) if stored else now, now)
                wait = slot - now
                if wait > max_wait:
                    pipe.unwatch()
                    return Reservation(False, wait, slot)
                pipe.multi()
                pipe.set(
                    PACING_KEY, repr(slot + interval), px=int((wait + interval) * 1000) + 60_000
                )
                pipe.execute()
                return Reservation(True, wait, slot)
            except WatchError:
                continue
