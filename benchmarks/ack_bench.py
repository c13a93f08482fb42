"""What acknowledging appends by replicas costs a shard: ack_replicas 0 against 1.

    python -m benchmarks.ack_bench                  # ~3 min on the 2-core dev box
    python -m benchmarks.ack_bench --level store --json   # the store alone

Starts a master redis-server, 2 replicas and 3 Sentinels on loopback (the test suite's
tests/server/sentinel_group.py) and measures, with ack_replicas 0 and 1 in turn against the
same replicas, `--rounds` times (interleaved, every other round reversed, so a drift in the
machine's load hits both alike):
  - shard level: a real shard (`python -m ese_server`, the master found through the Sentinels,
    ESE_ACK_REPLICAS 0 or 1) under benchmarks/loadgen.py, as server_bench.py drives it: single
    events (POST /event), batches (POST /events), and p50/p99 at a fixed rate;
  - store level: the shard's `Store` alone in this process (benchmarks/ack_store.py), without
    HTTP (its own clock and CPU, a pessimistic bound for the ratios).
It prints events/s, CPU per event (the shard's, or this process's) and p50/p99, medians of the
rounds, and for ack 1 its ratio to ack 0 and what WAIT adds to p50/p99: the medians of those
taken within each round (on a shared machine the runs of one round see the same load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from benchmarks import ack_store
from benchmarks.server_bench import cpu_seconds, get_json, loadgen, wait_for
from ese.host.ports import free_port
from ese.host.processes import stop_process
from tests.server.sentinel_group import SentinelGroup

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
PHASES = ("single", "batched", "latency")
CONFIGS = (("ack0", 0), ("ack1", 1))  # (label, ack_replicas)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"ack_bench: {binary} not found; apt-get install {binary}")
    return path


def measure_shard(group: SentinelGroup, ack: int, args: argparse.Namespace, tag: str) -> Any:
    """Every phase against one fresh shard process; CPU per event is the shard's."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SERVER_PORT": str(port),
            "ESE_HOST": "127.0.0.1",
            "ESE_ROLE": "ingest",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # the host is unused: the Sentinels name it
            "ESE_REDIS_SENTINELS": " ".join(f"{h}:{p}" for h, p in group.addresses),
            "ESE_ACK_REPLICAS": str(ack),
        }
    )
    shard = subprocess.Popen(
        [sys.executable, "-m", "ese_server"],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/")["redis"] == "up", "the shard")
        me = psutil.Process(shard.pid)
        nodes = [psutil.Process(n.proc.pid) for n in group.nodes if n.proc is not None]
        loadgen(port, "--seconds", "1", "--conns", "8", "--tag", f"{tag}w")

        def closed(conns: int, batch: int, name: str) -> dict[str, Any]:
            c0, r0 = cpu_seconds(me), [cpu_seconds(n) for n in nodes]
            lg_args = ["--seconds", str(args.seconds), "--conns", str(conns)]
            lg_args += ["--batch", str(batch if batch > 1 else 0), "--tag", f"{tag}{name}"]
            out = loadgen(port, *lg_args)
            events = max(out["ok"] * batch, 1)
            redis = [cpu_seconds(n) - r for n, r in zip(nodes, r0, strict=True)]
            return {
                "events_per_s": round(out["rps"] * batch),
                "cpu_us_per_event": round(1e6 * (cpu_seconds(me) - c0) / events, 1),
                # the master's, then the replicas' (all on the same cores here)
                "master_cpu_us_per_event": round(1e6 * redis[0] / events, 1),
                "replicas_cpu_us_per_event": round(1e6 * sum(redis[1:]) / events, 1),
                "failed": out["failed"],
            }

        single = closed(args.single_conns, 1, "s")
        batched = closed(args.batch_conns, args.batch, "b")
        lg_args = ["--mode", "rate", "--rate", str(args.rate), "--seconds", str(args.rate_seconds)]
        rate = loadgen(port, *lg_args, "--conns", "16", "--tag", f"{tag}r")
        latency = {"p50_ms": round(rate["p50_ms"], 3), "p99_ms": round(rate["p99_ms"], 3)}
        latency["failed"] = rate["failed"]
    finally:
        stop_process(shard, 15)
    return {"single": single, "batched": batched, "latency": latency}


def run_level(group: SentinelGroup, level: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every configuration of one level, `args.rounds` times; {label: [one result per round]}."""
    results: dict[str, list[Any]] = {label: [] for label, _ in CONFIGS}
    assert group.master.proc is not None
    master = psutil.Process(group.master.proc.pid)
    for n in range(args.rounds):
        for label, ack in CONFIGS if n % 2 == 0 else CONFIGS[::-1]:
            if level == "shard":
                result = measure_shard(group, ack, args, f"r{n}{label}")
            else:
                coro = ack_store.measure(group.addresses, ack, master, args)
                result = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
            results[label].append(result)
            group.client(group.master.port).flushall()  # the next run starts from the same state
            group.wait_for_replicas(group.master.port, len(group.replicas))
    return results


def summary(results: dict[str, list[Any]]) -> dict[str, Any]:
    """Medians of the rounds per configuration; for each ack 1, its within-round comparisons."""
    out: dict[str, Any] = {}
    for label, rounds in results.items():
        out[label] = {
            f"{phase}_{key}": round(float(statistics.median(r[phase][key] for r in rounds)), 3)
            for phase in PHASES
            for key in rounds[0][phase]
            if key != "failed"
        }
    base = results["ack0"]
    for label, rounds in results.items():
        if label == "ack0":
            continue
        pairs = list(zip(rounds, base, strict=True))

        def median(values: list[float]) -> float:
            return round(float(statistics.median(values)), 3)

        a = out[label]
        for phase in ("single", "batched"):
            a[f"ratio_{phase}"] = median(
                [r[phase]["events_per_s"] / b[phase]["events_per_s"] for r, b in pairs]
            )
        for q in ("p50", "p99"):
            a[f"wait_adds_{q}_ms"] = median(
                [r["latency"][f"{q}_ms"] - b["latency"][f"{q}_ms"] for r, b in pairs]
            )
    return out


def report(level: str, summed: dict[str, Any], args: argparse.Namespace) -> None:
    what = "the shard over HTTP" if level == "shard" else "the store alone, CPU of this process"
    print(f"  {level} level: {what}")
    for label, a in summed.items():
        for phase, name in (("single", "single   "), ("batched", f"batch x{args.batch:<3}")):
            cpu = f"{a[f'{phase}_cpu_us_per_event']:.1f} µs CPU/event"
            if f"{phase}_master_cpu_us_per_event" in a:
                cpu += (
                    f"; master {a[f'{phase}_master_cpu_us_per_event']:.1f}, "
                    f"replicas {a[f'{phase}_replicas_cpu_us_per_event']:.1f}"
                )
            print(
                f"    {label if phase == 'single' else '':<11} {name}"
                f"{a[f'{phase}_events_per_s']:>8,.0f} events/s ({cpu})"
            )
        line = (
            f"    {'':<11} at {args.rate:.0f}/s   p50 {a['latency_p50_ms']:.3f} ms, "
            f"p99 {a['latency_p99_ms']:.3f} ms"
        )
        if "ratio_single" in a:
            line += (
                f"; vs ack0: single {a['ratio_single']}x, batch {a['ratio_batched']}x, WAIT "
                f"adds p50 {a['wait_adds_p50_ms']:+.3f} ms, p99 {a['wait_adds_p99_ms']:+.3f} ms"
            )
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--level", nargs="+", choices=("shard", "store"), default=["shard", "store"]
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="each closed-loop phase")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of every configuration")
    parser.add_argument("--rate", type=float, default=500.0, help="single events/s (latency)")
    parser.add_argument("--rate-seconds", type=float, default=3.0)
    parser.add_argument("--single-conns", type=int, default=32, help="(store: callers)")
    parser.add_argument("--batch-conns", type=int, default=8, help="(store: callers)")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    args.single_workers, args.batch_workers = args.single_conns, args.batch_conns  # ack_store

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as tmp:
        group = SentinelGroup(need("redis-server"), need("redis-sentinel"), Path(tmp))
        try:
            group.start()
            for level in args.level:
                results[level] = run_level(group, level, args)
        finally:
            group.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    summaries = {level: summary(r) for level, r in results.items()}
    out = {
        "summary": summaries,
        "rounds": results,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": load,
    }
    failed = sum(
        run[phase]["failed"]
        for level in results.values()
        for rounds in level.values()
        for run in rounds
        for phase in PHASES
    )
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"ack_bench: 2 replicas, 3 Sentinels, {args.rounds} rounds "
            f"({out['cpu_count']} cores, load avg {load:.2f} at end)"
        )
        for level, summed in summaries.items():
            report(level, summed, args)
        print(f"  failed: {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
