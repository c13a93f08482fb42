"""The shard's HTTP application: a lean raw-ASGI app (served by uvicorn + httptools + uvloop).

WHY raw ASGI and not a framework: the single-event path has a budget of ~150 µs of CPU per
request on this 2-core box; a framework's routing, request objects and middleware stack cost
more than the validation, the Redis call and the metrics together. The routes are few and
fixed, so a dict lookup routes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ese_server.config import Settings
from ese_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ese_server.metrics import Metrics
from ese_server.openapi import openapi_document
from ese_server.redis_client import (
    Connect,
    RedisClient,
    RedisError,
    RedisNotSent,
    RedisOutOfMemory,
)
from ese_server.store import (
    LEGACY_READ_CAP,
    AppendResult,
    Store,
    valid_cursor,
    with_server_ts,
)
from ese_server.validation import CheckedEvent, FieldError, check_batch, check_event

log = logging.getLogger("ese_server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
LIMIT_RE = re.compile(r"[0-9]{1,9}")
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
REDIS_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
STORE_FULL_MESSAGE = (
    "event store full: Redis reached its maxmemory limit, so nothing was stored; events "
    "leaving the retention window (ESE_RETENTION_SECONDS) free memory: retry later "
    "(or give Redis more maxmemory, or a shorter retention)"
)
# WHY seconds and not 1: memory comes back only as events age out of the window.
STORE_FULL_RETRY_AFTER = b"5"

# path -> {method: (handler name, role or None for every role, legacy counter or None)}
ROUTES: dict[str, dict[str, tuple[str, str | None, str | None]]] = {
    "/": {"GET": ("h_health", None, "health_ping_count")},
    "/metrics": {"GET": ("h_metrics", None, None)},
    "/openapi.json": {"GET": ("h_openapi", None, None)},
    "/event": {"POST": ("h_add_event", "ingest", "add_event_ping_count")},
    "/events": {
        "POST": ("h_add_events", "ingest", "add_events_ping_count"),
        "GET": ("h_get_events", "analytics", "get_events_ping_count"),
    },
    "/stats": {"GET": ("h_stats", "analytics", None)},
}
# The Allow header per path: its methods, HEAD where GET is served, and OPTIONS.
ALLOW = {
    path: ", ".join([*methods, *(["HEAD"] if "GET" in methods else []), "OPTIONS"])
    for path, methods in ROUTES.items()
}
EXPOSED = b"x-ese-truncated, x-ese-read-cap"


def _is_json(content_type: bytes) -> bool:
    """application/json (any parameters, any case) or a +json type such as problem+json."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class HTTPError(Exception):
    """A 4xx/5xx answer with DESIGN's error body and the reason counted in metrics."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str | None,
        errors: list[FieldError] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.errors = errors or []
        self.headers = headers or []

    def body(self) -> bytes:
        return orjson.dumps({"message": self.message, "errors": self.errors})


class Response:
    """Status, body and content type of an answer (headers added by the app)."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = JSON,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


class _Head:
    """The request headers the app acts on, read in one pass over the raw ASGI headers."""

    __slots__ = ("authorization", "content_length", "content_type", "origin", "repeated")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.authorization: bytes | None = None
        self.content_type: bytes | None = None
        self.content_length = -1  # -1: absent or not a number (the body is read to its end)
        self.origin = b""
        self.repeated: list[str] = []  # headers that must come once but came more often
        for name, value in raw:
            if name == b"authorization":
                if self.authorization is not None:
                    self.repeated.append("Authorization")
                self.authorization = value
            elif name == b"content-type":
                if self.content_type is not None:
                    self.repeated.append("Content-Type")
                self.content_type = value
            elif name == b"content-length":
                self.content_length = int(value) if value.isdigit() else -1
            elif name == b"origin":
                self.origin = value


class App:
    """ASGI callable of one shard."""

    def __init__(
        self, settings: Settings, metrics: Metrics | None = None, connect: Connect = RedisClient
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.connect = connect
        self.store: Store | None = None
        self.redis_up = False
        # True from a write refused for maxmemory until a write succeeds: the monitor trims
        # the stream meanwhile, because the refused appends cannot.
        self.store_full = False
        self._monitor: asyncio.Task[None] | None = None
        self._window_reads = asyncio.Semaphore(1)
        self._openapi = orjson.dumps(openapi_document(settings))
        self._tokens = {"ingest": settings.ingest_token, "analytics": settings.analytics_token}
        self._serves = {"ingest": settings.serves_ingest, "analytics": settings.serves_analytics}
        origins = settings.cors_origins
        self._cors_any = "*" in origins
        self._cors = frozenset(o.encode() for o in origins)

    # ----- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Create the Redis pool and the monitor; Redis may still be down (we retry)."""
        s = self.settings
        self.store = Store(s.redis_url, s.retention_seconds, s.key_prefix, self.connect)
        self._monitor = asyncio.create_task(self._watch_redis())

    async def shutdown(self) -> None:
        """Stop the monitor and close the Redis pool (in-flight requests have finished)."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self.store is not None:
            await self.store.close()

    async def _watch_redis(self) -> None:
        """Keep `redis_up` and the stream-length gauge fresh, so GET / never calls Redis."""
        assert self.store is not None
        while True:
            try:
                length = await asyncio.wait_for(self.store.stream_length(), 2)
                self.metrics.stream_length.set(length)
                if self.store_full:
                    await self._trim()
                if not self.redis_up:
                    log.warning("redis is reachable at %s", self.settings.redacted_redis_url())
                self._set_redis(True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means "down"; never let the monitor die
                if self.redis_up:
                    log.warning("redis is unreachable: %s", exc)
                    self.metrics.redis_errors.inc()
                self._set_redis(False)
            await asyncio.sleep(1.0 if self.redis_up else 0.5)

    async def _trim(self) -> None:
        """Trim the stream by retention while appends are refused for maxmemory."""
        assert self.store is not None
        try:
            dropped = await asyncio.wait_for(self.store.trim(), 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next round tries again; Redis health is XLEN's call
            log.warning("trimming the full store failed: %s", exc)
            return
        if dropped:
            log.warning("store full: trimmed %d events older than the retention window", dropped)

    def _store_is_full(self) -> HTTPError:
        """The 503 for a write Redis refused for maxmemory: Redis is up, the store is full."""
        self.metrics.store_full.inc()
        if not self.store_full:
            log.warning("redis refuses writes: maxmemory reached (the event store is full)")
        self.store_full = True
        self._set_redis(True)
        return HTTPError(
            503, STORE_FULL_MESSAGE, None, headers=[(b"retry-after", STORE_FULL_RETRY_AFTER)]
        )

    def _set_redis(self, up: bool) -> None:
        self.redis_up = up
        self.metrics.redis_up.set(1 if up else 0)

    def _redis_failed(self, exc: BaseException, writes: bool = False) -> HTTPError:
        self.metrics.redis_errors.inc()
        self._set_redis(False)
        log.warning("redis call failed: %s", exc)
        if not writes:
            message = "storage unavailable (Redis); retry later"
        elif isinstance(exc, RedisNotSent):
            message = "storage unavailable (Redis): nothing was stored; retry later"
        else:
            # Sent but unanswered (timeout, connection lost): Redis may still have run it.
            message = (
                "storage unavailable (Redis did not answer): the event(s) may have been "
                "stored; retry with the same id (a stored id is not stored again)"
            )
        return HTTPError(503, message, None, headers=[(b"retry-after", b"1")])

    # ----- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request: route and run it, send the answer, record its duration."""
        started = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        head: _Head | None = None
        try:
            head = _Head(scope["headers"])
            response = await self._dispatch(scope, receive, method, path, head)
        except HTTPError as err:
            if err.reason is not None:
                self.metrics.reject(err.reason)
            response = Response(err.status, err.body(), headers=err.headers)
        except Exception:
            log.exception("unexpected error on %s %s", method, path)
            body = orjson.dumps({"message": "internal error", "errors": []})
            response = Response(500, body)
        route = path if path in ROUTES else "other"
        await self._send(send, response, route, head.origin if head is not None else b"")
        self.metrics.observe(
            route,
            method if method in KNOWN_METHODS else "other",
            response.status,
            time.perf_counter() - started,
        )

    async def _dispatch(
        self, scope: Scope, receive: Receive, method: str, path: str, head: _Head
    ) -> Response:
        """The answer of the route's handler, or of OPTIONS; raise HTTPError for a refusal."""
        methods = ROUTES.get(path)
        if methods is None:
            raise HTTPError(404, f"no route {path}; see GET /openapi.json", "not_found")
        spec = methods.get(method)
        if spec is None and method == "HEAD":
            spec = methods.get("GET")  # HEAD answers like GET; uvicorn drops the body
        if spec is None:
            allow = ALLOW[path]
            if method == "OPTIONS":
                return self._preflight(allow, head.origin)
            raise HTTPError(
                405,
                f"method {method} not allowed on {path}; allowed: {allow}",
                "method_not_allowed",
                headers=[(b"allow", allow.encode())],
            )
        handler, role, legacy = spec
        if legacy is not None:
            self.metrics.legacy[legacy] += 1
        self._admit(role, head)
        body = await self._request_body(receive, head) if method == "POST" else b""
        response: Response = await getattr(self, handler)(scope, body)
        return response

    def _admit(self, role: str | None, head: _Head) -> None:
        """Refuse a request this shard's role does not serve, with a header sent twice, or
        without the role's token, in that order (a role refusal tells the most)."""
        if role is not None:
            self._check_role(role)
        if head.repeated:
            raise HTTPError(
                400,
                f"header {head.repeated[0]} sent more than once",
                "duplicate_header",
                [{"field": field, "message": "must be sent once"} for field in head.repeated],
            )
        if role is not None:
            self._authorize(role, head.authorization)

    async def _request_body(self, receive: Receive, head: _Head) -> bytes:
        """The body of a POST, refused unless JSON (no Content-Type is read as JSON)."""
        if head.content_type is not None and not _is_json(head.content_type):
            raise HTTPError(
                415,
                "request body must be JSON: send Content-Type: application/json",
                "unsupported_media_type",
                [{"field": "Content-Type", "message": "must be application/json"}],
            )
        return await self._read_body(receive, head.content_length)

    async def _send(self, send: Send, response: Response, route: str, origin: bytes) -> None:
        """Send the answer with its content headers and, for an allowed origin, CORS ones."""
        if response.status == 204:  # no content: no content headers either (RFC 9110 8.6)
            headers = response.headers
        else:
            headers = [
                (b"content-type", response.content_type),
                (b"content-length", str(len(response.body)).encode()),
                *response.headers,
            ]
        if origin and self._cors and (self._cors_any or origin in self._cors):
            headers.append((b"access-control-allow-origin", b"*" if self._cors_any else origin))
            headers.append((b"vary", b"Origin"))
            if route == "/events":  # let browser code read the truncation marker
                headers.append((b"access-control-expose-headers", EXPOSED))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _preflight(self, allow: str, origin: bytes) -> Response:
        headers = [(b"allow", allow.encode())]
        if origin and self._cors and (self._cors_any or origin in self._cors):
            headers += [
                (b"access-control-allow-methods", allow.encode()),
                (b"access-control-allow-headers", b"authorization, content-type"),
                (b"access-control-max-age", b"600"),
            ]
        return Response(204, b"", headers=headers)

    def _check_role(self, role: str) -> None:
        if not self._serves[role]:
            raise HTTPError(
                403,
                f"this shard has role {self.settings.role!r} and does not serve {role} routes",
                "forbidden_role",
            )

    def _authorize(self, role: str, authorization: bytes | None) -> None:
        token = self._tokens[role]
        if token is None:
            return
        # RFC 7235: the scheme is case-insensitive and followed by one or more spaces.
        scheme, _, credentials = (authorization or b"").partition(b" ")
        given = credentials.strip(b" ") if scheme.lower() == b"bearer" else b""
        if not hmac.compare_digest(given, token.encode()):
            what = "missing" if not authorization else "wrong"
            raise HTTPError(
                401,
                f"{what} token: send 'Authorization: Bearer <{role} token>'",
                "unauthorized",
                [{"field": "Authorization", "message": f"{what} Bearer token"}],
                headers=[(b"www-authenticate", b"Bearer")],
            )

    async def _read_body(self, receive: Receive, content_length: int) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = HTTPError(
            413,
            f"request body is larger than {limit} bytes (ESE_MAX_BODY_BYTES)",
            "body_too_large",
            [{"field": "body", "message": f"must be at most {limit} bytes"}],
        )
        if content_length > limit:
            raise too_large
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise too_large
            return bytes(body)
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "client disconnected while sending the body", "malformed_json")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _parse(body: bytes) -> Any:
        if not body:
            raise HTTPError(
                400,
                "request body is empty; send a JSON document",
                "malformed_json",
                [{"field": "body", "message": "is required"}],
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPError(
                400,
                f"request body is not valid JSON: {exc}",
                "malformed_json",
                [{"field": "body", "message": "must be valid JSON"}],
            ) from None

    async def _append(self, events: list[CheckedEvent]) -> list[bytes]:
        assert self.store is not None
        try:
            result = await self.store.append(events, lambda late: self._count(events, late))
        except RedisOutOfMemory as exc:
            raise self._store_is_full() from exc
        except REDIS_FAILURES as exc:
            raise self._redis_failed(exc, writes=True) from exc
        if not self.redis_up:
            self._set_redis(True)
        self.store_full = False
        self._count(events, result)
        return [with_server_ts(ev.payload, sid) for ev, sid in zip(events, result.ids, strict=True)]

    def _count(self, events: list[CheckedEvent], result: AppendResult) -> None:
        """Count stored (non-duplicate) events, also for a reply that came after a 503."""
        self.metrics.stream_length.set(result.stream_length)
        if len(events) == 1:
            if not result.duplicates[0]:
                self.metrics.ingest(events[0].type_key)
            return
        counts: dict[str, int] = {}
        for event, duplicate in zip(events, result.duplicates, strict=True):
            if not duplicate:
                counts[event.type_key] = counts.get(event.type_key, 0) + 1
        for type_key, count in counts.items():
            self.metrics.ingest(type_key, count)

    # ----- handlers --------------------------------------------------------------------------

    async def h_health(self, scope: Scope, body: bytes) -> Response:
        doc = {
            "message": f"Server running @:{self.settings.port}",
            "role": self.settings.role,
            "redis": "up" if self.redis_up else "down",
        }
        return Response(200, orjson.dumps(doc))

    async def h_metrics(self, scope: Scope, body: bytes) -> Response:
        return Response(200, self.metrics.render(), METRICS_CONTENT_TYPE)

    async def h_openapi(self, scope: Scope, body: bytes) -> Response:
        return Response(200, self._openapi)

    async def h_add_event(self, scope: Scope, body: bytes) -> Response:
        errors: list[FieldError] = []
        event = check_event(self._parse(body), "", errors)
        if event is None:
            raise HTTPError(400, "invalid event; nothing was stored", "schema", errors)
        (stored,) = await self._append([event])
        return Response(201, stored)

    async def h_add_events(self, scope: Scope, body: bytes) -> Response:
        events, errors, too_large = check_batch(self._parse(body), self.settings.max_batch)
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
        stored = await self._append(events)
        return Response(200, b'{"events":[' + b",".join(stored) + b"]}")

    async def h_get_events(self, scope: Scope, body: bytes) -> Response:
        assert self.store is not None
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
        if "since" not in params and "limit" not in params:
            return await self._read_window()
        errors: list[FieldError] = []
        since = params.get("since", "0").strip()
        if not valid_cursor(since):
            errors.append(
                {"field": "since", "message": "must be 0 or a cursor returned by this endpoint"}
            )
        limit = DEFAULT_LIMIT
        raw_limit = params.get("limit", str(DEFAULT_LIMIT)).strip()
        if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            errors.append(
                {"field": "limit", "message": f"must be an integer from 1 to {MAX_LIMIT}"}
            )
        else:
            limit = int(raw_limit)
        if errors:
            raise HTTPError(400, "invalid query parameters", "bad_query", errors)
        try:
            entries = await self.store.read_since(since, limit)
        except REDIS_FAILURES as exc:
            raise self._redis_failed(exc) from exc
        cursor = entries[-1][0].decode() if entries else since
        events = b",".join(with_server_ts(payload, sid) for sid, _, payload in entries)
        return Response(200, b'{"events":[' + events + b'],"cursor":' + orjson.dumps(cursor) + b"}")

    async def _read_window(self) -> Response:
        """The original shape, newest LEGACY_READ_CAP events of the window (marked if cut)."""
        assert self.store is not None
        # One big read at a time: concurrent ones would each hold a copy of the window.
        async with self._window_reads:
            try:
                entries, truncated = await self.store.read_window()
            except REDIS_FAILURES as exc:
                raise self._redis_failed(exc) from exc
            groups: dict[bytes, list[bytes]] = {}
            for sid, ip, payload in entries:
                groups.setdefault(ip, []).append(with_server_ts(payload, sid))
            del entries
            parts = [
                b'{"ip":'
                + orjson.dumps(ip.decode(errors="replace"))
                + b',"eventLogs":['
                + b",".join(logs)
                + b"]}"
                for ip, logs in groups.items()
            ]
            del groups
            headers = [
                (b"x-ese-truncated", b"true" if truncated else b"false"),
                (b"x-ese-read-cap", str(LEGACY_READ_CAP).encode()),
            ]
            return Response(200, b"[" + b",".join(parts) + b"]", headers=headers)

    async def h_stats(self, scope: Scope, body: bytes) -> Response:
        assert self.store is not None
        try:
            doc = await self.store.stats(self.settings.retention_seconds)
        except REDIS_FAILURES as exc:
            raise self._redis_failed(exc) from exc
        return Response(200, orjson.dumps(doc))
