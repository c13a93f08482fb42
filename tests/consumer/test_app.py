"""The Streamlit page, driven by Streamlit's own testing API, against a real ese-server + Redis.

`AppTest` runs the real app script in-process; the fragment runs once per `at.run()`, which
stands for one poll.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ese_consumer.__main__ import APP
from tests.consumer.conftest import OriginalServer
from tests.consumer.seed import CLIENTS, demo_events, seed, stats
from tests.tooling import free_port

pytestmark = pytest.mark.redis


def _app(monkeypatch: pytest.MonkeyPatch, url: str, token: str | None = None) -> AppTest:
    monkeypatch.setenv("ESE_SERVER_URL", url)
    monkeypatch.setenv("ESE_POLL_SECONDS", "2")
    if token is None:
        monkeypatch.delenv("ESE_ANALYTICS_TOKEN", raising=False)
    else:
        monkeypatch.setenv("ESE_ANALYTICS_TOKEN", token)
    return AppTest.from_file(str(APP), default_timeout=30)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _messages(at: AppTest) -> list[str]:
    return [e.value for e in at.error] + [w.value for w in at.warning]


def _expected(doc: dict[str, Any]) -> dict[str, str]:
    """The metric values the page must show for a `/stats` document."""
    by_type = doc["by_type"]
    return {
        "Total events": str(doc["total"]),
        "Click-stream": str(by_type.get("CLICK_STREAM_EVENT", 0)),
        "Order updates": str(by_type.get("ORDER_STATE_UPDATE_EVENT", 0)),
        "Other": str(by_type.get("other", 0)),
        "Open orders": str(doc["orders"]["open"]),
        "Completed orders": str(doc["orders"]["completed"]),
        "Clients": str(len(doc["clients"])),
    }


def test_renders_what_stats_reports(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ese_server_factory(role="analytics", ESE_INGEST_TOKEN="in")
    writer = ese_server_factory(role="ingest", ESE_INGEST_TOKEN="in")
    events = demo_events()
    seed(writer.url, events, token="in")
    doc = stats(server.url)
    assert doc["total"] == len(events)  # the seed landed before the page is checked

    at = _app(monkeypatch, f"{server.url}/events").run()
    assert not at.exception
    assert _messages(at) == []
    assert _metrics(at) == _expected(doc)
    # Distinct values, so a swapped metric cannot pass.
    assert 0 < doc["orders"]["open"] != doc["orders"]["completed"] > 0
    caption = " ".join(c.value for c in at.caption)
    assert "Last successful poll" in caption
    assert "/stats + incremental /events" in caption
    assert f"events in the window: {len(events)}" in caption
    # Events per client, click sub-types, totals by type and by sub-type.
    assert len(at.get("vega_lite_chart")) == 4
    # The two time charts label the demo's 12 s by seconds (not Vega-Lite's ".500").
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    time_axes = [s["encoding"]["x"] for s in specs if s["encoding"]["x"]["type"] == "temporal"]
    assert [x["axis"]["format"] for x in time_axes] == ["%H:%M:%S", "%H:%M:%S"]
    table = at.dataframe[0].value
    assert sorted(table["client"]) == sorted(CLIENTS)
    assert dict(zip(table["client"], table["events"], strict=True)) == doc["clients"]

    # The next poll picks up only the new events (incremental) and the new figures.
    more = demo_events(rounds=2)
    for event in more:
        event["id"] = "again-" + event["id"]
    seed(writer.url, more, token="in")
    at.run()
    assert not at.exception
    assert _metrics(at) == _expected(stats(server.url))
    assert f"events in the window: {len(events) + len(more)}" in " ".join(
        c.value for c in at.caption
    )


def test_server_down_shows_a_message_and_keeps_the_data(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ese_server_factory(role="all")
    seed(server.url, demo_events(rounds=3))
    at = _app(monkeypatch, f"{server.url}/events").run()
    before = _metrics(at)
    assert before["Total events"] == str(stats(server.url)["total"])

    server.stop()
    at.run()
    assert not at.exception
    messages = _messages(at)
    assert len(messages) == 1
    assert messages[0].startswith(f"Cannot reach the server at {server.url}/stats")
    assert "Showing the data of the last successful poll" in messages[0]
    assert _metrics(at) == before


def test_never_reachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, f"http://127.0.0.1:{free_port()}/events").run()
    assert not at.exception
    assert len(at.warning) == 1
    assert at.warning[0].value.startswith("Cannot reach the server")
    assert "No data yet" in at.warning[0].value
    assert [i.value for i in at.info] == ["Waiting for the first successful poll…"]
    assert _metrics(at) == {}


def test_token_401_then_right_token(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ese_server_factory(role="analytics", ESE_ANALYTICS_TOKEN="out")
    at = _app(monkeypatch, f"{server.url}/events").run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("401 Unauthorized")
    assert "ESE_ANALYTICS_TOKEN" in at.error[0].value

    at = _app(monkeypatch, f"{server.url}/events", token="out").run()
    assert not at.exception
    assert _messages(at) == []
    assert _metrics(at)["Total events"] == "0"


def test_ingest_shard_is_403(
    ese_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shard = ese_server_factory(role="ingest")
    at = _app(monkeypatch, f"{shard.url}/events").run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("403 Forbidden")
    assert "analytics shard" in at.error[0].value


def test_original_server_fallback_and_malformed_json(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(monkeypatch, f"{original_server.url}/events").run()
    assert not at.exception
    assert _metrics(at)["Total events"] == "7"
    assert _metrics(at)["Open orders"] == "1"
    assert "plain GET /events list" in " ".join(c.value for c in at.caption)

    original_server.answer = "malformed"
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("Malformed JSON from")
    assert _metrics(at)["Total events"] == "7"

    original_server.answer = "ok"
    at.run()
    assert _messages(at) == []


def test_sidebar_url_change_starts_over(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(monkeypatch, f"http://127.0.0.1:{free_port()}/events").run()
    assert str(at.text_input(key="url").value).endswith("/events")
    assert at.number_input(key="poll_seconds").value == 2
    at.text_input(key="url").set_value(f"{original_server.url}/events").run()
    assert not at.exception
    assert _messages(at) == []
    assert _metrics(at)["Total events"] == "7"


def test_an_infinite_poll_interval_is_a_visible_message(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(monkeypatch, f"{original_server.url}/events")
    monkeypatch.setenv("ESE_POLL_SECONDS", "inf")
    at.run()
    assert not at.exception
    assert any("ESE_POLL_SECONDS='inf'" in w.value for w in at.sidebar.warning)
    assert at.number_input(key="poll_seconds").value == 5
    assert _metrics(at)["Total events"] == "7"


def test_an_unexpected_poll_failure_is_a_message_not_a_traceback(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ese_consumer import source

    real = source.poll

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("surprise")

    monkeypatch.setattr(source, "poll", broken)
    at = _app(monkeypatch, f"{original_server.url}/events").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The poll failed unexpectedly (RuntimeError: surprise); retrying every 2 s."
    ]

    monkeypatch.setattr(source, "poll", real)
    at.run()
    assert not at.exception
    assert _messages(at) == []
    assert _metrics(at)["Total events"] == "7"


def test_an_infinite_event_time_from_the_server_keeps_the_page_working(
    original_server: OriginalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_server.events[0]["eventLogs"][0]["timestamp"] = float("inf")
    at = _app(monkeypatch, f"{original_server.url}/events").run()
    assert not at.exception
    assert _messages(at) == []
    assert _metrics(at)["Total events"] == "7"
    assert len(at.get("vega_lite_chart")) == 4
