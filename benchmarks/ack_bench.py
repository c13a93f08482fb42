"""What acknowledging appends by replicas costs one shard's store: ack_replicas 0 against 1.

    python -m benchmarks.ack_bench            # ~1 min on the 2-core dev box
    python -m benchmarks.ack_bench --json     # same, machine-readable

Starts a master redis-server, 2 replicas and 3 Sentinels on loopback (the test suite's
tests/server/sentinel_group.py) and drives the shard's own `Store` in this process (uvloop,
the master found through the Sentinels), with ack_replicas 0 and 1 in turn against the same
replicas, `--rounds` times each (interleaved, every other round reversed); `--lanes 1 2 3` also
compares the number of connections acknowledged appends use:
  - single appends: `--single-workers` concurrent callers, one event each, closed loop;
  - batched appends: `--batch-workers` callers, `--batch` events each, closed loop;
  - latency at a fixed `--rate` of single appends (open loop; from the scheduled start).
It prints events/s, this process's CPU per event and p50/p99 (medians of the rounds), and the
ratio of ack 1 to ack 0 (the median of the ratios within each round: on a shared machine the
runs of one round see the same load). The store alone is measured, without HTTP: a shard's
HTTP work per event comes on top, equal at both levels, so these ratios are the pessimistic
bound.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from benchmarks.loadgen import event_json
from ese_server.redis_client import RedisError
from ese_server.store import ACK_LANES, Store
from ese_server.validation import CheckedEvent, check_event
from tests.server.sentinel_group import SentinelGroup

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None  # type: ignore[assignment]


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"ack_bench: {binary} not found; apt-get install {package}")
    return path


def make_event(n: int, tag: str) -> CheckedEvent:
    """One validated event with a unique id, as the shard builds it from a request."""
    errors: list[dict[str, str]] = []
    checked = check_event(orjson.loads(event_json(n, tag)), "", errors)
    assert checked is not None, errors
    return checked


def cpu_seconds(proc: psutil.Process) -> float:
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


# A configuration: (label, ack_replicas, lanes for acknowledged appends).
Config = tuple[str, int, int]


def configs(lanes: list[int]) -> list[Config]:
    """ack 0 (the baseline), then ack 1 over each number of lanes asked for."""
    return [("ack0", 0, ACK_LANES)] + [
        ("ack1" if n == ACK_LANES else f"ack1-lanes{n}", 1, n) for n in lanes
    ]


async def one_config(
    group: SentinelGroup, config: Config, args: argparse.Namespace, tag: str
) -> Any:
    _, ack, lanes = config
    # The URL's host is unused: the Sentinels name the master.
    url = "redis://127.0.0.1:1/0"
    store = Store(url, 60, sentinels=group.addresses, ack_replicas=ack, ack_lanes=lanes)
    assert group.master.proc is not None
    master = psutil.Process(group.master.proc.pid)
    try:
        await store.append([make_event(0, f"{tag}w")])  # connect, load the script
        r0 = cpu_seconds(master)
        single = await closed_loop(store, args.seconds, args.single_workers, 1, f"{tag}s")
        batched = await closed_loop(store, args.seconds, args.batch_workers, args.batch, f"{tag}b")
        latency = await fixed_rate(store, args.rate, args.rate_seconds, f"{tag}r")
        redis_cpu = round(cpu_seconds(master) - r0, 2)
    finally:
        await store.close()
    group.client(group.master.port).flushall()  # the next one starts from the same state
    return {"single": single, "batched": batched, "latency": latency, "master_cpu_s": redis_cpu}


PHASES = ("single", "batched", "latency")


def summary(results: dict[str, list[Any]]) -> dict[str, Any]:
    """Medians of the rounds per configuration, and each one's ratios to ack 0."""
    out: dict[str, Any] = {}
    for label, rounds in results.items():
        out[label] = {
            f"{phase}_{key}": float(statistics.median(r[phase][key] for r in rounds))
            for phase in PHASES
            for key in (
                ("p50_ms", "p99_ms")
                if phase == "latency"
                else ("events_per_s", "cpu_us_per_event", "p50_ms", "p99_ms")
            )
        }
    # Ratios and differences are taken within each round (the runs of a round are next to each
    # other in time, so they share the machine's load), then the median over the rounds.
    base = results["ack0"]
    for label, rounds in results.items():
        if label == "ack0":
            continue
        pairs = list(zip(rounds, base, strict=True))

        def median(values: list[float]) -> float:
            return round(float(statistics.median(values)), 3)

        a = out[label]
        a["ratio_single"] = median(
            [r["single"]["events_per_s"] / b["single"]["events_per_s"] for r, b in pairs]
        )
        a["ratio_batched"] = median(
            [r["batched"]["events_per_s"] / b["batched"]["events_per_s"] for r, b in pairs]
        )
        for q in ("p50", "p99"):
            a[f"wait_adds_{q}_ms"] = median(
                [r["latency"][f"{q}_ms"] - b["latency"][f"{q}_ms"] for r, b in pairs]
            )
    return out


async def bench(group: SentinelGroup, args: argparse.Namespace) -> dict[str, list[Any]]:
    todo = configs(args.lanes)
    results: dict[str, list[Any]] = {label: [] for label, _, _ in todo}
    for n in range(args.rounds):
        # Every other round in reverse order, so a drift in the machine's load hits all alike.
        for config in todo if n % 2 == 0 else todo[::-1]:
            results[config[0]].append(await one_config(group, config, args, f"r{n}{config[0]}"))
            group.wait_for_replicas(group.master.port, len(group.replicas))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="each closed-loop phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every configuration")
    parser.add_argument("--rate", type=float, default=500.0, help="single appends/s (latency)")
    parser.add_argument("--rate-seconds", type=float, default=4.0)
    parser.add_argument("--single-workers", type=int, default=32)
    parser.add_argument("--batch-workers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument(
        "--lanes",
        type=int,
        nargs="+",
        default=[ACK_LANES],
        help=f"connections for acknowledged appends to compare (the store uses {ACK_LANES})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    redis_server = need("redis-server", "redis-server")
    redis_sentinel = need("redis-sentinel", "redis-sentinel")
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as tmp:
        group = SentinelGroup(redis_server, redis_sentinel, Path(tmp))
        try:
            group.start()
            if uvloop is not None:
                results = uvloop.run(bench(group, args))
            else:  # pragma: no cover - Windows
                results = asyncio.run(bench(group, args))
        finally:
            group.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    out = {"summary": summary(results), "rounds": results, "load_avg_1m": load}
    failed = sum(r[p]["failed"] for rounds in results.values() for r in rounds for p in PHASES)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        report(out, args)
        print(f"  failed appends: {failed}")
    return 0 if failed == 0 else 1


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"store with 2 replicas, 3 Sentinels (load avg {out['load_avg_1m']:.2f} at end)")
    for label, a in out["summary"].items():
        print(
            f"  {label:<11} single    {a['single_events_per_s']:>8,.0f} events/s "
            f"({a['single_cpu_us_per_event']:.1f} µs CPU/event, "
            f"p50 {a['single_p50_ms']:.2f} ms, p99 {a['single_p99_ms']:.2f} ms)"
        )
        print(
            f"  {'':<11} batch x{args.batch:<3}{a['batched_events_per_s']:>8,.0f} events/s "
            f"({a['batched_cpu_us_per_event']:.1f} µs CPU/event, "
            f"p50 {a['batched_p50_ms']:.2f} ms, p99 {a['batched_p99_ms']:.2f} ms)"
        )
        line = (
            f"  {'':<11} at {args.rate:.0f}/s   p50 {a['latency_p50_ms']:.3f} ms, "
            f"p99 {a['latency_p99_ms']:.3f} ms"
        )
        if "ratio_single" in a:
            line += (
                f"; vs ack0: single {a['ratio_single']}x, batch {a['ratio_batched']}x, WAIT "
                f"adds p50 {a['wait_adds_p50_ms']:+.3f} ms, p99 {a['wait_adds_p99_ms']:+.3f} ms"
            )
        print(line)


if __name__ == "__main__":
    sys.exit(main())
