"""Redis at `maxmemory` (policy noeviction): an honest 503 "store full", never a partial batch.

Runs against a real redis-server of its own whose maxmemory each test sets with CONFIG SET.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RedisServer
from tests.server.conftest import click
from tests.tooling import free_port, need_binary

PAD = "x" * 600  # event payloads of ~700 bytes: the stream, not the id claims, fills memory


@pytest.fixture
def small_redis() -> Iterator[RedisServer]:
    """A throw-away redis-server that refuses writes at maxmemory (set per test)."""
    binary = need_binary("redis-server", "apt-get install redis-server")
    server = RedisServer(binary, free_port(), ["--maxmemory-policy", "noeviction"])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def small_rdb(small_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=small_redis.port)
    yield client
    client.close()


def batch(prefix: str, count: int) -> list[dict[str, Any]]:
    events = [click(ip=f"10.9.0.{n % 7}-1", event_id=f"{prefix}-{n}") for n in range(count)]
    for event in events:
        event["data"]["pad"] = PAD
    return events


def claimed(client: redis.Redis, ids: list[str]) -> int:
    """How many of `ids` have an idempotency claim, i.e. were stored."""
    keys: Any = client.keys("ese:ids:*")
    found: set[str] = set()
    for key in keys:
        values: Any = client.hmget(key, ids)
        found.update(i for i, v in zip(ids, values, strict=True) if v is not None)
    return len(found)


def samples(http: httpx.Client) -> dict[str, float]:
    out = {}
    for line in http.get("/metrics").text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def used_memory(client: redis.Redis) -> int:
    info: Any = client.info("memory")
    return int(info["used_memory"])


def test_a_batch_crossing_the_limit_is_stored_whole_and_the_next_is_refused_whole(
    ese_server_factory: Any, small_redis: RedisServer, small_rdb: redis.Redis
) -> None:
    shard = ese_server_factory(REDIS_URL=small_redis.url)
    with httpx.Client(base_url=shard.url, timeout=30) as http:
        limit = used_memory(small_rdb) + 2 * 1024 * 1024
        small_rdb.config_set("maxmemory", limit)
        stored = 0
        crossed = False
        resp = None
        for n in range(20):  # ~700 KiB per batch: the limit is reached within a few
            events = batch(f"fill{n}", 1000)
            resp = http.post("/events", json={"events": events})
            if resp.status_code != 200:
                break
            stored += 1000
            # Under the limit when the script started, over it while it ran: stored whole.
            peak: Any = small_rdb.info("memory")
            crossed = crossed or int(peak["used_memory_peak"]) > limit
            assert small_rdb.xlen("ese:events") == stored
            assert claimed(small_rdb, [e["id"] for e in events]) == 1000
        assert resp is not None and resp.status_code == 503, "the store never filled"
        assert crossed, "no accepted batch went past the limit"
        assert small_rdb.xlen("ese:events") == stored
        assert claimed(small_rdb, [e["id"] for e in events]) == 0

        # Well over the limit now, with a stale order whose removal (an HDEL, which frees
        # memory) would be the script's first write: the refusal must come before anything
        # runs, not at the first XADD.
        small_rdb.config_set("maxmemory", 0)
        small_rdb.hset("ese:orders", "stale-order", "ORDER_CREATED")
        small_rdb.zadd("ese:orders:seen", {"stale-order": 0})
        small_rdb.config_set("maxmemory", used_memory(small_rdb) - 64 * 1024)
        refused = batch("refused", 50)
        resp = http.post("/events", json={"events": refused})
        assert resp.status_code == 503, resp.text[:300]
        assert resp.headers["retry-after"] == "5"
        body = resp.json()
        assert body["message"].startswith("event store full")
        assert "maxmemory" in body["message"] and "nothing was stored" in body["message"]
        assert http.post("/event", json=batch("single", 1)[0]).status_code == 503
        assert small_rdb.xlen("ese:events") == stored
        assert claimed(small_rdb, [e["id"] for e in refused]) == 0
        assert small_rdb.hget("ese:orders", "stale-order") == b"ORDER_CREATED"

        # Reads go on: the store is full, not down.
        assert http.get("/stats").json()["total"] == stored
        assert http.get("/events", params={"limit": 5}).status_code == 200
        assert http.get("/").json()["redis"] == "up"
        metrics = samples(http)
        assert metrics["ese_store_full_total"] == 3.0
        assert metrics["ese_redis_up"] == 1.0
        assert metrics["ese_redis_errors_total"] == 0.0


def test_drill_flood_a_full_store_then_recover_as_the_window_trims(
    ese_server_factory: Any, small_redis: RedisServer, small_rdb: redis.Redis
) -> None:
    retention = 2
    shard = ese_server_factory(REDIS_URL=small_redis.url, ESE_RETENTION_SECONDS=str(retention))
    small_rdb.config_set("maxmemory", used_memory(small_rdb) + 3 * 1024 * 1024)
    acknowledged: list[str] = []
    refused: list[str] = []
    statuses: dict[int, int] = {}
    full_messages = 0
    ok_after_full = 0
    with httpx.Client(base_url=shard.url, timeout=30) as http:
        # Bounded in count and in time: about 5 s of back-to-back batches of 100 events.
        deadline = time.monotonic() + 5
        for n in range(5000):
            if time.monotonic() > deadline:
                break
            events = batch(f"b{n}", 100)
            resp = http.post("/events", json={"events": events})
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            ids = [e["id"] for e in events]
            if resp.status_code == 200:
                acknowledged += ids
                ok_after_full += 1 if refused else 0
            elif resp.status_code == 503:
                refused += ids
                full_messages += resp.json()["message"].startswith("event store full")
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.get(503, 0) >= 1, f"the store never filled: {statuses}"
        assert full_messages == statuses[503], "a 503 that was not 'store full'"
        assert shard.proc.poll() is None
        assert http.get("/").json()["redis"] == "up"

        # Nothing of a refused batch was stored; everything acknowledged was, exactly once.
        assert claimed(small_rdb, refused) == 0
        assert claimed(small_rdb, acknowledged) == len(acknowledged)
        assert http.get("/stats").json()["total"] == len(acknowledged)
        metrics = samples(http)
        assert metrics["ese_store_full_total"] == statuses[503]
        assert metrics["ese_redis_up"] == 1.0 and metrics["ese_redis_errors_total"] == 0.0

        # The window moves on: old events are trimmed and ingest works again, without help.
        recovered = None
        deadline = time.monotonic() + retention + 10
        attempt = 0
        while recovered is None and time.monotonic() < deadline:
            resp = http.post("/events", json={"events": batch(f"after{attempt}", 10)})
            attempt += 1
            if resp.status_code == 200:
                recovered = resp
            else:
                assert resp.status_code == 503, resp.text[:300]
                time.sleep(0.25)
        assert recovered is not None, "ingest did not recover after the retention window"
        maxmemory = small_rdb.config_get("maxmemory")["maxmemory"]
        assert maxmemory is not None and used_memory(small_rdb) < int(maxmemory)
