"""Pure aggregations behind the dashboard: no HTTP, no Streamlit.

Two inputs produce the same `Figures`: the server's `GET /stats` document, and a plain list of
events (from incremental `/events?since=` pages or from the original demo's `GET /events`
`[{"ip": ..., "eventLogs": [...]}]` list). The time series always come from events.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

CLICK = "CLICK_STREAM_EVENT"
ORDER = "ORDER_STATE_UPDATE_EVENT"
OTHER = "other"
EVENT_TYPES = (CLICK, ORDER, OTHER)
CLICK_SUBTYPES = ("KEY_PRESS_EVENT", "BUTTON_CLICK_EVENT", "INPUT_PASSED_EVENT")
ORDER_COMPLETED = "ORDER_COMPLETED"
# Candidate widths of one time bucket, in seconds: the smallest that keeps a chart readable.
_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
MAX_BUCKETS = 120
# A client clock further off than this from the server's is not trusted for the time axis.
CLOCK_SKEW_MS = 5 * 60 * 1000
# 2262-01-01 in epoch ms: pandas' datetime range (the charts' time axis) ends in April 2262.
MAX_TIME_MS = 9_214_646_400_000

Event = Mapping[str, Any]


class ShapeError(ValueError):
    """A document did not have the shape the wire contract promises."""


@dataclass(frozen=True)
class Figures:
    """The headline numbers of the dashboard."""

    total: int
    by_type: dict[str, int]
    by_subtype: dict[str, int]
    clients: dict[str, int]
    orders_open: int
    orders_completed: int
    stream_length: int | None = None
    retention_seconds: int | None = None
    notes: tuple[str, ...] = field(default=())


def display_name(name: str) -> str:
    """A short label for a type or sub-type, so chart legends and axes are not cut off:
    `CLICK_STREAM_EVENT` -> `click stream`, `ORDER_CREATED` -> `order created`."""
    if name in _DISPLAY:
        return _DISPLAY[name]
    text = name[: -len("_EVENT")] if name.endswith("_EVENT") else name
    return text.replace("_", " ").lower()


_DISPLAY = {ORDER: "order update", "ORDER_STATE_UPDATE": "order update"}


def event_type(event: Event) -> str:
    """The event's type bucket: one of EVENT_TYPES."""
    kind = event.get("eventType")
    return kind if kind in (CLICK, ORDER) else OTHER


def subtype(event: Event) -> str | None:
    """Click sub-type (`data.event`) or order state (`data.state`), if any."""
    data = event.get("data")
    if not isinstance(data, Mapping):
        return None
    value = data.get("event") if event.get("eventType") == CLICK else data.get("state")
    return value if isinstance(value, str) and value else None


def event_time_ms(event: Event) -> int | None:
    """When the event happened, in epoch ms: the client's `timestamp` (event time, what the
    original consumer plotted), unless the server's `server_ts` shows the client clock is more
    than CLOCK_SKEW_MS off; then the server's time. An event with neither has no time."""
    client, server = _positive_int(event.get("timestamp")), _positive_int(event.get("server_ts"))
    if client is not None and (server is None or abs(client - server) <= CLOCK_SKEW_MS):
        return client
    return server


def _positive_int(value: Any) -> int | None:
    """A plausible epoch-ms time, else None: JSON's Infinity/NaN or a time past 2261
    would break the time axis (`int(inf)` raises), so they count as no time at all."""
    # bool is an int subclass; a JSON true is not a time.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if 0 < value < MAX_TIME_MS else None


def flatten_event_list(payload: Any) -> list[dict[str, Any]]:
    """Events of the plain `GET /events` list `[{"ip": ..., "eventLogs": [...]}]`.

    An event without its own `ip` inherits the group's, as the original stored them per client.
    """
    if not isinstance(payload, list):
        raise ShapeError("expected a JSON list of {ip, eventLogs} objects")
    events: list[dict[str, Any]] = []
    for group in payload:
        if not isinstance(group, Mapping) or not isinstance(group.get("eventLogs"), list):
            raise ShapeError("every list item must be an object with an 'eventLogs' list")
        ip = group.get("ip")
        for item in group["eventLogs"]:
            if not isinstance(item, Mapping):
                raise ShapeError("every entry of 'eventLogs' must be an object")
            event = dict(item)
            if "ip" not in event and isinstance(ip, str):
                event["ip"] = ip
            events.append(event)
    return events


def parse_page(payload: Any) -> tuple[list[dict[str, Any]], str]:
    """Events and next cursor of an incremental `/events?since=` page."""
    if not isinstance(payload, Mapping):
        raise ShapeError("expected an object with 'events' and 'cursor'")
    events, cursor = payload.get("events"), payload.get("cursor")
    if not isinstance(events, list) or not isinstance(cursor, str):
        raise ShapeError("expected 'events' (list) and 'cursor' (string)")
    if not all(isinstance(item, Mapping) for item in events):
        raise ShapeError("every entry of 'events' must be an object")
    return [dict(item) for item in events], cursor


def _count_map(value: Any, name: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ShapeError(f"'{name}' must be an object of counts")
    counts: dict[str, int] = {}
    for key, count in value.items():
        if not isinstance(count, int) or isinstance(count, bool):
            raise ShapeError(f"'{name}.{key}' must be an integer")
        counts[str(key)] = count
    return counts


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def figures_from_stats(payload: Any) -> Figures:
    """Figures from the server's `GET /stats` document (see the team brief for its shape)."""
    if not isinstance(payload, Mapping):
        raise ShapeError("expected a JSON object")
    total = payload.get("total")
    if not isinstance(total, int) or isinstance(total, bool):
        raise ShapeError("'total' must be an integer")
    orders = _count_map(payload.get("orders"), "orders")
    by_type = _count_map(payload.get("by_type"), "by_type")
    return Figures(
        total=total,
        by_type={kind: by_type.get(kind, 0) for kind in EVENT_TYPES} | by_type,
        by_subtype=_count_map(payload.get("by_subtype"), "by_subtype"),
        clients=_count_map(payload.get("clients"), "clients"),
        orders_open=orders.get("open", 0),
        orders_completed=orders.get("completed", 0),
        stream_length=_optional_int(payload.get("stream_length")),
        retention_seconds=_optional_int(payload.get("retention_seconds")),
    )


def figures_from_events(events: Iterable[Event]) -> Figures:
    """The same figures as `/stats`, computed from a list of events (the fallback)."""
    by_type: Counter[str] = Counter({kind: 0 for kind in EVENT_TYPES})
    by_subtype: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    # order id -> whether its completion is among the events
    orders: dict[str, bool] = {}
    total = 0
    for event in events:
        total += 1
        kind = event_type(event)
        by_type[kind] += 1
        sub = subtype(event)
        if sub is not None:
            by_subtype[sub] += 1
        ip = event.get("ip")
        clients[ip if isinstance(ip, str) else "?"] += 1
        data = event.get("data")
        if kind == ORDER and isinstance(data, Mapping) and data.get("orderId") is not None:
            order_id = str(data["orderId"])
            orders[order_id] = orders.get(order_id, False) or sub == ORDER_COMPLETED
    completed = sum(orders.values())
    return Figures(
        total=total,
        by_type=dict(by_type),
        by_subtype=dict(by_subtype),
        clients=dict(clients),
        orders_open=len(orders) - completed,
        orders_completed=completed,
    )


def bucket_seconds(span_seconds: float, max_buckets: int = MAX_BUCKETS) -> int:
    """Smallest bucket width from _BUCKETS that cuts the span into at most max_buckets."""
    for width in _BUCKETS:
        if math.ceil(max(span_seconds, 0) / width) <= max_buckets:
            return width
    return _BUCKETS[-1]


TimeUnit = Literal["second", "minute", "hour", "day"]
_UNIT_SECONDS: dict[TimeUnit, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Tick spacings of the time axis, finest first; each divides the next unit up, so the ticks fall
# on round clock times (:00, :05, :10, ...).
_TICKS: tuple[tuple[int, TimeUnit], ...] = (
    *((step, "second") for step in (1, 2, 5, 10, 15, 30)),
    *((step, "minute") for step in (1, 2, 5, 10, 15, 30)),
    *((step, "hour") for step in (1, 2, 3, 6, 12)),
    *((step, "day") for step in (1, 2, 5, 10, 30, 90, 365)),
)
# Labels like 21:36:05 are about 50 px wide; 8 of them fit half a dashboard row.
MAX_TICKS = 8


@dataclass(frozen=True)
class TimeAxis:
    """How the time axis is ticked and labelled: a tick every `step` `unit`s (UTC), each labelled
    with `label_format` (strftime codes, which Vega-Lite's d3 formats share)."""

    unit: TimeUnit
    step: int
    label_format: str

    @property
    def seconds(self) -> int:
        """Seconds between two ticks."""
        return self.step * _UNIT_SECONDS[self.unit]


def time_axis(index: Sequence[Any] | pd.Index, max_ticks: int = MAX_TICKS) -> TimeAxis:
    """The axis for a time index: the finest round tick spacing that gives at most `max_ticks`
    ticks over its span (of up to a few years), labelled by seconds (`21:36:05`) when ticks are
    seconds apart, by minutes (`21:36`) up to hours, by date beyond.

    Vega-Lite's own choice for a span under a minute labels half-second ticks `.500`, and its
    hour labels are 12-hour clock times without am/pm; an explicit axis avoids both.
    """
    times = pd.DatetimeIndex(index)
    span = (times.max() - times.min()).total_seconds() if len(times) else 0.0
    step, unit = _TICKS[-1]
    for step, unit in _TICKS:
        # A span of n spacings holds at most n + 1 ticks.
        if math.floor(span / (step * _UNIT_SECONDS[unit])) + 1 <= max_ticks:
            break
    if unit == "second":
        label_format = "%H:%M:%S"
    elif unit == "day":
        label_format = "%Y-%m-%d"
    else:
        label_format = "%H:%M"
    return TimeAxis(unit, step, label_format)


def tick_times(axis: TimeAxis, index: Sequence[Any] | pd.Index) -> list[pd.Timestamp]:
    """Where the axis puts its ticks over the index's span: every multiple of the tick spacing
    (counted from the epoch, in UTC, so on round clock times) inside it."""
    times = pd.DatetimeIndex(index)
    if not len(times):
        return []
    width = pd.Timedelta(seconds=axis.seconds)
    first, last = times.min().ceil(width), times.max()
    return list(pd.date_range(first, last, freq=width)) if first <= last else []


def _timeline(rows: Sequence[tuple[int, str]], columns: Sequence[str] = ()) -> pd.DataFrame:
    """Counts per (time bucket, series) as a wide frame indexed by UTC time."""
    if not rows:
        return pd.DataFrame(columns=list(columns), dtype="int64")
    times = [ms for ms, _ in rows]
    width = bucket_seconds((max(times) - min(times)) / 1000)
    frame = pd.DataFrame(rows, columns=["ms", "series"])
    frame["time"] = pd.to_datetime(frame["ms"] // (width * 1000) * width, unit="s")
    wide = frame.groupby(["time", "series"]).size().unstack("series", fill_value=0)
    # Buckets without events are zeros, not gaps, so lines drop to 0 instead of interpolating.
    full_index = pd.date_range(wide.index.min(), wide.index.max(), freq=f"{width}s", name="time")
    if len(full_index) == 1:
        # A line needs two points: show the empty bucket before the only one.
        full_index = full_index.insert(0, full_index[0] - pd.Timedelta(seconds=width))
    wide = wide.reindex(full_index, fill_value=0)
    for column in columns:
        if column not in wide.columns:
            wide[column] = 0
    wide.columns.name = None
    return wide[sorted(wide.columns)].astype("int64")


def events_per_client(events: Iterable[Event]) -> pd.DataFrame:
    """Events per client per time bucket (one column per client)."""
    rows: list[tuple[int, str]] = []
    for event in events:
        ms = event_time_ms(event)
        ip = event.get("ip")
        if ms is not None:
            rows.append((ms, ip if isinstance(ip, str) else "?"))
    return _timeline(rows)


def click_subtypes(events: Iterable[Event]) -> pd.DataFrame:
    """Click-stream events per sub-type per time bucket (one column per sub-type)."""
    rows: list[tuple[int, str]] = []
    for event in events:
        ms, sub = event_time_ms(event), subtype(event)
        if event_type(event) == CLICK and ms is not None and sub is not None:
            rows.append((ms, sub))
    return _timeline(rows, CLICK_SUBTYPES if rows else ())


def client_table(figures: Figures, events: Iterable[Event]) -> pd.DataFrame:
    """One row per client: events (per the figures), click/order split and last seen (window)."""
    clicks: Counter[str] = Counter()
    order_events: Counter[str] = Counter()
    last_ms: dict[str, int] = {}
    for event in events:
        ip = event.get("ip")
        key = ip if isinstance(ip, str) else "?"
        kind = event_type(event)
        if kind == CLICK:
            clicks[key] += 1
        elif kind == ORDER:
            order_events[key] += 1
        ms = event_time_ms(event)
        if ms is not None and ms > last_ms.get(key, 0):
            last_ms[key] = ms
    names = sorted(set(figures.clients) | set(clicks) | set(order_events))
    rows = [
        {
            "client": name,
            "events": figures.clients.get(name, clicks[name] + order_events[name]),
            "click events (window)": clicks[name],
            "order events (window)": order_events[name],
            "last seen (UTC)": pd.to_datetime(last_ms[name], unit="ms")
            if name in last_ms
            else None,
        }
        for name in names
    ]
    columns = ["client", "events", "click events (window)", "order events (window)"]
    frame = pd.DataFrame(rows, columns=[*columns, "last seen (UTC)"])
    return frame.sort_values(["events", "client"], ascending=[False, True]).reset_index(drop=True)
