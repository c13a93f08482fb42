"""Polling a real ese-server (and Redis): `/stats` plus incremental `/events?since=`."""

from __future__ import annotations

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
    original_server.stats = {"total": 99, "by_type": {}, "by_subtype": {}, "clients": {},
                             "orders": {"open": 0, "completed": 0}}  # fmt: skip
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is None
    assert state.mode == "list"
    assert state.figures is not None and state.figures.total == 7
    assert original_server.requests == ["/stats", "/events?since=0&limit=1000", "/events"]
