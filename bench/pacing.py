"""Pacing accuracy: N worker processes competing for call slots through one Redis.

Each process loops as a dialer worker does (wait for a slot, "place" the call, record
the time it was admitted) for the given number of real seconds. Prints the mean
rate against the configured calls per second, and the most calls that started in any
1-second window (which must never exceed the configured CPS).

    python -m bench.pacing --redis-url redis://127.0.0.1:6390/0 --cps 5 --workers 4 --seconds 60
"""

from __future__ import annotations

import argparse
import multiprocessing
from bisect import bisect_left

from redis import Redis

from core.pacing import PACING_KEY, acquire_call_slot


def worker(redis_url: str, cps: float, until: float, starts: multiprocessing.Queue) -> None:
    redis = Redis.from_url(redis_url)
    mine = []
    while True:
        admission = acquire_call_slot(redis, cps, max_wait=2.0)
        if not admission.granted:
            continue
        if admission.started_at >= until:
            break
        mine.append(admission.started_at)
    starts.put(mine)


def max_in_any_window(times: list[float], width: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cps", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    redis = Redis.from_url(args.redis_url)
    redis.delete(PACING_KEY)
    seconds, micros = redis.time()
    start = seconds + micros / 1e6 + 0.5
    until = start + args.seconds
    starts: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=worker, args=(args.redis_url, args.cps, until, starts))
        for _ in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    times = [t for _ in procs for t in starts.get()]
    for proc in procs:
        proc.join()

    times = [t for t in times if t >= start]
    span = args.seconds
    mean = len(times) / span
    peak = max_in_any_window(times)
    print(f"workers={args.workers} configured_cps={args.cps:g} seconds={span:g}")
    print(f"calls={len(times)} mean_rate={mean:.3f}/s ratio_to_configured={mean / args.cps:.3f}")
    print(f"max_calls_in_any_1s_window={peak} (limit {args.cps:g})")


if __name__ == "__main__":
    main()
