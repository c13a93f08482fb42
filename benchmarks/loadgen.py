"""A lean HTTP/1.1 keep-alive load generator (raw asyncio protocol, uvloop when available).

Runs as its own process (started by server_bench.py) so that the shard under test and the load
generator do not share an interpreter. Prints one JSON line with the results.

Modes:
  closed  - C connections each send the next request as soon as the previous answer arrived;
            measures throughput.
  rate    - requests are scheduled at a fixed rate; latency is measured from the *scheduled*
            send time, so a stalled server cannot hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None  # type: ignore[assignment]


def event_json(n: int, tag: str) -> bytes:
    """One realistic event (with an id, so the server's idempotency path is exercised)."""
    kind = ("KEY_PRESS_EVENT", "BUTTON_CLICK_EVENT", "INPUT_PASSED_EVENT")[n % 3]
    return (
        b'{"eventType":"CLICK_STREAM_EVENT","timestamp":%d,"ip":"10.0.0.%d-%d",'
        b'"data":{"event":"%s"},"id":"%s-%d"}'
        % (1706000000000 + n, n % 4, n % 7, kind.encode(), tag.encode(), n)
    )


def make_request(path: str, body: bytes, host: str) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body)
    )


class Conn(asyncio.Protocol):
    """One keep-alive connection; answers are matched to requests in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiters: list[asyncio.Future[int]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            pos = head.find(b"content-length:")
            length = (
                int(
                    head[
                        pos + 15 : head.find(b"\r\n", pos) if head.find(b"\r\n", pos) > 0 else None
                    ]
                )
                if pos >= 0
                else 0
            )
            total = end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            del self.buf[:total]
            fut = self.waiters.pop(0)
            if not fut.done():
                fut.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self.waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))
        self.waiters.clear()

    def request(self, data: bytes) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        assert self.transport is not None
        self.transport.write(data)
        return fut


async def connect(host: str, port: int, count: int) -> list[Conn]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(count):
        _, proto = await loop.create_connection(Conn, host, port)
        conns.append(proto)
    return conns


async def closed_loop(
    host: str,
    port: int,
    conns: int,
    seconds: float,
    make: Callable[[int], bytes],
    max_requests: int,
) -> dict[str, float]:
    pool = await connect(host, port, conns)
    counter = itertools.count()
    ok = failed = 0
    stop_at = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal ok, failed
        while time.perf_counter() < stop_at:
            n = next(counter)
            if n >= max_requests:
                return
            status = await conn.request(make(n))
            if status < 400:
                ok += 1
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in pool))
    elapsed = time.perf_counter() - started
    for c in pool:
        assert c.transport is not None
        c.transport.close()
    return {"ok": ok, "failed": failed, "seconds": elapsed, "rps": ok / elapsed}


async def fixed_rate(
    host: str, port: int, conns: int, seconds: float, rate: float, make: Callable[[int], bytes]
) -> dict[str, float]:
    pool = await connect(host, port, conns)
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for c in pool:
        idle.put_nowait(c)
    latencies: list[float] = []
    failed = 0
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(n: int, scheduled: float) -> None:
        nonlocal failed
        conn = await idle.get()
        status = await conn.request(make(n))
        done = time.perf_counter()
        idle.put_nowait(conn)
        if status >= 400:
            failed += 1
        latencies.append(done - scheduled)

    tasks = []
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(n, scheduled)))
    await asyncio.gather(*tasks)
    for c in pool:
        assert c.transport is not None
        c.transport.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": total,
        "failed": failed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=("closed", "rate"), default="closed")
    parser.add_argument("--batch", type=int, default=0, help="0 = POST /event, else /events")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--tag", default="bench")
    args = parser.parse_args()
    host_header = f"{args.host}:{args.port}"
    # Each request is a prebuilt template whose 8-digit slot gets the request number, so every
    # event id is unique (no accidental duplicates) and building a request is one C call.
    slot = b"@" * 8
    if args.batch:
        events = b",".join(event_json(i, f"{args.tag}-{slot.decode()}") for i in range(args.batch))
        template = make_request("/events", b'{"events":[' + events + b"]}", host_header)
    else:
        template = make_request("/event", event_json(0, f"{args.tag}-{slot.decode()}"), host_header)
    max_requests = min(args.max_requests, 10**8 - 1)

    def make(n: int) -> bytes:
        return template.replace(slot, b"%08d" % n)

    if uvloop is not None:
        uvloop.install()
    if args.mode == "closed":
        coro = closed_loop(args.host, args.port, args.conns, args.seconds, make, max_requests)
    else:
        coro = fixed_rate(args.host, args.port, args.conns, args.seconds, args.rate, make)
    result = asyncio.run(coro)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
