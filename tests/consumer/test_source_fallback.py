"""Polling a server without `/stats` (the original demo's), and every error path, over real HTTP."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ese_consumer import source
from tests.consumer.conftest import OriginalServer
from tests.tooling import free_port

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
T1 = datetime(2024, 1, 1, 12, 0, 5, tzinfo=timezone.utc)


def test_falls_back_to_the_plain_list(original_server: OriginalServer) -> None:
    state = source.poll(source.PollState(url=f"{original_server.url}/events"), now=lambda: T0)
    assert state.error is None
    assert state.mode == "list"
    assert state.figures is not None
    assert state.figures.total == 7
    assert (state.figures.orders_open, state.figures.orders_completed) == (1, 1)
    assert state.last_ok == T0
    assert len(state.events) == 7
    # Asked /stats first (404 there), then the plain list.
    assert original_server.requests == ["/stats", "/events"]


def test_a_second_poll_replaces_the_list(original_server: OriginalServer) -> None:
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    original_server.events = original_server.events[:1]
    source.poll(state)
    assert state.figures is not None
    assert state.figures.total == 4
    assert len(state.events) == 4


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (401, "unauthorized", ["401", "ESE_ANALYTICS_TOKEN"]),
        (403, "forbidden", ["403", "analytics shard"]),
        (500, "http", ["HTTP 500", "nope"]),
        (503, "http", ["503", "store"]),
        ("malformed", "malformed", ["Malformed JSON"]),
    ],
)
def test_errors_are_specific_and_keep_the_last_good_data(
    original_server: OriginalServer, answer: str | int, kind: str, words: list[str]
) -> None:
    state = source.poll(source.PollState(url=f"{original_server.url}/events"), now=lambda: T0)
    good = state.figures
    original_server.answer = answer
    source.poll(state, now=lambda: T1)
    assert state.error is not None
    assert state.error.kind == kind
    for word in words:
        assert word in state.error.message
    assert "Traceback" not in state.error.message
    assert state.figures is good
    assert state.last_ok == T0
    assert len(state.events) == 7
    # Recovery at the next poll.
    original_server.answer = "ok"
    source.poll(state, now=lambda: T1)
    assert state.error is None
    assert state.last_ok == T1


def test_unexpected_shape_is_reported(original_server: OriginalServer) -> None:
    original_server.events = {"not": "a list"}  # type: ignore[assignment]
    state = source.poll(source.PollState(url=f"{original_server.url}/events"))
    assert state.error is not None
    assert state.error.kind == "malformed"
    assert "eventLogs" in state.error.message


def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/events"
    state = source.poll(source.PollState(url=url))
    assert state.error is not None
    assert state.error.kind == "unreachable"
    assert state.error.message.startswith("Cannot reach the server at http://127.0.0.1:")
    assert state.figures is None


def test_bad_url_is_an_error_not_an_exception() -> None:
    state = source.poll(source.PollState(url="localhost:2003/events"))
    assert state.error is not None
    assert state.error.kind == "bad_url"


def test_token_is_sent_as_bearer() -> None:
    assert source.auth_headers("s3cret") == {"Authorization": "Bearer s3cret"}
    assert source.auth_headers(None) == {}
