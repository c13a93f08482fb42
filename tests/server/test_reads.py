"""Reads: retention trimming, the incremental cursor, /stats after a mixed run."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from tests.server.conftest import click, order


def test_stream_is_trimmed_to_the_retention_window(
    ese_server_factory: Any, rdb: redis.Redis
) -> None:
    shard = ese_server_factory(ESE_RETENTION_SECONDS="1")
    with httpx.Client(base_url=shard.url) as http:
        http.post("/events", json={"events": [click(ts=1), click(ts=2), click(ts=3)]})
        assert rdb.xlen("ese:events") == 3
        time.sleep(1.3)
        # reads already hide events older than the window, even before the next append
        assert http.get("/events").json() == []
        assert http.get("/events", params={"since": "0"}).json()["events"] == []
        http.post("/event", json=click(ts=4))
        assert rdb.xlen("ese:events") == 1  # the append trimmed the old entries
        (group,) = http.get("/events").json()
        assert [e["timestamp"] for e in group["eventLogs"]] == [4]
        stats = http.get("/stats").json()
        assert stats["retention_seconds"] == 1
        assert stats["stream_length"] == 1
        assert stats["total"] == 4  # counters count everything ever ingested


def test_incremental_cursor_pages_through_every_event_once(http: httpx.Client) -> None:
    sent = [click(ts=i, event_id=f"e{i}") for i in range(25)]
    http.post("/events", json={"events": sent[:10]})
    for event in sent[10:]:
        http.post("/event", json=event)
    seen: list[int] = []
    cursor = "0"
    for _ in range(10):
        page = http.get("/events", params={"since": cursor, "limit": 10}).json()
        assert len(page["events"]) <= 10
        seen += [e["timestamp"] for e in page["events"]]
        if not page["events"]:
            assert page["cursor"] == cursor  # nothing new: same cursor back
            break
        cursor = page["cursor"]
    assert seen == list(range(25))
    # new events after the last cursor are exactly what the next read returns
    http.post("/event", json=click(ts=99))
    page = http.get("/events", params={"since": cursor}).json()
    assert [e["timestamp"] for e in page["events"]] == [99]
    # a bare millisecond cursor means "after that millisecond"
    last_ms = page["cursor"].split("-")[0]
    assert http.get("/events", params={"since": last_ms}).json()["events"] == []


def test_cursor_inside_one_millisecond_batch(http: httpx.Client) -> None:
    http.post("/events", json={"events": [click(ts=i) for i in range(6)]})
    first = http.get("/events", params={"since": "0", "limit": 4}).json()
    rest = http.get("/events", params={"since": first["cursor"], "limit": 4}).json()
    assert [e["timestamp"] for e in first["events"] + rest["events"]] == list(range(6))


def test_bad_query_is_400_naming_the_parameter(http: httpx.Client) -> None:
    cases = {
        (("since", "yesterday"),): {"since"},
        (("since", "1-2-3"),): {"since"},
        (("since", "99999999999999999999999"),): {"since"},
        (("limit", "10001"),): {"limit"},
        (("limit", "0"),): {"limit"},
        (("limit", "-5"),): {"limit"},
        (("since", "x"), ("limit", "ten")): {"since", "limit"},
    }
    for params, fields in cases.items():
        resp = http.get("/events", params=params)
        assert resp.status_code == 400, params
        assert {e["field"] for e in resp.json()["errors"]} == fields, params
    assert http.get("/events", params={"limit": 10000}).status_code == 200
    assert (
        http.get("/events", params={"since": "18446744073709551615-18446744073709551615"}).json()[
            "events"
        ]
        == []
    )


def test_stats_after_a_mixed_run(http: httpx.Client) -> None:
    a, b = "10.0.0.1-1", "10.0.0.2-3"
    events = [
        click(ip=a, sub="KEY_PRESS_EVENT"),
        click(ip=a, sub="KEY_PRESS_EVENT"),
        click(ip=b, sub="INPUT_PASSED_EVENT"),
        click(ip=b, sub="BUTTON_CLICK_EVENT", event_id="c1"),
        order("o1", "ORDER_CREATED", ip=a),
        order("o1", "ORDER_ALLOCATED", ip=a),
        order("o1", "ORDER_STARTED", ip=a),
        order("o1", "ORDER_COMPLETED", ip=a),
        order("o2", "ORDER_CREATED", ip=b),
        order("o2", "ORDER_ALLOCATED", ip=b),
        order(3, "ORDER_CREATED", ip=b),  # type: ignore[arg-type]  # integer order ids too
        {"eventType": "SOMETHING_ELSE", "timestamp": 1, "ip": a, "data": {}},
    ]
    http.post("/events", json={"events": events[:6]})
    for event in events[6:]:
        http.post("/event", json=event)
    http.post("/event", json=events[3])  # a retry: not counted again
    http.post("/events", json={"events": [click(ip=a), {"eventType": 1}]})  # rejected: not counted
    stats = http.get("/stats").json()
    assert stats == {
        "total": 12,
        "by_type": {"CLICK_STREAM_EVENT": 4, "ORDER_STATE_UPDATE_EVENT": 7, "other": 1},
        "by_subtype": {
            "KEY_PRESS_EVENT": 2,
            "BUTTON_CLICK_EVENT": 1,
            "INPUT_PASSED_EVENT": 1,
            "ORDER_CREATED": 3,
            "ORDER_ALLOCATED": 2,
            "ORDER_STARTED": 1,
            "ORDER_COMPLETED": 1,
        },
        "clients": {a: 7, b: 5},
        "orders": {"open": 2, "completed": 1},
        "stream_length": 12,
        "retention_seconds": 300,
    }
