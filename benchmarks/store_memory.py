"""Redis memory per stored event, and how many events a given `maxmemory` holds.

    python benchmarks/store_memory.py                 # ~3 min on the 2-core dev box
    python benchmarks/store_memory.py --json          # same, machine-readable

Needs the project installed (`pip install -e '.[dev]'`). Starts its own redis-server (no
persistence) and appends events through the shard's own `Store` (the same Lua script as
POST /events, batches of 50), so what is measured is exactly what a shard stores: the stream
entry, the idempotency claim of its id, the /stats counters and the order and client tracking.
Events follow the demo's mix (ese-client's simulation plan: an order life cycle and a click
burst per tick, ids `<run>-<instance>-<seq>`, 4 clients).

Prints, per scenario (with ids, and without ids), the growth of used_memory per event over N
events and the share of the stream and of the id claims (MEMORY USAGE of each key). Then, for
each --maxmemory, fills a Redis with that limit (policy noeviction) until it refuses
writes and reports how many events it held, next to what the per-event figure predicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

import redis

from ese.host.ports import free_port
from ese.host.processes import TimedOut, wait_until
from ese_client.simulation import materialize, plan_ticks
from ese_server.redis_client import RedisOutOfMemory
from ese_server.store import Store
from ese_server.validation import CheckedEvent, check_event

BATCH = 50
IPS = [f"172.18.0.{n}" for n in range(11, 15)]


def start_redis(port: int, maxmemory: str = "0") -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("store_memory: redis-server not found; apt-get install redis-server")
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    cmd += ["no", "--loglevel", "warning", "--maxmemory", maxmemory]
    cmd += ["--maxmemory-policy", "noeviction"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)

    def accepts() -> bool:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True

    try:
        wait_until(accepts, 10, "redis-server accepts connections", 0.05, retry=OSError)
    except TimedOut as exc:
        proc.kill()
        raise SystemExit(f"store_memory: {exc}") from None
    return proc


def demo_events(count: int, with_ids: bool, seed: int = 7) -> list[CheckedEvent]:
    """`count` validated events of the demo's mix, from 4 simulated clients."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out: list[CheckedEvent] = []
    per_client = -(-count // len(IPS))
    for instance, ip in enumerate(IPS):
        ticks = plan_ticks(
            rng=rng, run_id=f"{seed:012x}", instance=instance, limit=per_client, delay_ms=0
        )
        for tick in ticks:
            for planned in (*tick.order, *tick.clicks):
                wire = materialize(planned, f"{ip}-{instance + 1}", now_ms)
                if not with_ids:
                    del wire["id"]
                errors: list[dict[str, str]] = []
                checked = check_event(wire, "", errors)
                assert checked is not None, errors
                out.append(checked)
    rng.shuffle(out)  # clients interleave on a real shard
    return out[:count]


def used_memory(client: redis.Redis) -> int:
    info: Any = client.info("memory")
    return int(info["used_memory"])


def key_bytes(client: redis.Redis, pattern: str) -> int:
    keys: Any = client.keys(pattern)
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)


async def append_all(url: str, events: list[CheckedEvent]) -> int:
    """Append in batches until done or Redis refuses for maxmemory; returns events stored."""
    store = Store(url, retention_seconds=3600)
    stored = 0
    try:
        for start in range(0, len(events), BATCH):
            part = events[start : start + BATCH]
            try:
                await store.append(part)
            except RedisOutOfMemory:
                break
            stored += len(part)
    finally:
        await store.close()
    return stored


def per_event(port: int, count: int, with_ids: bool) -> dict[str, Any]:
    client = redis.Redis(port=port)
    client.flushall()
    events = demo_events(count, with_ids)
    before = used_memory(client)
    stored = asyncio.run(append_all(f"redis://127.0.0.1:{port}/0", events))
    after = used_memory(client)
    stream = key_bytes(client, "ese:events")
    ids = key_bytes(client, "ese:ids:*")
    rest = key_bytes(client, "ese:*") - stream - ids
    client.close()
    payload = sum(len(e.payload) for e in events[:stored]) / stored
    return {
        "events": stored,
        "mean_payload_bytes": round(payload, 1),
        "used_memory_bytes_per_event": round((after - before) / stored, 1),
        "stream_bytes_per_event": round(stream / stored, 1),
        "id_claim_bytes_per_event": round(ids / stored, 1),
        "other_keys_bytes": rest,
        "baseline_used_memory": before,
    }


def fill(maxmemory: str, per_event_bytes: float, chunk: int = 200_000) -> dict[str, Any]:
    """Fill a fresh Redis with `maxmemory` until it refuses writes; count what it held."""
    port = free_port()
    proc = start_redis(port, maxmemory)
    try:
        client = redis.Redis(port=port)
        config: Any = client.config_get("maxmemory")
        limit = int(config["maxmemory"])
        baseline = used_memory(client)
        url = f"redis://127.0.0.1:{port}/0"
        held = 0
        for round_no in range(100):  # bounded: 100 chunks is far more than any limit needs
            events = demo_events(chunk, with_ids=True, seed=1000 + round_no)
            stored = asyncio.run(append_all(url, events))
            held += stored
            if stored < len(events):
                break
        client.close()
    finally:
        proc.terminate()
        proc.wait(15)
    return {
        "maxmemory": maxmemory,
        "maxmemory_bytes": limit,
        "events_held": held,
        "predicted": int((limit - baseline) / per_event_bytes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events per scenario")
    parser.add_argument(
        "--maxmemory", nargs="*", default=["64mb", "256mb"], help="limits to fill (redis units)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    port = free_port()
    proc = start_redis(port)
    try:
        scenarios = {
            "with_ids": per_event(port, args.events, with_ids=True),
            "without_ids": per_event(port, args.events, with_ids=False),
        }
    finally:
        proc.terminate()
        proc.wait(15)
    bytes_per_event = scenarios["with_ids"]["used_memory_bytes_per_event"]
    fills = [fill(limit, bytes_per_event) for limit in args.maxmemory]
    result = {"scenarios": scenarios, "fills": fills}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Redis memory per stored event ({args.events:,} events of the demo's mix)")
    for name, s in scenarios.items():
        print(
            f"  {name:<12} {s['used_memory_bytes_per_event']:>7} B/event used_memory "
            f"(stream {s['stream_bytes_per_event']} B, id claims "
            f"{s['id_claim_bytes_per_event']} B; payload {s['mean_payload_bytes']} B)"
        )
    print("Events a maxmemory holds (noeviction, filled until Redis refused writes)")
    for f in fills:
        print(
            f"  {f['maxmemory']:<8} {f['events_held']:>12,} events "
            f"(predicted from B/event: {f['predicted']:,})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
