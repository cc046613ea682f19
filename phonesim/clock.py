"""Time for the phone network: simulated by default, the wall clock for live demos.

Every wait in a call (ringing, speech, `<Pause>`, `<Gather>` timeouts, recordings) is a
step on a clock, never a `time.sleep`, so a test can run a call with 5 s timeouts in a
few milliseconds and still see Twilio-like timestamps. The driver asks the clock to move
to the next event: `SimClock` jumps there, `WallClock` really waits.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Protocol


class Clock(Protocol):
    """What the network needs from a clock."""

    simulated: bool

    def now(self) -> datetime: ...

    def time(self) -> float: ...

    def advance_to(self, when: float) -> None: ...


class SimClock:
    """A clock that only moves when told to; thread-safe."""

    simulated = True

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.now().timestamp()

    def set(self, when: datetime) -> None:
        """Put the clock at `when` (tests that start a campaign at a given hour)."""
        with self._lock:
            self._now = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def advance_to(self, when: float) -> None:
        """Jump to the epoch second `when`; never backwards."""
        with self._lock:
            target = datetime.fromtimestamp(when, UTC)
            if target > self._now:
                self._now = target


class WallClock:
    """Real time, for `serve(realtime=True)` where a person listens along."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def advance_to(self, when: float) -> None:
        delay = when - time.time()
        if delay > 0:
            time.sleep(delay)


class EagerClock:
    """The wall clock's time, without its waits: each step runs as soon as the driver
    reaches it, in order, and is stamped with the real time it happened.

    For runs against processes on the wall clock (rq workers, the dialer's backoff):
    callbacks carry real timestamps, so "ended at" means what it says, while a call's
    rings, prompts and timeouts take no time at all.
    """

    simulated = True  # the driver does not wait for an event's time

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def advance_to(self, when: float) -> None:
        pass


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format: `Tue, 31 Aug 2010 20:36:28 +0000`."""
    if moment is None:
        return None
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))
