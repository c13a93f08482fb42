"""A poll never raises and never half-updates its state: odd data becomes a message, and the
next good poll recovers (a fake server with `/stats` and cursors, over real HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from ese_consumer import source
from tests.consumer.conftest import OriginalServer

NOW_MS = 1_706_000_000_000

STATS = {
    "total": 2,
    "by_type": {"CLICK_STREAM_EVENT": 2},
    "by_subtype": {},
    "clients": {"a-1": 2},
    "orders": {"open": 0, "completed": 0},
    "stream_length": 2,
    "retention_seconds": 3600,
}


def _click(event_id: str, timestamp: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "eventType": "CLICK_STREAM_EVENT",
        "timestamp": timestamp,
        "ip": "a-1",
        "data": {"event": "KEY_PRESS_EVENT"},
    }


def _server(original_server: OriginalServer, events: list[dict[str, Any]], cursor: str) -> None:
    original_server.stats = STATS
    original_server.page = {"events": events, "cursor": cursor}


def test_an_infinite_timestamp_does_not_poison_the_cursor(
    original_server: OriginalServer,
) -> None:
    # Python's json reads `Infinity`; an event time of inf broke the retention trim for good.
    _server(original_server, [_click("e1", NOW_MS), _click("e2", float("inf"))], "5-0")
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is None, state.error
    assert state.mode == "stats" and state.cursor == "5-0"
    assert [e["id"] for e in state.events] == ["e1", "e2"]

    _server(original_server, [_click("e3", NOW_MS + 1)], "6-0")
    source.poll(state)
    assert state.error is None, state.error
    assert state.cursor == "6-0"
    assert [e["id"] for e in state.events] == ["e1", "e2", "e3"]


def test_a_failure_late_in_the_poll_changes_nothing_and_the_next_poll_recovers(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _server(original_server, [_click("e1", NOW_MS)], "5-0")
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is None
    good = (state.cursor, list(state.events), state.figures, state.last_ok)

    real = source._trimmed

    def broken(*args: Any) -> Any:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(source, "_trimmed", broken)
    _server(original_server, [_click("e2", NOW_MS + 1)], "6-0")
    source.poll(state)
    assert state.error is not None and state.error.kind == "malformed"
    assert "OverflowError" in state.error.message
    assert (state.cursor, list(state.events), state.figures, state.last_ok) == good

    monkeypatch.setattr(source, "_trimmed", real)
    source.poll(state)
    assert state.error is None
    assert state.cursor == "6-0"
    assert [e["id"] for e in state.events] == ["e1", "e2"]


def test_a_broken_content_encoding_is_a_message(original_server: OriginalServer) -> None:
    # httpx raises DecodingError (not a TransportError) for a body that is not the gzip it says.
    original_server.raw = (
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        b"this is not gzip",
    )
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is not None
    assert state.error.kind == "malformed"
    assert "decode" in state.error.message.lower()

    original_server.raw = None
    source.poll(state)
    assert state.error is None and state.figures is not None and state.figures.total == 7


def test_a_token_http_cannot_carry_is_a_message(original_server: OriginalServer) -> None:
    state = source.poll(source.PollState(url=f"{original_server.url}/events", token="schlüssel"))
    assert state.error is not None
    assert state.error.kind == "bad_url"
    assert "ESE_ANALYTICS_TOKEN" in state.error.message and "ASCII" in state.error.message
