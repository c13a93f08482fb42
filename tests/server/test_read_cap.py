"""GET /events without a query: over the cap, the NEWEST events, marked as truncated."""

from __future__ import annotations

import httpx

from ese_server.store import LEGACY_READ_CAP
from tests.server.conftest import click


def test_plain_get_events_returns_the_newest_events_when_over_the_cap(
    http: httpx.Client,
) -> None:
    assert LEGACY_READ_CAP <= 50_000  # keeps one read's memory well inside the RSS budget
    sent = LEGACY_READ_CAP + 5
    for start in range(0, sent, 1000):
        batch = [click(ts=n, event_id=f"e{n}") for n in range(start, min(start + 1000, sent))]
        assert http.post("/events", json={"events": batch}).status_code == 200
    resp = http.get("/events")
    assert resp.status_code == 200
    assert resp.headers["x-ese-truncated"] == "true"
    assert resp.headers["x-ese-read-cap"] == str(LEGACY_READ_CAP)
    (group,) = resp.json()
    stamps = [e["timestamp"] for e in group["eventLogs"]]
    assert stamps == list(range(5, sent))  # the newest, oldest first


def test_plain_get_events_under_the_cap_is_not_marked(http: httpx.Client) -> None:
    http.post("/event", json=click())
    resp = http.get("/events")
    assert resp.headers["x-ese-truncated"] == "false"
    assert len(resp.json()[0]["eventLogs"]) == 1
    head = http.head("/events")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == resp.headers["content-length"]
