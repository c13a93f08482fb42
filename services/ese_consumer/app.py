"""The Streamlit page of ese-consumer (started by `ese-consumer`, or `streamlit run app.py`).

All logic lives in `source` (HTTP + fallback) and `figures` (aggregations); this script only
lays out the page. The live part is a fragment that Streamlit reruns on a timer, so the page
stays responsive and no blocking loop holds the session.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from ese_consumer import charts, config, figures, source

# Errors the user must fix (restart with a token, change the URL) are errors; the rest are
# transient and shown as warnings while the page keeps retrying.
_FIX_NEEDED = {"bad_url", "unauthorized", "forbidden", "malformed"}

st.set_page_config(page_title="ESE live events", layout="wide")
settings = config.from_env()

with st.sidebar:
    st.header("Source")
    st.text_input(
        "Live-events URL",
        value=settings.url,
        key="url",
        help=f"The analytics shard's /events route, e.g. {source.DEFAULT_URL} "
        "(pre-filled from ESE_SERVER_URL).",
    )
    st.number_input(
        "Poll interval (seconds)",
        min_value=config.MIN_POLL_SECONDS,
        max_value=config.MAX_POLL_SECONDS,
        value=settings.poll_seconds,
        step=1,
        key="poll_seconds",
        help="Pre-filled from ESE_POLL_SECONDS.",
    )
    st.caption(
        "Analytics token: set from ESE_ANALYTICS_TOKEN"
        if settings.token
        else "Analytics token: none (set ESE_ANALYTICS_TOKEN if the server needs one)"
    )
    for problem in settings.problems:
        st.warning(problem)

st.title("ESE live events")


def _session_state() -> source.PollState:
    """This session's poll state; a new URL or token starts from scratch."""
    url = str(st.session_state.get("url", settings.url))
    state = st.session_state.get("poll_state")
    if not isinstance(state, source.PollState) or (state.url, state.token) != (url, settings.token):
        state = source.PollState(url=url, token=settings.token)
        st.session_state["poll_state"] = state
    return state


def _show_error(state: source.PollState, every: int) -> None:
    if state.error is None:
        return
    if state.last_ok is not None:
        tail = (
            f" Showing the data of the last successful poll "
            f"({state.last_ok:%H:%M:%S} UTC); retrying every {every} s."
        )
    else:
        tail = f" No data yet; retrying every {every} s."
    show = st.error if state.error.kind in _FIX_NEEDED else st.warning
    show(state.error.message + tail)


def _short(counts: dict[str, int]) -> pd.DataFrame:
    """Counts as a one-column frame indexed by short display names (labels fit the axis)."""
    series = pd.Series(counts, dtype="int64")
    series.index = [figures.display_name(str(name)) for name in series.index]
    return pd.DataFrame({"events": series})


def _chart(title: str, frame: pd.DataFrame, empty: str, bars: bool = False) -> None:
    st.subheader(title)
    frame = frame.rename(columns=lambda name: figures.display_name(str(name)))
    if frame.empty:
        st.info(empty)
    else:
        # Stacked bars: the sub-types of one bucket add up to its click events.
        st.altair_chart(charts.timeline(frame, bars=bars), width="stretch")


def _show_data(state: source.PollState) -> None:
    data = state.figures
    if data is None:
        st.info("Waiting for the first successful poll…")
        return
    origin = (
        "/stats + incremental /events"
        if state.mode == "stats"
        else "plain GET /events list (computed here)"
    )
    st.caption(
        f"Last successful poll: {state.last_ok:%Y-%m-%d %H:%M:%S} UTC · source: {origin} · "
        f"events in the window: {len(state.events)}"
        + (
            " · charts start at the recent end (older events skipped to catch up; the "
            "totals include them)"
            if state.skipped
            else ""
        )
    )
    columns = st.columns(7)
    values = [
        ("Total events", data.total),
        ("Click-stream", data.by_type.get(figures.CLICK, 0)),
        ("Order updates", data.by_type.get(figures.ORDER, 0)),
        ("Other", data.by_type.get(figures.OTHER, 0)),
        ("Open orders", data.orders_open),
        ("Completed orders", data.orders_completed),
        ("Clients", len(data.clients)),
    ]
    for column, (label, value) in zip(columns, values, strict=True):
        column.metric(label, value)

    events = list(state.events)
    left, right = st.columns(2)
    with left:
        _chart(
            "Events per client over time",
            figures.events_per_client(events),
            "No events with a time in the window yet.",
        )
    with right:
        _chart(
            "Click-stream sub-types over time",
            figures.click_subtypes(events),
            "No click-stream events in the window yet.",
            bars=True,
        )
    left, right = st.columns(2)
    with left:
        st.subheader("Totals by type")
        st.bar_chart(_short(data.by_type), horizontal=True)
    with right:
        st.subheader("Totals by sub-type")
        if data.by_subtype:
            st.bar_chart(_short(data.by_subtype), horizontal=True)
        else:
            st.info("No sub-types reported yet.")
    st.subheader("Clients")
    st.dataframe(figures.client_table(data, events), hide_index=True, width="stretch")


def live() -> None:
    """One poll and the page it feeds; rerun by Streamlit every poll interval."""
    every = int(st.session_state.get("poll_seconds", settings.poll_seconds))
    try:
        state = source.poll(_session_state())
    except Exception as exc:  # last resort: poll() maps every known failure to a PollError
        st.error(
            f"The poll failed unexpectedly ({type(exc).__name__}: {exc}); retrying every {every} s."
        )
        return
    _show_error(state, every)
    try:
        _show_data(state)
    except Exception as exc:  # the page must never show a traceback
        st.error(f"Could not draw the data: {type(exc).__name__}: {exc}")


poll_every = timedelta(seconds=int(st.session_state.get("poll_seconds", settings.poll_seconds)))
st.fragment(run_every=poll_every)(live)()
