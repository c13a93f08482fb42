"""The ASGI app called directly (no uvicorn, no subprocess), against the real test Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from benchmarks.redis_py_client import RedisPyClient
from ese_server.app import App
from ese_server.asgi import Message
from ese_server.config import Settings
from ese_server.redis_client import Connect, RedisClient
from tests.server.conftest import click, order


@asynccontextmanager
async def running(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """The app started through the ASGI lifespan protocol, Redis seen up, and an HTTP client
    that calls the app directly; shut down through the lifespan protocol at the end."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    lifespan = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        for _ in range(100):  # the monitor marks Redis up within a round or two
            if app.redis_up:
                break
            await asyncio.sleep(0.05)
        assert app.redis_up, "Redis never came up"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shard") as client:
            yield client
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
        await lifespan


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


def sample(client_text: str, name: str) -> float:
    """The value of one sample line `name` (with its labels) of a /metrics text."""
    for line in client_text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


# redis-py: the benchmark's client (benchmarks/redis_py_client.py) must store and read the same.
@pytest.mark.parametrize("connect", [RedisClient, RedisPyClient], ids=["ese", "redis-py"])
def test_ingest_read_and_count_in_process(redis_url: str, connect: Connect) -> None:
    async def scenario() -> None:
        async with running(App(Settings(redis_url=redis_url), connect=connect)) as http:
            health = (await http.get("/")).json()
            assert (health["role"], health["redis"]) == ("all", "up")
            assert (await http.post("/event", json=click(event_id="a"))).status_code == 201
            batch = {"events": [order("o1", "ORDER_CREATED"), click(event_id="a")]}
            stored = (await http.post("/events", json=batch)).json()["events"]
            assert [e.get("id") for e in stored] == [None, "a"]
            assert (await http.post("/event", json={"eventType": "x"})).status_code == 400
            stats = (await http.get("/stats")).json()
            assert stats["total"] == 2 and stats["orders"]["open"] == 1
            page = (await http.get("/events", params={"since": "0"})).json()
            assert len(page["events"]) == 2
            metrics = (await http.get("/metrics")).text
            assert sample(metrics, 'ese_events_ingested_total{type="CLICK_STREAM_EVENT"}') == 1
            assert sample(metrics, 'ese_requests_rejected_total{reason="schema"}') == 1
            assert sample(metrics, "add_event_ping_count") == 2

    run(scenario)


def test_two_apps_in_one_process_keep_separate_metrics(redis_url: str) -> None:
    async def scenario() -> None:
        ingest = App(Settings(redis_url=redis_url, role="ingest"))
        analytics = App(Settings(redis_url=redis_url, role="analytics"))
        assert ingest.metrics.registry is not analytics.metrics.registry
        async with running(ingest) as first, running(analytics) as second:
            for n in range(3):
                resp = await first.post("/event", json=click(event_id=f"e{n}"))
                assert resp.status_code == 201
            assert (await second.post("/event", json=click())).status_code == 403
            assert (await second.get("/stats")).json()["total"] == 3  # same Redis
            one: Any = (await first.get("/metrics")).text
            two: Any = (await second.get("/metrics")).text
        kind = 'ese_events_ingested_total{type="CLICK_STREAM_EVENT"}'
        assert (sample(one, kind), sample(two, kind)) == (3, 0)
        denied = 'ese_requests_rejected_total{reason="forbidden_role"}'
        assert sample(two, denied) == 1
        assert denied not in one
        assert (sample(one, "add_event_ping_count"), sample(two, "add_event_ping_count")) == (3, 1)
        # Both still describe the one process they share.
        assert "process_resident_memory_bytes" in one and "process_resident_memory_bytes" in two

    run(scenario)
