"""Benchmark one ese-server shard on a real Redis, on loopback, in one bounded run.

    python benchmarks/server_bench.py            # ~55 s on the 2-core dev box
    python benchmarks/server_bench.py --json     # same, machine-readable
    python benchmarks/server_bench.py --redis-client ese redis-py   # both clients, ~2 min

Starts its own redis-server (no persistence) and one shard (role all, default settings:
validation, idempotency ids on every event, /stats counters and metrics all on), then prints:
  - redis-benchmark's XADD rate (the ceiling: plain appends, no script, no HTTP);
  - single-event requests/s (POST /event, closed loop, keep-alive connections);
  - batched events/s (POST /events with 50 events per request);
  - p50/p99 latency at a fixed 500 requests/s (open loop; latency from the scheduled send);
  - a read phase on the events just written: GET /stats, GET /events?since= paging (10,000
    per page) and plain GET /events (newest 50,000 of the window), from concurrent readers;
  - the shard's PEAK RSS over the whole run (sampled every 100 ms, and the kernel's
    high-water mark VmHWM where /proc has it), its RSS at the end, and the CPU seconds the
    shard and Redis used per phase.
The load generator (benchmarks/loadgen.py) runs as a separate process.

`--redis-client redis-py` runs the shard on redis-py's asyncio client instead of the project's
own (benchmarks/redis_py_client.py injects it; redis-py is a dev dependency), to measure what
the own client is worth; give both names to measure both in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from ese.host.ports import free_port
from ese.host.processes import TimedOut, stop_process, wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# How to start a shard on each Redis client: the server itself, or the benchmark's launcher
# that injects redis-py's client into it.
SHARD_COMMANDS = {
    "ese": ["-m", "ese_server"],
    "redis-py": [str(HERE / "redis_py_client.py")],
}


def wait_for(check: Any, what: str, timeout: float = 20.0) -> None:
    try:
        wait_until(check, timeout, f"{what} answers", 0.1, retry=OSError)
    except TimedOut as exc:
        raise SystemExit(f"server_bench: {exc}") from None


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), 0.2):
        return True


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(
            f"server_bench: {binary} not found; install it (apt-get install redis-server)"
        )
    return path


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def redis_benchmark_xadd(port: int, payload: str) -> dict[str, float]:
    """redis-benchmark XADD rates: one command per round trip, and pipelined by 50."""
    out: dict[str, float] = {}
    for label, pipeline in (("xadd_rps", "1"), ("xadd_pipelined50_rps", "50")):
        cmd = [need("redis-benchmark"), "-h", "127.0.0.1", "-p", str(port), "-c", "32"]
        cmd += [
            "-n",
            "300000",
            "-P",
            pipeline,
            "-q",
            "XADD",
            "bench:ceiling",
            "*",
            "ip",
            "10.0.0.1-1",
        ]
        cmd += ["e", payload]
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        # e.g. "XADD bench:ceiling * ...: 98039.22 requests per second, p50=0.175 msec"
        rate = text.rsplit("requests per second", 1)[0].replace("\r", "\n").split()[-1]
        out[label] = float(rate)
    return out


def loadgen(port: int, *args: str) -> dict[str, float]:
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"server_bench: load generator failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


class PeakRss:
    """Samples a process's RSS every 100 ms in a thread; `.peak()` also reads VmHWM."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.max_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.max_rss = max(self.max_rss, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.1)

    def high_water_mark(self) -> int:
        """VmHWM (peak RSS kept by the kernel) in bytes, 0 where /proc has none."""
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def peak(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return max(self.max_rss, self.high_water_mark())


def read_phase(base: str, seconds: float, readers: int) -> dict[str, float]:
    """Concurrent readers for `seconds` (bounded): each pages GET /events?since= (limit
    10,000) through the stream, and reads GET /stats and plain GET /events in between."""
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    out = {"stats": 0, "pages": 0, "page_events": 0, "window_reads": 0, "failed": 0}
    out_bytes = {"window_bytes_max": 0}

    def fetch(url: str) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return bytes(resp.read())
        except OSError:
            with lock:
                out["failed"] += 1
            return None

    def reader(n: int) -> None:
        cursor = "0"
        for i in range(100_000):  # bounded in count, and in time by stop_at
            if time.monotonic() > stop_at:
                return
            if i % 10 == n % 10 and fetch(f"{base}/stats") is not None:
                with lock:
                    out["stats"] += 1
            if i % 25 == 3 + n:
                body = fetch(f"{base}/events")
                if body is not None:
                    with lock:
                        out["window_reads"] += 1
                        out_bytes["window_bytes_max"] = max(
                            out_bytes["window_bytes_max"], len(body)
                        )
            body = fetch(f"{base}/events?since={cursor}&limit=10000")
            if body is None:
                continue
            page = json.loads(body)
            cursor = page["cursor"] if page["events"] else "0"  # wrap around at the end
            with lock:
                out["pages"] += 1
                out["page_events"] += len(page["events"])

    started = time.monotonic()
    with ThreadPoolExecutor(readers) as pool:
        list(pool.map(reader, range(readers)))
    elapsed = time.monotonic() - started
    return {
        **out,
        "window_bytes_max": out_bytes["window_bytes_max"],
        "seconds": round(elapsed, 2),
        "page_events_per_s": round(out["page_events"] / elapsed),
    }


def bench_shard(
    redis_port: int, redis_proc: subprocess.Popen[bytes], client: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Every phase against one fresh shard that uses the Redis client `client`."""
    subprocess.run(
        [need("redis-cli"), "-p", str(redis_port), "FLUSHALL"], capture_output=True, timeout=30
    )
    shard_port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SERVER_PORT": str(shard_port),
            "ESE_ROLE": "all",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "ESE_HOST": "127.0.0.1",
        }
    )
    result: dict[str, Any] = {"redis_client": client}
    shard = subprocess.Popen(
        [sys.executable, *SHARD_COMMANDS[client]],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{shard_port}"
        wait_for(lambda: get_json(f"{base}/")["redis"] == "up", "ese-server")
        shard_ps, redis_ps = psutil.Process(shard.pid), psutil.Process(redis_proc.pid)
        rss = PeakRss(shard_ps)

        def phase(name: str, *lg_args: str) -> dict[str, float]:
            c0, r0 = cpu_seconds(shard_ps), cpu_seconds(redis_ps)
            out = loadgen(shard_port, *lg_args)
            out["shard_cpu_s"] = round(cpu_seconds(shard_ps) - c0, 2)
            out["redis_cpu_s"] = round(cpu_seconds(redis_ps) - r0, 2)
            result[name] = out
            return out

        phase("warmup", "--seconds", "1", "--conns", "8", "--tag", "warm")
        single = phase(
            "single",
            "--seconds",
            str(args.seconds),
            "--conns",
            str(args.single_conns),
            "--tag",
            "s",
        )
        batch = phase(
            "batched",
            "--seconds",
            str(args.seconds),
            "--conns",
            str(args.batch_conns),
            "--batch",
            str(args.batch),
            "--tag",
            "b",
        )
        batch["events_per_s"] = batch["rps"] * args.batch
        # CPU per unit of work: unlike the rates, it hardly moves when other jobs share the
        # cores, so it compares two clients fairly on a busy machine.
        single["shard_cpu_us_per_req"] = round(1e6 * single["shard_cpu_s"] / single["ok"], 1)
        batch["shard_cpu_us_per_event"] = round(
            1e6 * batch["shard_cpu_s"] / (batch["ok"] * args.batch), 1
        )
        latency = phase(
            "latency",
            "--mode",
            "rate",
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.rate_seconds),
            "--conns",
            "16",
            "--tag",
            "r",
        )
        stats = get_json(f"{base}/stats")
        c0, r0 = cpu_seconds(shard_ps), cpu_seconds(redis_ps)
        reads = read_phase(base, args.read_seconds, args.readers)
        reads["shard_cpu_s"] = round(cpu_seconds(shard_ps) - c0, 2)
        reads["redis_cpu_s"] = round(cpu_seconds(redis_ps) - r0, 2)
        result["reads"] = reads
        result["shard_rss_mib"] = round(shard_ps.memory_info().rss / 2**20, 1)
        result["shard_peak_rss_mib"] = round(rss.peak() / 2**20, 1)
        result["stored_total"] = stats["total"]
        result["expected_total"] = (
            result["warmup"]["ok"]
            + single["ok"]
            + batch["ok"] * args.batch
            + latency["requests"]
            - latency["failed"]
        )
        result["failed"] = single["failed"] + batch["failed"] + latency["failed"] + reads["failed"]
    finally:
        stop_process(shard, 15)
    return result


def print_shard(r: dict[str, Any], args: argparse.Namespace) -> None:
    single, batch, latency, reads = r["single"], r["batched"], r["latency"], r["reads"]
    print(f"  shard with Redis client {r['redis_client']!r}")
    print(
        f"    single-event POST /event       {single['rps']:>10,.0f} req/s  "
        f"(shard {single['shard_cpu_s']} CPU-s = {single['shard_cpu_us_per_req']} µs/req, "
        f"redis {single['redis_cpu_s']} CPU-s)"
    )
    print(
        f"    batched POST /events (x{args.batch})   {batch['events_per_s']:>10,.0f} events/s "
        f"({batch['rps']:,.0f} req/s; shard {batch['shard_cpu_s']} CPU-s = "
        f"{batch['shard_cpu_us_per_event']} µs/event, redis {batch['redis_cpu_s']} CPU-s)"
    )
    print(
        f"    latency at {args.rate:.0f} req/s           p50 {latency['p50_ms']:.2f} ms, "
        f"p99 {latency['p99_ms']:.2f} ms, max {latency['max_ms']:.2f} ms"
    )
    print(
        f"    reads ({args.readers} readers, {reads['seconds']} s)       "
        f"{reads['page_events_per_s']:>10,} events/s paged by 10,000 "
        f"({reads['pages']} pages, {reads['stats']} GET /stats, {reads['window_reads']} plain "
        f"GET /events of up to {reads['window_bytes_max'] / 2**20:.1f} MiB)"
    )
    print(
        f"    shard RSS peak (whole run)     {r['shard_peak_rss_mib']:>10} MiB "
        f"(at the end {r['shard_rss_mib']} MiB)"
    )
    print(
        f"    failed requests: {r['failed']}; stored events {r['stored_total']:,} "
        f"(expected {r['expected_total']:,})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="length of each throughput phase"
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="fixed rate for the latency phase"
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--single-conns", type=int, default=32)
    parser.add_argument("--batch-conns", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--read-seconds", type=float, default=8.0, help="length of the read phase")
    parser.add_argument("--readers", type=int, default=4, help="concurrent readers")
    parser.add_argument(
        "--redis-client",
        nargs="+",
        choices=tuple(SHARD_COMMANDS),
        default=["ese"],
        help="the shard's Redis client: the project's own (ese) and/or redis-py's asyncio\n"
        "client; each gets a fresh shard and every phase, one after the other",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    redis_port = free_port()
    redis_cmd = [need("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis_cmd += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    result: dict[str, Any] = {}
    redis_proc = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(redis_port), "redis-server")
        payload = (
            '{"eventType":"CLICK_STREAM_EVENT","timestamp":1706000000000,"ip":"10.0.0.1-1",'
            '"data":{"event":"KEY_PRESS_EVENT"},"id":"bench-00000001-1"}'
        )
        result.update(redis_benchmark_xadd(redis_port, payload))
        result["shards"] = [
            bench_shard(redis_port, redis_proc, client, args) for client in args.redis_client
        ]
        result["cpu_count"] = os.cpu_count()
        result["loadavg_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    finally:
        stop_process(redis_proc, 15)

    ok = all(
        r["failed"] == 0 and r["stored_total"] == r["expected_total"] for r in result["shards"]
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    print(
        f"ese-server benchmark ({result['cpu_count']} cores, "
        f"load avg {result['loadavg_1m']:.2f} at end)"
    )
    print(
        f"  redis-benchmark XADD (ceiling)   {result['xadd_rps']:>10,.0f} cmd/s  "
        f"({result['xadd_pipelined50_rps']:,.0f} cmd/s pipelined by 50)"
    )
    for shard in result["shards"]:
        print_shard(shard, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
