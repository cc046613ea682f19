"""An HTTP/1.1 load generator for the benchmarks: open loop at a fixed rate, or closed loop.

Runs in its own process(es) (`drive()` starts them), so that it never shares a GIL with
the server it measures. Requests are prepared beforehand as raw bytes, one per index;
each is sent at most once and none is retried, so that a benchmark can check exactly
which ones the server acknowledged.

- Open loop (`rate` > 0): request i is due at start + i / rate whatever happened to the
  earlier ones, and its latency runs from that due time, not from when it was actually
  written, so that queueing (in the generator, the kernel's accept backlog or the
  server) is never hidden (the "coordinated omission" trap). How late the generator
  itself was in writing is reported separately (`send_lag`).
- Closed loop (`rate` == 0): `concurrency` connections each send the next request as
  soon as the previous reply arrived: the server's maximum throughput.

A request whose reply has not arrived `timeout` after it was due (open loop: waiting
for a free connection included) or sent (closed loop) is given up and counted as an
error, so that a run against an overloaded server still ends: at most its duration plus
the timeout.

Connections are kept alive and reused whenever the server allows it; a server that
answers `Connection: close` (gunicorn's sync worker does, on every response) gets a new
connection per request, which is what its real clients do too.

Does not parse what it receives: replies are handed back for the caller to judge after
the run, so that judging them costs the measurement nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

# A reply that has not arrived this long after the request was due counts as an error
# (and is given up on). Twilio gives a voice webhook 15 s before it plays an error.
DEFAULT_TIMEOUT_SECONDS = 15.0
# Open loop: the most connections one generator process keeps open at once; requests
# due beyond that wait for a free one (and their latency shows it).
MAX_CONNECTIONS_PER_PROCESS = 512


@dataclass(frozen=True)
class Outcome:
    """What happened to one request; times are `time.time()` seconds."""

    index: int
    due: float  # open loop: the scheduled send time; closed loop: the actual one
    launched: float  # when the generator got to it (open loop: late if it fell behind)
    sent: float  # when a connection was free for it
    done: float
    status: int  # 0 when no HTTP reply came (connection error, timeout)
    body: bytes
    error: str = ""

    @property
    def latency(self) -> float:
        return self.done - self.due

    @property
    def send_lag(self) -> float:
        """How late the generator itself was: not the server's doing."""
        return self.launched - self.due


def http_request(
    method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A raw HTTP/1.1 request asking for keep-alive."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "Connection: keep-alive",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send one request; return (status, body, whether the connection can be reused)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, code = status_line.split(" ", 2)[:2]
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        keep = version == "HTTP/1.1" and headers.get("connection") != "close"
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "") == "chunked":
            body, keep = await self._chunked(), keep
        else:
            body, keep = await self.reader.read(), False
        return int(code), body, keep

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(p[:-2] for p in parts)

    def close(self) -> None:
        self.writer.close()


class _Pool:
    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)

    async def send(self, raw: bytes, deadline: float) -> tuple[float, int, bytes, str]:
        """Send `raw` unless `deadline` (a `time.time()`) passes first, waiting for a free
        connection included. Returns (sent at, status, body, error)."""
        loop = asyncio.get_running_loop()
        sent, connection = 0.0, None
        try:
            async with asyncio.timeout_at(loop.time() + deadline - time.time()):
                async with self.slots:
                    sent = time.time()
                    try:
                        if self.idle:
                            connection = self.idle.pop()
                        else:
                            reader, writer = await asyncio.open_connection(self.host, self.port)
                            connection = _Connection(reader, writer)
                        status, body, keep = await connection.exchange(raw)
                    except BaseException:
                        if connection is not None:
                            connection.close()
                        raise
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            if not sent:
                return time.time(), 0, b"", "not sent: no free connection in time"
            return sent, 0, b"", type(exc).__name__
        if keep:
            self.idle.append(connection)
        else:
            connection.close()
        return sent, status, body, ""

    def close(self) -> None:
        for connection in self.idle:
            connection.close()


async def _open_loop(
    host: str, port: int, requests: dict[int, bytes], start: float, rate: float, timeout: float
) -> list[Outcome]:
    pool = _Pool(host, port, MAX_CONNECTIONS_PER_PROCESS)
    outcomes: list[Outcome] = []

    async def one(index: int, due: float) -> None:
        launched = time.time()
        sent, status, body, error = await pool.send(requests[index], due + timeout)
        outcomes.append(Outcome(index, due, launched, sent, time.time(), status, body, error))

    tasks = []
    for index in sorted(requests):
        due = start + index / rate
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    pool.close()
    return outcomes


async def _closed_loop(
    host: str,
    port: int,
    requests: dict[int, bytes],
    start: float,
    concurrency: int,
    until: float,
    timeout: float,
) -> list[Outcome]:
    pool = _Pool(host, port, concurrency)
    outcomes: list[Outcome] = []
    queue = sorted(requests, reverse=True)
    wait = start - time.time()
    if wait > 0:
        await asyncio.sleep(wait)

    async def client() -> None:
        while queue and time.time() < until:
            index = queue.pop()
            sent, status, body, error = await pool.send(requests[index], time.time() + timeout)
            outcomes.append(Outcome(index, sent, sent, sent, time.time(), status, body, error))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    pool.close()
    return outcomes


def _run(
    host: str,
    port: int,
    requests: dict[int, bytes],
    start: float,
    rate: float,
    concurrency: int,
    until: float,
    timeout: float,
    results: multiprocessing.Queue,
) -> None:
    if rate > 0:
        work = _open_loop(host, port, requests, start, rate, timeout)
    else:
        work = _closed_loop(host, port, requests, start, concurrency, until, timeout)
    results.put(asyncio.run(work))


def drive(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float = 0.0,
    concurrency: int = 8,
    max_seconds: float = 60.0,
    processes: int = 1,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> tuple[list[Outcome], float]:
    """Send `requests` (at most once each) from `processes` generator processes.

    Open loop when `rate` > 0 (all of them, at `rate` per second in total, interleaved
    across the processes); closed loop otherwise, with `concurrency` connections in
    total, stopping when the requests run out or `max_seconds` have passed.
    Returns the outcomes in index order and the start time.
    """
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    # Time for the spawned interpreters to import this module before the first send.
    start = time.time() + 1.5 + 0.1 * processes
    until = start + max_seconds
    workers = []
    for k in range(processes):
        share = {i: raw for i, raw in enumerate(requests) if i % processes == k}
        per_process = max(1, concurrency // processes) if rate <= 0 else 0
        proc = context.Process(
            target=_run,
            args=(host, port, share, start, rate, per_process, until, timeout, results),
        )
        proc.start()
        workers.append(proc)
    outcomes = [outcome for _ in workers for outcome in results.get()]
    for proc in workers:
        proc.join()
    return sorted(outcomes, key=lambda o: o.index), start
