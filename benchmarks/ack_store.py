"""The store-level load of benchmarks/ack_bench.py: the shard's own `Store`, in this process.

Callers append as a shard's requests would (validated events with unique ids), without HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import orjson
import psutil

from benchmarks.loadgen import event_json
from ese_server.redis_client import RedisError
from ese_server.store import Store
from ese_server.validation import CheckedEvent, check_event


def make_event(n: int, tag: str) -> CheckedEvent:
    """One validated event with a unique id, as the shard builds it from a request."""
    errors: list[dict[str, str]] = []
    checked = check_event(orjson.loads(event_json(n, tag)), "", errors)
    assert checked is not None, errors
    return checked


def cpu_seconds(proc: psutil.Process) -> float:
    """User and system CPU seconds of `proc` so far."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def closed_loop(store: Store, seconds: float, workers: int, batch: int, tag: str) -> Any:
    """`workers` callers append `batch` events each, as fast as the store answers."""
    loop = asyncio.get_running_loop()  # its clock ends the phase; perf_counter times appends
    numbers = itertools.count()
    latencies: list[float] = []
    failed = 0
    me = psutil.Process()
    cpu0 = cpu_seconds(me)
    started = loop.time()
    stop_at = started + seconds

    async def caller() -> None:
        nonlocal failed
        for _ in range(10_000_000):  # bounded in count, and in time by stop_at
            if loop.time() >= stop_at:
                return
            events = [make_event(next(numbers), tag) for _ in range(batch)]
            sent = time.perf_counter()
            try:
                await store.append(events)
            except RedisError:
                failed += 1
                continue
            latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(caller() for _ in range(workers)))
    elapsed = loop.time() - started
    stored = len(latencies) * batch
    return {
        "events_per_s": round(stored / elapsed),
        "cpu_us_per_event": round(1e6 * (cpu_seconds(me) - cpu0) / max(stored, 1), 1),
        "p50_ms": round(1000 * percentile(latencies, 0.5), 3),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 3),
        "failed": failed,
    }


async def fixed_rate(store: Store, rate: float, seconds: float, tag: str) -> Any:
    """Single appends started at a fixed rate; latency from each one's scheduled start."""
    # perf_counter, not loop.time(): uvloop's clock has a resolution of 1 ms
    count = int(rate * seconds)
    start = time.perf_counter() + 0.05
    latencies: list[float] = []
    failed = 0

    async def one(n: int) -> None:
        nonlocal failed
        scheduled = start + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        try:
            await store.append([make_event(n, tag)])
        except RedisError:
            failed += 1
            return
        latencies.append(time.perf_counter() - scheduled)

    await asyncio.gather(*(one(n) for n in range(count)))
    return {
        "p50_ms": round(1000 * percentile(latencies, 0.5), 3),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 3),
        "failed": failed,
    }


async def measure(
    sentinels: list[tuple[str, int]], ack: int, master: psutil.Process, args: Any
) -> Any:
    """Every phase against one fresh store; also the master's CPU seconds over them."""
    tag = f"s{time.monotonic_ns()}"  # ids unique across runs
    # The URL's host is unused: the Sentinels name the master.
    url = "redis://127.0.0.1:1/0"
    store = Store(url, 60, sentinels=sentinels, ack_replicas=ack)
    try:
        await store.append([make_event(0, f"{tag}w")])  # connect, load the script
        r0 = cpu_seconds(master)
        single = await closed_loop(store, args.seconds, args.single_workers, 1, f"{tag}s")
        batched = await closed_loop(store, args.seconds, args.batch_workers, args.batch, f"{tag}b")
        latency = await fixed_rate(store, args.rate, args.rate_seconds, f"{tag}r")
        redis_cpu = round(cpu_seconds(master) - r0, 2)
    finally:
        await store.close()
    return {"single": single, "batched": batched, "latency": latency, "master_cpu_s": redis_cpu}
