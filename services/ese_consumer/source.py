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
    polls: int = 0


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


def _fetch_new(client: httpx.Client, url: str, cursor: str) -> _Page | None:
    """New events after `cursor`, or None if the server ignores `since` (a plain list)."""
    fresh: list[dict[str, Any]] = []
    restart = False
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
        if len(page) < PAGE_LIMIT:
            break
    return _Page(fresh, cursor, restart)


def _trim(state: PollState, retention_seconds: int | None) -> None:
    """Drop events older than the server's retention window, measured from the newest event."""
    if not retention_seconds or not state.events:
        return
    newest = max((event_time_ms(e) or 0) for e in state.events)
    horizon = newest - retention_seconds * 1000
    kept = [e for e in state.events if (event_time_ms(e) or newest) >= horizon]
    if len(kept) != len(state.events):
        state.events = deque(kept, maxlen=MAX_EVENTS)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def poll(
    state: PollState,
    client: httpx.Client | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> PollState:
    """Run one poll, updating `state` in place; on failure only `state.error` changes."""
    state.polls += 1
    owned = client is None
    http = client or httpx.Client(timeout=TIMEOUT, headers=auth_headers(state.token))
    try:
        urls = endpoints(state.url)
        figures = _fetch_stats(http, urls.stats)
        # Only a fully successful poll touches the state, so a failure mid-way loses nothing.
        page = _fetch_new(http, urls.events, state.cursor) if figures is not None else None
        if figures is not None and page is not None:
            if state.mode != "stats" or page.restart:
                state.events.clear()
            state.mode, state.cursor = "stats", page.cursor
            state.events.extend(page.events)
            _trim(state, figures.retention_seconds)
        else:
            events = _fetch_list(http, urls.events)
            state.mode, state.cursor = "list", "0"
            state.events = deque(events[-MAX_EVENTS:], maxlen=MAX_EVENTS)
            figures = figures_from_events(events)
        state.figures, state.last_ok, state.error = figures, now(), None
    except PollError as exc:
        state.error = exc
    finally:
        if owned:
            http.close()
    return state


def auth_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer <token>` when a token is configured."""
    return {"Authorization": f"Bearer {token}"} if token else {}
