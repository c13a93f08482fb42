"""Polling the live-events source over HTTP, with the fallback for the original demo's server.

A poll prefers the ese-server analytics routes: `GET /stats` for the figures and
`GET /events?since=<cursor>&limit=<n>` for new events only. When `/stats` is absent (404, 403,
an unexpected shape) it falls back to the plain `GET /events` list and computes the same figures,
so the dashboard also works against the original Go server. Every failure becomes a `PollError`
with a specific, one-line message; the state keeps the last good data so the page can keep
showing it and recover on the next poll.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import httpx

from ese_consumer.figures import (
    Figures,
    ShapeError,
    event_time_ms,
    figures_from_events,
    figures_from_stats,
    flatten_event_list,
    parse_page,
)

DEFAULT_URL = "http://host.docker.internal:2003/events"
PAGE_LIMIT = 1000
# Bounds of one poll: at most this many incremental pages, and a buffer cap, so a huge backlog
# is caught up over several polls instead of blocking the page.
MAX_PAGES = 5
MAX_EVENTS = 50_000
# Catching up on a backlog larger than one poll's pages starts near the recent end instead of at
# the oldest event: windows of FIRST_WINDOW_MS, x WINDOW_GROWTH, ... back from now are probed
# (at most MAX_PROBES requests) and reading starts at the widest one that held less than a page.
FIRST_WINDOW_MS = 2_000
WINDOW_GROWTH = 4
MAX_PROBES = 6
TIMEOUT = httpx.Timeout(5.0, connect=3.0)

Mode = Literal["stats", "list"]
ErrorKind = Literal[
    "bad_url", "unreachable", "timeout", "unauthorized", "forbidden", "malformed", "http"
]


class PollError(Exception):
    """A poll failed; `message` is what the page shows."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


@dataclass(frozen=True)
class Endpoints:
    """The URLs one poll uses, derived from the live-events URL."""

    events: str
    stats: str


def endpoints(url: str) -> Endpoints:
    """`/events` and `/stats` next to each other: `http://h:2003/events` -> `.../stats`."""
    text = url.strip()
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise PollError("bad_url", f"'{text}' is not a valid URL ({exc}).") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PollError(
            "bad_url",
            f"'{text}' is not an http(s) URL; expected e.g. {DEFAULT_URL}.",
        )
    path = parsed.path.rstrip("/")
    base = path[: -len("/events")] if path.endswith("/events") else path
    return Endpoints(
        events=str(parsed.copy_with(path=base + "/events")),
        stats=str(parsed.copy_with(path=base + "/stats", query=None)),
    )


@dataclass
class PollState:
    """What a dashboard session remembers between polls."""

    url: str
    token: str | None = None
    mode: Mode | None = None
    cursor: str = "0"
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    figures: Figures | None = None
    last_ok: datetime | None = None
    error: PollError | None = None
    # The last poll used all its pages and more were waiting: the next one may skip ahead.
    behind: bool = False
    # Events not read because a poll skipped ahead to the recent end (for the page's caption).
    skipped: bool = False


def _server_message(response: httpx.Response) -> str:
    """The `message` of the server's JSON error body, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    return f" Server said: {message.strip().rstrip('.')}."


def _status_error(response: httpx.Response) -> PollError:
    """A specific message for a non-2xx answer."""
    url, status = str(response.request.url), response.status_code
    said = _server_message(response)
    if status == 401:
        return PollError(
            "unauthorized",
            f"401 Unauthorized from {url}: the server wants an analytics token. Set "
            f"ESE_ANALYTICS_TOKEN to the server's token and restart the consumer.{said}",
        )
    if status == 403:
        return PollError(
            "forbidden",
            f"403 Forbidden from {url}: this server does not serve the analytics routes. "
            f"Point the URL at the analytics shard (port 2003), not an ingest shard or the "
            f"load balancer.{said}",
        )
    if status == 503:
        return PollError("http", f"503 from {url}: the server is up but its store is not.{said}")
    return PollError("http", f"HTTP {status} from {url}.{said}")


def _get(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> httpx.Response:
    try:
        return client.get(url, params=params)
    except httpx.TimeoutException:
        raise PollError(
            "timeout", f"Timed out waiting for {url} ({TIMEOUT.read:.0f} s); is it overloaded?"
        ) from None
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise PollError(
            "unreachable", f"Cannot reach the server at {url}: {reason}. Is it running?"
        ) from None
    except httpx.DecodingError as exc:
        raise PollError(
            "malformed", f"Could not decode the answer of {url}: {_first_line(exc)}."
        ) from None
    except httpx.HTTPError as exc:
        raise PollError("http", f"Request to {url} failed: {_first_line(exc)}.") from None
    except UnicodeEncodeError:
        raise PollError(
            "bad_url",
            f"Cannot send the request to {url}: the URL or ESE_ANALYTICS_TOKEN holds characters "
            "HTTP headers cannot carry; use plain ASCII.",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PollError(
            "malformed", f"Malformed JSON from {response.request.url}: {detail}."
        ) from None


def _fetch_stats(client: httpx.Client, url: str) -> Figures | None:
    """The `/stats` figures, or None when this server has no usable `/stats`."""
    response = _get(client, url)
    if response.status_code in (403, 404, 405):
        return None
    if not response.is_success:
        raise _status_error(response)
    try:
        return figures_from_stats(json.loads(response.content))
    except (ValueError, UnicodeDecodeError):
        # Covers ShapeError too: some other server answers /stats, so use the plain list.
        return None


def _fetch_list(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    response = _get(client, url)
    if not response.is_success:
        raise _status_error(response)
    try:
        return flatten_event_list(_json(response))
    except ShapeError as exc:
        raise PollError("malformed", f"Unexpected JSON from {url}: {exc}.") from None


@dataclass(frozen=True)
class _Page:
    """New events since the cursor; `restart` when the server forgot our cursor."""

    events: list[dict[str, Any]]
    cursor: str
    restart: bool
    # Every page of the poll came back full: more events are waiting.
    full: bool = False


def _fetch_new(client: httpx.Client, url: str, cursor: str) -> _Page | None:
    """New events after `cursor`, or None if the server ignores `since` (a plain list)."""
    fresh: list[dict[str, Any]] = []
    restart = False
    full = False
    for _ in range(MAX_PAGES):
        response = _get(client, url, {"since": cursor, "limit": str(PAGE_LIMIT)})
        if response.status_code == 400 and cursor != "0" and not restart:
            # The server no longer knows our cursor (e.g. its store was reset): start over.
            cursor, restart, fresh = "0", True, []
            continue
        if not response.is_success:
            raise _status_error(response)
        payload = _json(response)
        if isinstance(payload, list):
            return None
        try:
            page, cursor = parse_page(payload)
        except ShapeError as exc:
            raise PollError("malformed", f"Unexpected JSON from {url}: {exc}.") from None
        fresh.extend(page)
        full = len(page) >= PAGE_LIMIT
        if not full:
            break
    return _Page(fresh, cursor, restart, full)


def _trimmed(events: deque[dict[str, Any]], retention_seconds: int | None) -> deque[dict[str, Any]]:
    """Events inside the server's retention window, measured from the newest event."""
    if not retention_seconds or not events:
        return events
    newest = max((event_time_ms(e) or 0) for e in events)
    horizon = newest - retention_seconds * 1000
    kept = [e for e in events if (event_time_ms(e) or newest) >= horizon]
    return events if len(kept) == len(events) else deque(kept, maxlen=MAX_EVENTS)


def _cursor_ms(cursor: str) -> int:
    """The millisecond part of a cursor ('0', '<ms>' or '<ms>-<seq>'); 0 when unreadable."""
    head = cursor.partition("-")[0]
    return int(head) if head.isdigit() else 0


def _recent_start(
    client: httpx.Client, url: str, now_ms: int, retention_seconds: int | None, after: str
) -> str | None:
    """A cursor near the recent end: the widest probed window back from now that held less
    than one page, so reading from it gets the newest events first. None when no window
    starts after `after` (reading on from `after` is as recent as it gets)."""
    limit = (retention_seconds or 0) * 1000
    floor = _cursor_ms(after)
    best: str | None = None
    window = FIRST_WINDOW_MS
    for _ in range(MAX_PROBES):
        start = now_ms - window
        if start <= floor or (limit and window >= limit):
            break
        response = _get(client, url, {"since": str(start), "limit": str(PAGE_LIMIT)})
        if not response.is_success:
            raise _status_error(response)
        try:
            page, _cursor = parse_page(_json(response))
        except ShapeError as exc:
            raise PollError("malformed", f"Unexpected JSON from {url}: {exc}.") from None
        if len(page) >= PAGE_LIMIT:
            # Even this window holds a page or more: start at the previous one, or here when
            # the very first window is already that busy.
            return best or str(start)
        best = str(start)
        window *= WINDOW_GROWTH
    return best


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def poll(
    state: PollState,
    client: httpx.Client | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> PollState:
    """Run one poll. Only a fully successful poll changes the data in `state` (built aside,
    then committed at once); a failed one sets `state.error` and keeps the last good data."""
    owned = client is None
    try:
        http = client or httpx.Client(timeout=TIMEOUT, headers=auth_headers(state.token))
    except (ValueError, UnicodeEncodeError) as exc:
        state.error = PollError(
            "bad_url",
            f"Cannot build the request ({_first_line(exc)}): ESE_ANALYTICS_TOKEN must be plain "
            "ASCII text.",
        )
        return state
    try:
        _poll_into(state, http, now)
    except PollError as exc:
        state.error = exc
    except (httpx.HTTPError, ValueError, OverflowError, UnicodeError) as exc:
        # Data no check above foresaw (e.g. an Infinity timestamp): a message, not a traceback.
        state.error = PollError(
            "malformed",
            f"Unusable data from {state.url}: {type(exc).__name__}: {_first_line(exc)}.",
        )
    finally:
        if owned:
            http.close()
    return state


def _poll_into(state: PollState, http: httpx.Client, now: Callable[[], datetime]) -> None:
    urls = endpoints(state.url)
    figures = _fetch_stats(http, urls.stats)
    stamp = now()
    page: _Page | None = None
    skipped = False
    if figures is not None:
        cursor = state.cursor if state.mode == "stats" else "0"
        budget = MAX_PAGES * PAGE_LIMIT
        starting = cursor == "0" and (figures.stream_length or 0) > budget
        if starting or (state.behind and state.mode == "stats"):
            now_ms = int(stamp.timestamp() * 1000)
            recent = _recent_start(http, urls.events, now_ms, figures.retention_seconds, cursor)
            if recent is not None:
                cursor, skipped = recent, True
        page = _fetch_new(http, urls.events, cursor)
        if page is not None and skipped:
            page = _Page(page.events, page.cursor, restart=True, full=page.full)
    if figures is not None and page is not None:
        fresh = state.mode != "stats" or page.restart
        events: deque[dict[str, Any]] = deque([] if fresh else state.events, maxlen=MAX_EVENTS)
        events.extend(page.events)
        events = _trimmed(events, figures.retention_seconds)
        mode: Mode = "stats"
        cursor, behind = page.cursor, page.full
    else:
        listed = _fetch_list(http, urls.events)
        events = deque(listed[-MAX_EVENTS:], maxlen=MAX_EVENTS)
        figures = figures_from_events(listed)
        mode, cursor, behind = "list", "0", False
    # Commit: nothing above touched `state`, so a failure anywhere left it as it was.
    state.mode, state.cursor, state.events, state.behind = mode, cursor, events, behind
    # The caption says older events were skipped until a poll starts over from the oldest one.
    state.skipped = skipped or (state.skipped and mode == "stats" and not (page and page.restart))
    state.figures, state.last_ok, state.error = figures, stamp, None


def auth_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer <token>` when a token is configured."""
    return {"Authorization": f"Bearer {token}"} if token else {}
