"""Fixtures and payload builders for the ese-server tests (real redis-server, real shard)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import ServerHandle
from tests.server.sentinel_group import SentinelGroup
from tests.tooling import need_binary


def click(
    ip: str = "10.1.2.3-1",
    ts: int = 1706000000123,
    sub: str = "BUTTON_CLICK_EVENT",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A click-stream event exactly as the original demo's client sends it."""
    event: dict[str, Any] = {
        "eventType": "CLICK_STREAM_EVENT",
        "timestamp": ts,
        "ip": ip,
        "data": {"event": sub},
    }
    if event_id is not None:
        event["id"] = event_id
    return event


def order(
    order_id: str,
    state: str,
    ip: str = "10.1.2.3-1",
    ts: int = 1706000000123,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An order-state update exactly as the original demo's client sends it."""
    event: dict[str, Any] = {
        "eventType": "ORDER_STATE_UPDATE_EVENT",
        "timestamp": ts,
        "ip": ip,
        "data": {"orderId": order_id, "state": state, "timestamp": ts},
    }
    if event_id is not None:
        event["id"] = event_id
    return event


@pytest.fixture
def shard(ese_server_factory: Any) -> ServerHandle:
    """One shard with role `all`, no tokens, default limits."""
    return ese_server_factory(role="all")


@pytest.fixture
def http(shard: ServerHandle) -> Iterator[httpx.Client]:
    """An HTTP client bound to the `shard` fixture."""
    with httpx.Client(base_url=shard.url, timeout=10) as client:
        yield client


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    """A plain Redis client on the test database, to check what was really stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def stream_entries(client: redis.Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of the event stream, as (stream id, fields)."""
    entries: Any = client.xrange("ese:events")
    return list(entries)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A master, 2 replicas and 3 Sentinels (quorum 2, down after 1 s), stopped at the end."""
    redis_server = need_binary("redis-server", "apt-get install redis-server")
    redis_sentinel = need_binary("redis-sentinel", "apt-get install redis-sentinel")
    replicated = SentinelGroup(redis_server, redis_sentinel, tmp_path)
    try:
        replicated.start()
        yield replicated
    finally:
        replicated.stop()
