"""A shard with ESE_ACK_REPLICAS=1 over HTTP, on a replicated Redis that loses both replicas:
it acknowledges nothing the master alone holds, answers 503 "not replicated" with Retry-After
and what the master holds, and the retries with the same ids, once the replicas are back, are
acknowledged and store each event exactly once. Real processes: the shard (uvicorn), a master,
2 replicas and 3 Sentinels (tests/server/sentinel_group.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ServerHandle
from tests.server.conftest import click, order
from tests.server.sentinel_group import SentinelGroup

pytestmark = pytest.mark.redis


def replicated_shard(ese_server_factory: Any, group: SentinelGroup) -> ServerHandle:
    """A shard that finds the master through the group's Sentinels and needs 1 replica."""
    shard: ServerHandle = ese_server_factory(
        REDIS_URL="redis://127.0.0.1:1/0",  # the host is unused: the Sentinels name the master
        ESE_REDIS_SENTINELS=" ".join(f"{h}:{p}" for h, p in group.addresses),
        ESE_ACK_REPLICAS="1",
        ESE_ACK_TIMEOUT_MS="200",
    )
    deadline = time.monotonic() + 20
    for _ in range(400):  # bounded in count and in time: the monitor sees Redis within a second
        if httpx.get(f"{shard.url}/", timeout=5).json()["redis"] == "up":
            assert " ack-replicas=1" in shard.output() and " master-name=ese" in shard.output()
            return shard
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise AssertionError(f"the shard never reached Redis:\n{shard.output()}")


def post(http: httpx.Client, events: list[dict[str, Any]]) -> httpx.Response:
    """One event alone (POST /event) or a batch (POST /events)."""
    if len(events) == 1:
        return http.post("/event", json=events[0])
    return http.post("/events", json={"events": events})


def ids_on(group: SentinelGroup, port: int) -> list[str]:
    """The event ids in the stream of the node on `port`, in stream order (repeats kept)."""
    entries: Any = group.client(port).xrange("ese:events")
    return [json.loads(fields[b"e"])["id"] for _, fields in entries]


def ingested(http: httpx.Client) -> float:
    """ese_events_ingested_total of the shard, summed over the event types."""
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("ese_events_ingested_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def not_replicated(answer: httpx.Response) -> list[str]:
    """The 503's `stored_ids`, once its status, Retry-After and message are checked."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
    body = answer.json()
    assert body["message"].startswith("not replicated: "), body
    assert "same ids" in body["message"], body
    stored: list[str] = body["stored_ids"]
    return stored


def test_without_replicas_nothing_is_acknowledged_and_the_retries_store_each_event_once(
    ese_server_factory: Any, group: SentinelGroup
) -> None:
    shard = replicated_shard(ese_server_factory, group)
    master = group.client(group.master.port)
    with httpx.Client(base_url=shard.url, timeout=10) as http:
        before = [click(event_id="before-0"), click(event_id="before-1")]
        assert post(http, before).status_code == 200

        for replica in group.replicas:
            replica.stop()
        # No replica confirms: the master stores each append, and the shard refuses to
        # acknowledge it. The ids it holds come back in the body.
        held = [
            [click(event_id="held-0")],
            [click(event_id=f"held-b{n}") for n in range(3)]
            + [order("o1", "ORDER_CREATED", event_id="o1")],
        ]
        for events in held:
            stored = not_replicated(post(http, events))
            assert stored == [e["id"] for e in events]
            assert set(stored) <= set(ids_on(group, group.master.port))
        # The master refuses writes once it counts too few replicas (as the Swarm stack's
        # Redis is configured): nothing is stored, and the body says so.
        master.config_set("min-replicas-to-write", 1)
        refused = [[click(event_id="refused-0")], [click(event_id=f"refused-b{n}") for n in (0, 1)]]
        for events in refused:
            assert not_replicated(post(http, events)) == []
        assert not {e["id"] for batch in refused for e in batch} & set(
            ids_on(group, group.master.port)
        )
        # Every stored event is counted once, as /stats counts it, acknowledged or not.
        stats = http.get("/stats").json()
        assert stats["total"] == 2 + 1 + 4
        assert ingested(http) == stats["total"]

        for replica in group.replicas:
            replica.start()
        group.wait_for_replicas(group.master.port, len(group.replicas))
        # The retries the 503 asks for, with the same ids: acknowledged now.
        for events in held + refused:
            answer = post(http, events)
            assert answer.status_code in (200, 201), answer.text
        # WAIT 1 after the last retry: a replica holds everything the master does.
        everything = sorted(ids_on(group, group.master.port))
        assert any(sorted(ids_on(group, r.port)) == everything for r in group.replicas)

        stats = http.get("/stats").json()
        assert stats["total"] == 2 + 1 + 4 + 1 + 2
        assert ingested(http) == stats["total"]
    ids = ids_on(group, group.master.port)
    expected = {e["id"] for batch in [before, *held, *refused] for e in batch}
    assert len(ids) == len(set(ids)) and set(ids) == expected
