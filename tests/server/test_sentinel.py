"""The store on a replicated Redis: the master found through Sentinel, appends acknowledged only
once replicas hold them, and a failover followed. Real redis-server and redis-sentinel
processes on loopback (tests/server/sentinel_group.py), no mocks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ese_server.redis_client import RedisNotMaster, RedisNotSent, RedisUnavailable
from ese_server.sentinel import Sentinels
from ese_server.store import AppendResult, NotReplicated, Store
from ese_server.validation import CheckedEvent, check_event
from tests.server.conftest import click
from tests.server.sentinel_group import MASTER_NAME, SentinelGroup
from tests.tooling import free_port

pytestmark = pytest.mark.redis

# With Sentinels the URL gives only credentials and database; its host is never used.
URL = "redis://127.0.0.1:1/0"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 120))


def events(prefix: str, count: int) -> list[CheckedEvent]:
    out = []
    for n in range(count):
        errors: list[dict[str, str]] = []
        checked = check_event(click(event_id=f"{prefix}-{n}"), "", errors)
        assert checked is not None, errors
        out.append(checked)
    return out


def stored_ids(group: SentinelGroup, port: int) -> list[str]:
    """The event ids in the stream of the node on `port`, in stream order (repeats kept)."""
    entries: Any = group.client(port).xrange("ese:events")
    return [json.loads(fields[b"e"])["id"] for _, fields in entries]


def connected_to(store: Store) -> tuple[str, int] | None:
    """The one node the store's connections go to (None between connections)."""
    nodes = store.connected_to()
    assert len(nodes) <= 1, nodes
    return nodes.pop() if nodes else None


def holders(group: SentinelGroup, count: int) -> int:
    """How many replicas hold at least `count` stream entries right now."""
    return sum(int(group.client(r.port).xlen("ese:events")) >= count for r in group.replicas)


async def until_stored(store: Store, batch: list[CheckedEvent], seconds: float = 40.0) -> Any:
    """Append `batch` again and again (same ids) until acknowledged: (result, refusals)."""
    refusals: list[str] = []
    deadline = time.monotonic() + seconds
    for _ in range(1000):  # bounded in count and in time
        try:
            return await store.append(batch), refusals
        except RedisUnavailable as exc:
            refusals.append(f"{type(exc).__name__}: {exc}")
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    raise AssertionError(f"never acknowledged; last refusals: {refusals[-3:]}")


def point_sentinels_at(group: SentinelGroup, port: int) -> None:
    """Make every Sentinel monitor the master on `port` (what an operator does by hand)."""
    for sentinel in group.sentinels:
        client = sentinel.client()
        client.execute_command("SENTINEL", "REMOVE", MASTER_NAME)
        client.execute_command("SENTINEL", "MONITOR", MASTER_NAME, "127.0.0.1", port, 2)
        client.execute_command(
            "SENTINEL", "SET", MASTER_NAME, "down-after-milliseconds", group.down_after_ms
        )


def test_the_sentinels_name_the_master_and_one_that_fails_is_skipped(
    group: SentinelGroup,
) -> None:
    dead = ("127.0.0.1", free_port())
    master = ("127.0.0.1", group.master.port)

    async def scenario() -> None:
        locator = Sentinels([dead, *group.addresses], MASTER_NAME)
        assert await locator.master_address() == master
        assert locator.addresses[0] == group.addresses[0]  # the one that answered goes first
        with pytest.raises(RedisNotSent, match="does not know 'other'"):
            await Sentinels(group.addresses, "other").master_address()
        with pytest.raises(RedisNotSent, match=f"{dead[0]}:{dead[1]}"):
            await Sentinels([dead], MASTER_NAME).master_address()

        store = Store(URL, 300, sentinels=[dead, *group.addresses])
        try:
            result = await store.append(events("found", 3))
            assert result.duplicates == [0, 0, 0]
            assert connected_to(store) == master
        finally:
            await store.close()
        assert stored_ids(group, group.master.port) == ["found-0", "found-1", "found-2"]

    run(scenario)


def test_an_append_is_acknowledged_once_replicas_hold_it(group: SentinelGroup) -> None:
    async def scenario() -> None:
        store = Store(URL, 300, sentinels=group.addresses, ack_replicas=1)
        both = Store(URL, 300, sentinels=group.addresses, ack_replicas=2)
        three = Store(URL, 300, sentinels=group.addresses, ack_replicas=3, ack_timeout_ms=100)
        try:
            await store.append(events("one", 1))
            assert holders(group, 1) >= 1
            await store.append(events("batch", 50))
            assert holders(group, 51) >= 1
            await both.append(events("two", 5))
            assert holders(group, 56) == 2

            # Concurrent appends share one WAIT (the connection is open already).
            master = group.client(group.master.port)
            master.config_resetstat()
            await asyncio.gather(*(store.append(events(f"c{n}", 1)) for n in range(20)))
            stats: Any = master.info("commandstats")
            assert stats["cmdstat_wait"]["calls"] == 1, stats["cmdstat_wait"]
            assert holders(group, 76) >= 1

            # More replicas asked for than exist: stored on the master, not acknowledged ...
            batch = events("three", 4)
            with pytest.raises(NotReplicated) as refused:
                await three.append(batch)
            assert refused.value.result is not None
            assert refused.value.result.duplicates == [0, 0, 0, 0]
            assert (refused.value.confirmed, refused.value.wanted) == (2, 3)
            # ... and the retry with the same ids says they were stored already.
            retried: AppendResult = await both.append(batch)
            assert retried.duplicates == [1, 1, 1, 1]
            assert retried.ids == refused.value.result.ids
        finally:
            for each in (store, both, three):
                await each.close()
        assert stored_ids(group, group.master.port).count("three-0") == 1

    run(scenario)


def test_with_no_replica_left_nothing_is_acknowledged(group: SentinelGroup) -> None:
    master = group.client(group.master.port)
    master.config_set("min-replicas-to-write", 1)
    master.config_set("min-replicas-max-lag", 1)

    async def scenario() -> None:
        store = Store(URL, 300, sentinels=group.addresses, ack_replicas=1, ack_timeout_ms=200)
        try:
            await store.append(events("before", 2))
            for replica in group.replicas:
                replica.stop()
            # Every append is refused: first WAIT finds no replica (the events are on the
            # master only), then the master itself refuses writes (NOREPLICAS).
            attempts: list[tuple[list[CheckedEvent], NotReplicated]] = []
            deadline = time.monotonic() + 30
            for n in range(300):  # bounded in count and in time
                batch = events(f"alone{n}", 3)
                with pytest.raises(NotReplicated) as refused:
                    await store.append(batch)
                attempts.append((batch, refused.value))
                if refused.value.result is None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            batch, last = attempts[-1]
            assert last.result is None, "the master never refused writes (NOREPLICAS)"
            on_master = stored_ids(group, group.master.port)
            assert not set(on_master) & {ev.id for ev in batch}  # refused: nothing stored

            group.replicas[0].start()
            group.wait_for_replicas(group.master.port, 1)
            for batch, refusal in attempts:  # the retries the 503 asks for, with the same ids
                result, _ = await until_stored(store, batch, 20)
                stored_before = 0 if refusal.result is None else 1
                assert result.duplicates == [stored_before] * len(batch)
        finally:
            await store.close()
        on_master = stored_ids(group, group.master.port)
        assert len(on_master) == len(set(on_master)) == 2 + 3 * len(attempts)

    run(scenario)


def test_after_the_master_is_killed_the_store_writes_to_the_promoted_replica(
    group: SentinelGroup,
) -> None:
    old = ("127.0.0.1", group.master.port)

    async def scenario() -> None:
        # Both replicas hold what was acknowledged before the kill, whichever is promoted.
        store = Store(URL, 300, sentinels=group.addresses, ack_replicas=2)
        try:
            await store.append(events("before", 10))
            group.kill(group.master)
            store.ack_replicas = 1  # one replica is left to confirm
            _, refusals = await until_stored(store, events("after", 5))
            new = group.wait_for_new_master(old, 30)
            assert connected_to(store) == new
            assert refusals, "no append was refused while the master was gone"
        finally:
            await store.close()
        ids = stored_ids(group, new[1])
        expected = [f"before-{n}" for n in range(10)] + [f"after-{n}" for n in range(5)]
        assert sorted(ids) == sorted(expected)  # all there, none twice

    run(scenario)


def test_a_write_refused_as_readonly_sends_the_store_back_to_the_sentinels(
    group: SentinelGroup,
) -> None:
    old, new = group.master, group.replicas[0]

    async def scenario() -> None:
        store = Store(URL, 300, sentinels=group.addresses)
        try:
            await store.append(events("before", 1))
            # The master is demoted behind the Sentinels' back; the store's connection stays.
            group.client(new.port).execute_command("REPLICAOF", "NO", "ONE")
            group.client(old.port).execute_command("REPLICAOF", "127.0.0.1", new.port)
            with pytest.raises(RedisNotMaster, match="READONLY"):
                await store.append(events("refused", 1))
            assert connected_to(store) is None
            # It asks the Sentinels again; they still name the old node, and ROLE says no.
            with pytest.raises(RedisNotSent, match="not the master"):
                await store.append(events("refused", 1))
            point_sentinels_at(group, new.port)
            await until_stored(store, events("after", 1), 20)
            assert connected_to(store) == ("127.0.0.1", new.port)
        finally:
            await store.close()
        assert stored_ids(group, new.port) == ["before-0", "after-0"]

    run(scenario)


def test_the_store_leaves_a_master_the_sentinels_no_longer_name(group: SentinelGroup) -> None:
    """A split brain: the old master still takes writes, the Sentinels name another node."""
    old, new = group.master, group.replicas[0]

    async def scenario() -> None:
        store = Store(URL, 300, sentinels=group.addresses)
        try:
            await store.append(events("before", 1))
            group.client(new.port).execute_command("REPLICAOF", "NO", "ONE")
            point_sentinels_at(group, new.port)
            deadline = time.monotonic() + 15
            for _ in range(300):  # bounded: the store asks the Sentinels every second
                if connected_to(store) == ("127.0.0.1", new.port):
                    break
                if time.monotonic() > deadline:
                    break
                await store.stream_length()  # any command reconnects after leaving
                await asyncio.sleep(0.1)
            assert connected_to(store) == ("127.0.0.1", new.port)
            await store.append(events("after", 1))
        finally:
            await store.close()
        assert stored_ids(group, new.port) == ["before-0", "after-0"]
        assert stored_ids(group, old.port) == ["before-0"]  # nothing more went to the old one

    run(scenario)
