"""/stats orders and clients: completion is final, and both are bounded to a horizon."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from tests.server.conftest import click, order


def test_completed_order_stays_completed_when_an_older_state_arrives_late(
    http: httpx.Client,
) -> None:
    # The two ingest shards (or a client's retry) can deliver COMPLETED before STARTED.
    assert http.post("/event", json=order("o1", "ORDER_COMPLETED", ts=4)).status_code == 201
    assert http.post("/event", json=order("o1", "ORDER_STARTED", ts=3)).status_code == 201
    http.post(
        "/events", json={"events": [order("o2", "ORDER_COMPLETED"), order("o2", "ORDER_CREATED")]}
    )
    http.post("/event", json=order("o3", "ORDER_CREATED"))
    http.post("/event", json=order("o3", "ORDER_COMPLETED"))
    http.post("/event", json=order("o4", "ORDER_ALLOCATED"))
    assert http.get("/stats").json()["orders"] == {"open": 1, "completed": 3}


def test_orders_and_clients_are_tracked_over_the_retention_window_only(
    ese_server_factory: Any, rdb: redis.Redis
) -> None:
    shard = ese_server_factory(ESE_RETENTION_SECONDS="1")
    with httpx.Client(base_url=shard.url, timeout=10) as http:
        old = [order("a", "ORDER_CREATED", ip="old-1"), order("b", "ORDER_COMPLETED", ip="old-2")]
        http.post("/events", json={"events": [*old, click(ip="old-3")]})
        assert http.get("/stats").json()["orders"] == {"open": 1, "completed": 1}
        time.sleep(1.3)
        http.post("/event", json=order("c", "ORDER_CREATED", ip="new-1"))
        stats = http.get("/stats").json()
    assert stats["orders"] == {"open": 1, "completed": 0}
    assert stats["clients"] == {"new-1": 1}
    assert stats["total"] == 4  # totals stay cumulative
    assert rdb.hkeys("ese:orders") == [b"c"]
    assert rdb.zcard("ese:orders:seen") == 1
    assert rdb.hkeys("ese:stats:client") == [b"new-1"]
    assert rdb.zcard("ese:stats:client:seen") == 1


def test_tracked_orders_are_capped_least_recently_seen_first(http: httpx.Client) -> None:
    from ese_server.store import MAX_TRACKED_ORDERS

    for start in range(0, MAX_TRACKED_ORDERS + 1000, 1000):
        batch = [order(f"o{n}", "ORDER_CREATED") for n in range(start, start + 1000)]
        assert http.post("/events", json={"events": batch}).status_code == 200
    http.post("/event", json=order("o0", "ORDER_COMPLETED"))  # evicted long ago: a new order
    orders = http.get("/stats").json()["orders"]
    assert orders == {"open": MAX_TRACKED_ORDERS - 1, "completed": 1}
