"""Polling a real ese-server (and Redis): `/stats` plus incremental `/events?since=`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from ese_consumer import source
from ese_consumer.figures import figures_from_stats
from tests.consumer.conftest import OriginalServer
from tests.consumer.seed import demo_events, seed, stats

pytestmark = pytest.mark.redis


def test_incremental_polls_fetch_only_new_events(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ese_server_factory(role="all")
    first = demo_events(rounds=4)
    seed(server.url, first)
    # Small pages, so one poll needs several requests and the cursor is followed.
    monkeypatch.setattr(source, "PAGE_LIMIT", 50)
    state = source.poll(source.PollState(url=f"{server.url}/events"))
    assert state.error is None
    assert state.mode == "stats"
    assert state.figures == figures_from_stats(stats(server.url))
    assert [e["id"] for e in state.events] == [e["id"] for e in first]
    cursor = state.cursor
    assert cursor != "0"

    source.poll(state)
    assert len(state.events) == len(first)  # nothing new, nothing duplicated
    assert state.cursor == cursor

    more = [{**e, "id": "more-" + e["id"]} for e in demo_events(rounds=1)]
    seed(server.url, more)
    source.poll(state)
    assert [e["id"] for e in state.events][-len(more) :] == [e["id"] for e in more]
    assert len(state.events) == len(first) + len(more)
    assert state.figures is not None and state.figures.total == len(first) + len(more)


def test_a_cursor_the_server_rejects_starts_over(
    ese_server_factory: Callable[..., Any],
) -> None:
    server = ese_server_factory(role="all")
    events = demo_events(rounds=1)
    seed(server.url, events)
    state = source.PollState(url=f"{server.url}/events", mode="stats", cursor="not-a-cursor")
    state.events.append({"id": "stale"})
    source.poll(state)
    assert state.error is None
    assert [e["id"] for e in state.events] == [e["id"] for e in events]


def test_stats_without_since_support_uses_the_list(original_server: OriginalServer) -> None:
    original_server.stats = {
        "total": 99,
        "by_type": {},
        "by_subtype": {},
        "clients": {},
        "orders": {"open": 0, "completed": 0},
    }
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is None
    assert state.mode == "list"
    assert state.figures is not None and state.figures.total == 7
    assert original_server.requests == ["/stats", "/events?since=0&limit=1000", "/events"]


def test_a_large_backlog_starts_near_the_recent_end(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: a poll reads at most 2 pages of 100 events; the backlog holds 500 older
    # events, then (2.5 s later by the server's clock) 60 recent ones.
    monkeypatch.setattr(source, "PAGE_LIMIT", 100)
    monkeypatch.setattr(source, "MAX_PAGES", 2)
    monkeypatch.setattr(source, "FIRST_WINDOW_MS", 1000)
    server = ese_server_factory(role="all")
    old = [{**e, "id": f"old-{n}"} for n, e in enumerate(demo_events(rounds=30))][:500]
    seed(server.url, old)
    time.sleep(2.5)
    recent = [{**e, "id": f"new-{n}"} for n, e in enumerate(demo_events(rounds=3))][:60]
    seed(server.url, recent)

    state = source.poll(source.PollState(url=f"{server.url}/events"))
    assert state.error is None, state.error
    assert state.figures is not None and state.figures.total == 560  # totals: all of them
    # The charts' events are the newest ones, not the oldest 200 of the backlog.
    assert [e["id"] for e in state.events] == [e["id"] for e in recent]
    assert state.skipped

    # Later polls go on incrementally from there.
    later = [{**e, "id": f"later-{n}"} for n, e in enumerate(demo_events(rounds=1))][:10]
    seed(server.url, later)
    source.poll(state)
    assert state.error is None
    assert [e["id"] for e in state.events] == [e["id"] for e in recent + later]


def test_a_small_backlog_is_read_from_the_oldest_event(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "PAGE_LIMIT", 100)
    monkeypatch.setattr(source, "MAX_PAGES", 2)
    server = ese_server_factory(role="all")
    events = [{**e, "id": f"e-{n}"} for n, e in enumerate(demo_events(rounds=12))][:150]
    seed(server.url, events)
    state = source.poll(source.PollState(url=f"{server.url}/events"))
    assert state.error is None
    assert [e["id"] for e in state.events] == [e["id"] for e in events]
    assert not state.skipped
