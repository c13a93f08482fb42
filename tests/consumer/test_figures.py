"""Unit tests of the consumer's pure parts: figures, settings, URL derivation, command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ese_consumer import __main__ as cli
from ese_consumer import charts, config, figures
from ese_consumer.source import DEFAULT_URL, PollError, endpoints
from tests.consumer.original import BASE_MS, original_events


def test_flatten_original_list_inherits_the_group_ip() -> None:
    events = figures.flatten_event_list(original_events())
    assert len(events) == 7
    assert [e["ip"] for e in events].count("10.0.0.6-1") == 3


@pytest.mark.parametrize(
    "payload",
    [{"ip": "x", "eventLogs": []}, [{"ip": "x"}], [{"ip": "x", "eventLogs": [1]}], "[]"],
)
def test_flatten_rejects_other_shapes(payload: Any) -> None:
    with pytest.raises(figures.ShapeError):
        figures.flatten_event_list(payload)


def test_figures_from_the_original_list() -> None:
    result = figures.figures_from_events(figures.flatten_event_list(original_events()))
    assert result.total == 7
    assert result.by_type == {
        "CLICK_STREAM_EVENT": 3,
        "ORDER_STATE_UPDATE_EVENT": 3,
        "other": 1,
    }
    assert result.by_subtype == {
        "BUTTON_CLICK_EVENT": 1,
        "KEY_PRESS_EVENT": 1,
        "INPUT_PASSED_EVENT": 1,
        "ORDER_CREATED": 2,
        "ORDER_COMPLETED": 1,
    }
    assert result.clients == {"10.0.0.5-1": 4, "10.0.0.6-1": 3}
    # o-1 completed, o-2 only created
    assert (result.orders_open, result.orders_completed) == (1, 1)


def test_completion_counts_whatever_the_arrival_order() -> None:
    def order(state: str) -> dict[str, Any]:
        return {"eventType": "ORDER_STATE_UPDATE_EVENT", "data": {"orderId": 7, "state": state}}

    result = figures.figures_from_events([order("ORDER_COMPLETED"), order("ORDER_STARTED")])
    assert (result.orders_open, result.orders_completed) == (0, 1)


STATS = {
    "total": 12,
    "by_type": {"CLICK_STREAM_EVENT": 8, "ORDER_STATE_UPDATE_EVENT": 4},
    "by_subtype": {"BUTTON_CLICK_EVENT": 8, "ORDER_CREATED": 4},
    "clients": {"a-1": 12},
    "orders": {"open": 3, "completed": 1},
    "stream_length": 12,
    "retention_seconds": 300,
}


def test_figures_from_stats() -> None:
    result = figures.figures_from_stats(STATS)
    assert result.total == 12
    assert result.by_type == {"CLICK_STREAM_EVENT": 8, "ORDER_STATE_UPDATE_EVENT": 4, "other": 0}
    assert (result.orders_open, result.orders_completed) == (3, 1)
    assert (result.stream_length, result.retention_seconds) == (12, 300)


@pytest.mark.parametrize(
    "broken",
    [[], {**STATS, "total": "12"}, {**STATS, "orders": None}, {**STATS, "clients": {"a": 1.5}}],
)
def test_figures_from_stats_rejects_other_shapes(broken: Any) -> None:
    with pytest.raises(figures.ShapeError):
        figures.figures_from_stats(broken)


def test_parse_page() -> None:
    events, cursor = figures.parse_page({"events": [{"ip": "a"}], "cursor": "17-0"})
    assert (events, cursor) == ([{"ip": "a"}], "17-0")
    with pytest.raises(figures.ShapeError):
        figures.parse_page({"events": [], "cursor": 5})


def test_event_time_is_client_time_unless_its_clock_is_off() -> None:
    assert figures.event_time_ms({"timestamp": BASE_MS, "server_ts": BASE_MS + 900}) == BASE_MS
    skewed = {"timestamp": BASE_MS - figures.CLOCK_SKEW_MS - 1, "server_ts": BASE_MS}
    assert figures.event_time_ms(skewed) == BASE_MS
    assert figures.event_time_ms({"timestamp": 5}) == 5
    assert figures.event_time_ms({"timestamp": True, "server_ts": 0}) is None


def test_a_single_bucket_gets_an_empty_one_before_it() -> None:
    events = [{"ip": "a", "timestamp": BASE_MS}, {"ip": "a", "timestamp": BASE_MS + 10}]
    frame = figures.events_per_client(events)
    assert frame["a"].tolist() == [0, 2]


def test_bucket_width_keeps_charts_readable() -> None:
    assert figures.bucket_seconds(0) == 1
    assert figures.bucket_seconds(120) == 1
    assert figures.bucket_seconds(121) == 2
    assert figures.bucket_seconds(300) == 5
    assert figures.bucket_seconds(10**9) == 3600


def test_events_per_client_timeline_has_zeros_not_gaps() -> None:
    events = figures.flatten_event_list(original_events())
    frame = figures.events_per_client(events)
    assert list(frame.columns) == ["10.0.0.5-1", "10.0.0.6-1"]
    assert frame.to_numpy().sum() == 7
    # 1 s buckets from BASE_MS to BASE_MS+5 s, every second present
    assert len(frame) == 6
    assert frame.index[0] == pd.Timestamp(BASE_MS // 1000, unit="s")
    assert frame.loc[frame.index[1], "10.0.0.5-1"] == 1


def test_click_subtypes_timeline() -> None:
    frame = figures.click_subtypes(figures.flatten_event_list(original_events()))
    assert list(frame.columns) == sorted(figures.CLICK_SUBTYPES)
    assert frame.sum().to_dict() == {
        "BUTTON_CLICK_EVENT": 1,
        "INPUT_PASSED_EVENT": 1,
        "KEY_PRESS_EVENT": 1,
    }
    assert figures.click_subtypes([]).empty


def test_client_table_uses_figures_counts_and_window_split() -> None:
    events = figures.flatten_event_list(original_events())
    stats = figures.figures_from_stats({**STATS, "clients": {"10.0.0.5-1": 40, "z-9": 1}})
    table = figures.client_table(stats, events)
    assert list(table["client"]) == ["10.0.0.5-1", "10.0.0.6-1", "z-9"]
    first = table.iloc[0]
    assert (first["events"], first["click events (window)"], first["order events (window)"]) == (
        40,
        2,
        2,
    )
    assert first["last seen (UTC)"] == pd.Timestamp(BASE_MS + 2600, unit="ms")
    assert pd.isna(table.iloc[2]["last seen (UTC)"])


def test_settings_from_env() -> None:
    default = config.from_env({})
    assert (default.url, default.poll_seconds, default.token) == (DEFAULT_URL, 5, None)
    custom = config.from_env(
        {
            "ESE_SERVER_URL": " http://h:1/events ",
            "ESE_POLL_SECONDS": "2",
            "ESE_ANALYTICS_TOKEN": "t",
        }
    )
    assert (custom.url, custom.poll_seconds, custom.token, custom.problems) == (
        "http://h:1/events",
        2,
        "t",
        (),
    )
    for bad in ("soon", "0", "99999"):
        settings = config.from_env({"ESE_POLL_SECONDS": bad})
        assert settings.poll_seconds == 5
        assert "ESE_POLL_SECONDS" in settings.problems[0]


@pytest.mark.parametrize(
    ("url", "events", "stats"),
    [
        ("http://h:2003/events", "http://h:2003/events", "http://h:2003/stats"),
        ("http://h:2003/events/", "http://h:2003/events", "http://h:2003/stats"),
        ("http://h:2003", "http://h:2003/events", "http://h:2003/stats"),
        ("https://h/api/events?x=1", "https://h/api/events?x=1", "https://h/api/stats"),
    ],
)
def test_endpoints(url: str, events: str, stats: str) -> None:
    assert endpoints(url) == type(endpoints(url))(events=events, stats=stats)


@pytest.mark.parametrize("url", ["", "h:2003/events", "ftp://h/events", "http://"])
def test_endpoints_reject_non_http_urls(url: str) -> None:
    with pytest.raises(PollError) as info:
        endpoints(url)
    assert info.value.kind == "bad_url"


def test_command_line() -> None:
    args = cli.streamlit_args(8600, "0.0.0.0")
    assert args[:2] == ["run", str(cli.APP)]
    pairs = dict(zip(args[2::2], args[3::2], strict=True))
    assert pairs["--server.port"] == "8600"
    assert pairs["--server.headless"] == "true"
    assert pairs["--browser.gatherUsageStats"] == "false"
    assert pairs["--server.fileWatcherType"] == "none"
    assert cli.parse_args([]).port == 8501
    with pytest.raises(SystemExit):
        cli.parse_args(["--port", "70000"])


def test_display_names_are_short() -> None:
    display_name = figures.display_name
    assert display_name("CLICK_STREAM_EVENT") == "click stream"
    assert display_name("ORDER_STATE_UPDATE_EVENT") == "order update"
    assert display_name("KEY_PRESS_EVENT") == "key press"
    assert display_name("ORDER_COMPLETED") == "order completed"
    assert display_name("other") == "other"
    assert display_name("10.9.0.2-1") == "10.9.0.2-1"


def test_the_port_comes_from_one_environment_variable() -> None:
    assert cli.parse_args([], {"ESE_CONSUMER_PORT": "8600"}).port == 8600
    assert cli.parse_args([], {}).port == 8501
    assert cli.parse_args(["--port", "8700"], {"ESE_CONSUMER_PORT": "8600"}).port == 8700
    with pytest.raises(SystemExit):
        cli.parse_args([], {"ESE_CONSUMER_PORT": "eighty"})


def test_the_image_healthcheck_and_entrypoint_share_the_port_variable() -> None:
    from ese_settings import image

    dockerfile = (Path(cli.__file__).parents[1] / "Dockerfile").read_text()
    assert "ESE_CONSUMER_PORT=8501" in dockerfile
    assert 'CMD ["--port"' not in dockerfile, "a --port in CMD would bypass the variable"
    env = {"ESE_CONSUMER_PORT": "8600"}
    assert cli.parse_args([], env).port == 8600
    assert image.probe_url("ese-consumer", env) == "http://127.0.0.1:8600/_stcore/health"
    assert image.probe_url("ese-consumer", {}) == "http://127.0.0.1:8501/_stcore/health"


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e999"])
def test_non_finite_poll_seconds_fall_back_with_a_message(raw: str) -> None:
    settings = config.from_env({"ESE_POLL_SECONDS": raw})
    assert settings.poll_seconds == 5
    assert "ESE_POLL_SECONDS" in settings.problems[0]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300, -5, True, "12"])
def test_implausible_event_times_count_as_no_time(value: Any) -> None:
    assert figures.event_time_ms({"timestamp": value}) is None


def _clicks_every(seconds: float, count: int) -> list[dict[str, Any]]:
    """`count` events of one client, `seconds` apart, from BASE_MS (2024-01-23 08:53:20 UTC)."""
    return [{"ip": "a", "timestamp": BASE_MS + int(i * seconds * 1000)} for i in range(count)]


def _tick_labels(axis: figures.TimeAxis, index: pd.Index) -> list[str]:
    """The axis's tick labels as the chart shows them: its tick times in its label format
    (charts.timeline passes both to Vega-Lite)."""
    return [tick.strftime(axis.label_format) for tick in figures.tick_times(axis, index)]


def test_a_10_second_span_is_labelled_by_seconds() -> None:
    frame = figures.events_per_client(_clicks_every(1, 11))
    axis = figures.time_axis(frame.index)
    assert (axis.unit, axis.step, axis.label_format) == ("second", 2, "%H:%M:%S")
    labels = _tick_labels(axis, frame.index)
    assert labels == ["08:53:20", "08:53:22", "08:53:24", "08:53:26", "08:53:28", "08:53:30"]


def test_a_5_minute_span_is_labelled_by_minutes() -> None:
    frame = figures.events_per_client(_clicks_every(10, 31))
    axis = figures.time_axis(frame.index)
    assert (axis.unit, axis.step, axis.label_format) == ("minute", 1, "%H:%M")
    assert _tick_labels(axis, frame.index) == ["08:54", "08:55", "08:56", "08:57", "08:58"]


def test_a_single_point_gets_two_second_labels() -> None:
    frame = figures.events_per_client(_clicks_every(1, 1))
    axis = figures.time_axis(frame.index)
    assert axis.label_format == "%H:%M:%S"
    # The empty bucket before the only one, and the one itself: two distinct labels.
    assert _tick_labels(axis, frame.index) == ["08:53:19", "08:53:20"]


@pytest.mark.parametrize(
    ("span_seconds", "unit", "step"),
    [
        (0, "second", 1),
        (7, "second", 1),
        (8, "second", 2),
        (59, "second", 10),
        (200, "second", 30),
        (3600, "minute", 10),
        (6 * 3600, "hour", 1),
        (30 * 86400, "day", 5),
    ],
)
def test_the_tick_spacing_keeps_labels_few_and_distinct(
    span_seconds: int, unit: str, step: int
) -> None:
    index = pd.DatetimeIndex([pd.Timestamp(BASE_MS, unit="ms")]).append(
        pd.DatetimeIndex([pd.Timestamp(BASE_MS + span_seconds * 1000, unit="ms")])
    )
    axis = figures.time_axis(index)
    assert (axis.unit, axis.step) == (unit, step)
    labels = _tick_labels(axis, index)
    assert len(labels) <= figures.MAX_TICKS
    assert len(set(labels)) == len(labels), labels
    assert not any(label.startswith(".") for label in labels)


@pytest.mark.parametrize("bars", [False, True])
def test_time_charts_carry_the_chosen_axis(bars: bool) -> None:
    frame = figures.events_per_client(_clicks_every(1, 11))
    spec = charts.timeline(frame, bars=bars).to_dict()
    x = spec["encoding"]["x"]
    assert x["axis"]["format"] == "%H:%M:%S"
    ticks = [(v["hours"], v["minutes"], v["seconds"]) for v in x["axis"]["values"]]
    assert ticks == [(8, 53, s) for s in (20, 22, 24, 26, 28, 30)]
    # Naive wall times, as Streamlit passes the naive UTC data (a UTC tick would miss it).
    assert not any("utc" in v for v in x["axis"]["values"])


def test_stacked_bars_span_their_bucket_and_stack_per_bucket() -> None:
    start = pd.Timestamp(BASE_MS, unit="ms")
    index = pd.DatetimeIndex([start, start + pd.Timedelta(seconds=5)], name="time")
    frame = pd.DataFrame({"x": [1, 0], "y": [2, 3]}, index=index)
    spec = charts.timeline(frame, bars=True).to_dict()
    rows = next(iter(spec["datasets"].values()))
    ranges = [(r["series"], r["low"], r["high"]) for r in rows]
    assert ranges == [("x", 0, 1), ("x", 0, 0), ("y", 1, 3), ("y", 0, 3)]
    # 5 s buckets: every bar ends where its bucket does.
    assert rows[0]["end"] == "2024-01-23T08:53:25"
