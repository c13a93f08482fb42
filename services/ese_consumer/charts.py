"""The dashboard's time charts as Altair specs (the page draws them with `st.altair_chart`).

`st.line_chart`/`st.bar_chart` leave the time axis to Vega-Lite, which labels a span under a
minute `.500 .500 .500`. These charts use the axis that `figures.time_axis` picks for the data
(seconds for short spans, minutes for longer), with explicit ticks.

The times are naive UTC (`figures` drops no zone: there is none). Streamlit hands naive times to
the browser so that they read as they are in the viewer's time zone, so the ticks are given as
naive wall times too (checked with a browser in America/New_York: labels stay UTC).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from ese_consumer.figures import TimeAxis, tick_times, time_axis

X_TITLE = "time (UTC)"
Y_TITLE = "events"
HEIGHT = 300


def _long(frame: pd.DataFrame, bucket: pd.Timedelta) -> pd.DataFrame:
    """The wide frame (index: bucket start, one column per series) in long form: time, end,
    series, events, and the stacked range low..high of each series within its bucket."""
    long = (
        frame.rename_axis("time")
        .reset_index()
        .melt(id_vars="time", var_name="series", value_name="events")
    )
    long["end"] = long["time"] + bucket
    long["high"] = long.groupby("time")["events"].cumsum()
    long["low"] = long["high"] - long["events"]
    return long


def _bucket(frame: pd.DataFrame) -> pd.Timedelta:
    """Width of one time bucket: the index's step (one second when it has a single row)."""
    steps = pd.Series(frame.index).diff().dropna()
    return steps.min() if len(steps) else pd.Timedelta(seconds=1)


def _wall_time(tick: pd.Timestamp) -> alt.DateTime:
    # Vega-Lite ignores plain epoch numbers as temporal tick values; DateTime objects work. No
    # `utc`: it must match how Streamlit passes the naive times (see the module docstring).
    return alt.DateTime(
        year=tick.year,
        month=tick.month,
        date=tick.day,
        hours=tick.hour,
        minutes=tick.minute,
        seconds=tick.second,
    )


def _x_axis(axis: TimeAxis, frame: pd.DataFrame) -> alt.Axis:
    # Explicit ticks: Vega-Lite's own choice is what labelled half seconds ".500". Labels that
    # would overlap on a narrow screen are dropped.
    return alt.Axis(
        format=axis.label_format,
        values=[_wall_time(tick) for tick in tick_times(axis, frame.index)],
        labelOverlap=True,
        labelFlush=True,
        grid=False,
    )


def timeline(frame: pd.DataFrame, *, bars: bool = False) -> alt.Chart:
    """A chart of a `figures` timeline: one line per column, or stacked bars per bucket."""
    axis = time_axis(frame.index)
    bucket = _bucket(frame)
    data = _long(frame, bucket)
    x = alt.X("time:T", title=X_TITLE, axis=_x_axis(axis, frame))
    color = alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom"))
    tooltip = [
        alt.Tooltip("time:T", title=X_TITLE, format="%Y-%m-%d %H:%M:%S"),
        alt.Tooltip("series:N", title="series"),
        alt.Tooltip("events:Q", title=Y_TITLE),
    ]
    if bars:
        # Each bar spans its bucket (x to x2) and its stacked range (low to high), computed here:
        # Vega-Lite's stacking would take a ranged x for a horizontal bar.
        chart = alt.Chart(data).mark_bar(stroke="white", strokeWidth=1)
        y = alt.Y("high:Q", title=Y_TITLE)
        encoded = chart.encode(x=x, x2="end:T", y=y, y2="low:Q", color=color, tooltip=tooltip)
    else:
        chart = alt.Chart(data).mark_line(point=len(frame) <= 2)
        y = alt.Y("events:Q", title=Y_TITLE)
        encoded = chart.encode(x=x, y=y, color=color, tooltip=tooltip)
    return encoded.properties(height=HEIGHT)
