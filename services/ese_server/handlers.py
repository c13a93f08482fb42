"""The route handlers: each takes the ASGI scope and the request body, returns a Response.

They raise `HTTPError` for a refusal; every store call goes through the `StoreLink`, which
turns a failing Redis into a 503.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qsl

import orjson

from ese_server.asgi import Response, Scope
from ese_server.body import parse_json
from ese_server.config import Settings
from ese_server.errors import HTTPError
from ese_server.lifecycle import StoreLink
from ese_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ese_server.metrics import Metrics
from ese_server.openapi import openapi_document
from ese_server.store import LEGACY_READ_CAP, Entry, valid_cursor, with_server_ts
from ese_server.validation import FieldError, check_batch, check_event

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
LIMIT_RE = re.compile(r"[0-9]{1,9}")


def query_params(scope: Scope) -> dict[str, str]:
    """The query parameters; a 400 for one given more than once (which one would count?)."""
    query = scope.get("query_string", b"")
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
    params = dict(pairs)
    if len(params) != len(pairs):
        names = [name for name, _ in pairs]
        twice = sorted({name for name in names if names.count(name) > 1})
        raise HTTPError(
            400,
            f"query parameter {twice[0]!r} given more than once",
            "bad_query",
            [{"field": name, "message": "must be given once"} for name in twice],
        )
    return params


def page_params(params: dict[str, str]) -> tuple[str, int]:
    """`since` and `limit` of an incremental read, checked; a 400 naming every bad one."""
    errors: list[FieldError] = []
    since = params.get("since", "0").strip()
    if not valid_cursor(since):
        errors.append(
            {"field": "since", "message": "must be 0 or a cursor returned by this endpoint"}
        )
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit", str(DEFAULT_LIMIT)).strip()
    if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        errors.append({"field": "limit", "message": f"must be an integer from 1 to {MAX_LIMIT}"})
    else:
        limit = int(raw_limit)
    if errors:
        raise HTTPError(400, "invalid query parameters", "bad_query", errors)
    return since, limit


def grouped_by_client(entries: list[Entry]) -> bytes:
    """The original GET /events body: `[{"ip": ..., "eventLogs": [...]}, ...]`.

    It empties `entries`, and drops each stage once the next is built: a window read is the
    shard's biggest allocation, and only one copy of it should be alive at a time.
    """
    groups: dict[bytes, list[bytes]] = {}
    for sid, ip, payload in entries:
        groups.setdefault(ip, []).append(with_server_ts(payload, sid))
    entries.clear()
    parts = [
        b'{"ip":'
        + orjson.dumps(ip.decode(errors="replace"))
        + b',"eventLogs":['
        + b",".join(logs)
        + b"]}"
        for ip, logs in groups.items()
    ]
    groups.clear()
    return b"[" + b",".join(parts) + b"]"


class Handlers:
    """One method per route (named in app.ROUTES)."""

    def __init__(self, settings: Settings, metrics: Metrics, link: StoreLink) -> None:
        self.settings = settings
        self.metrics = metrics
        self.link = link
        self.openapi = orjson.dumps(openapi_document(settings))
        # One big read at a time: concurrent ones would each hold a copy of the window.
        self.window_reads = asyncio.Semaphore(1)

    async def health(self, scope: Scope, body: bytes) -> Response:
        doc = {
            "message": f"Server running @:{self.settings.port}",
            "role": self.settings.role,
            "redis": "up" if self.link.redis_up else "down",
        }
        return Response(200, orjson.dumps(doc))

    async def metrics_text(self, scope: Scope, body: bytes) -> Response:
        return Response(200, self.metrics.render(), METRICS_CONTENT_TYPE)

    async def openapi_json(self, scope: Scope, body: bytes) -> Response:
        return Response(200, self.openapi)

    async def add_event(self, scope: Scope, body: bytes) -> Response:
        errors: list[FieldError] = []
        event = check_event(parse_json(body), "", errors)
        if event is None:
            raise HTTPError(400, "invalid event; nothing was stored", "schema", errors)
        (stored,) = await self.link.append([event])
        return Response(201, stored)

    async def add_events(self, scope: Scope, body: bytes) -> Response:
        events, errors, too_large = check_batch(parse_json(body), self.settings.max_batch)
        if too_large:
            raise HTTPError(
                413,
                "batch too large (ESE_MAX_BATCH); nothing was stored",
                "batch_too_large",
                errors,
            )
        if errors:
            raise HTTPError(
                400,
                f"{len(errors)} invalid field(s) in the batch; nothing was stored",
                "schema",
                errors,
            )
        stored = await self.link.append(events)
        return Response(200, b'{"events":[' + b",".join(stored) + b"]}")

    async def get_events(self, scope: Scope, body: bytes) -> Response:
        params = query_params(scope)
        if "since" not in params and "limit" not in params:
            return await self.read_window()
        since, limit = page_params(params)
        entries = await self.link.read(lambda store: store.read_since(since, limit))
        cursor = entries[-1][0].decode() if entries else since
        events = b",".join(with_server_ts(payload, sid) for sid, _, payload in entries)
        return Response(200, b'{"events":[' + events + b'],"cursor":' + orjson.dumps(cursor) + b"}")

    async def read_window(self) -> Response:
        """The original shape, newest LEGACY_READ_CAP events of the window (marked if cut)."""
        async with self.window_reads:
            entries, truncated = await self.link.read(lambda store: store.read_window())
            body = grouped_by_client(entries)
        headers = [
            (b"x-ese-truncated", b"true" if truncated else b"false"),
            (b"x-ese-read-cap", str(LEGACY_READ_CAP).encode()),
        ]
        return Response(200, body, headers=headers)

    async def stats(self, scope: Scope, body: bytes) -> Response:
        retention = self.settings.retention_seconds
        doc = await self.link.read(lambda store: store.stats(retention))
        return Response(200, orjson.dumps(doc))
