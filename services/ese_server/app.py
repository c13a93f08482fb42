"""The shard's HTTP application: a lean raw-ASGI app (served by uvicorn + httptools + uvloop).

WHY raw ASGI and not a framework: the single-event path has a budget of ~150 µs of CPU per
request on this 2-core box; a framework's routing, request objects and middleware stack cost
more than the validation, the Redis call and the metrics together. The routes are few and
fixed, so a dict lookup routes them.

This module holds the ASGI entry, the lifespan and the routing; the jobs around it are in
asgi.py (shapes), errors.py (the error model), admission.py (roles, tokens), cors.py,
body.py (reading request bodies), handlers.py (the routes) and lifecycle.py (the store link).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ese_server.admission import Admission
from ese_server.asgi import Receive, RequestHead, Response, Scope, Send
from ese_server.body import read_body
from ese_server.config import Settings
from ese_server.cors import Cors
from ese_server.errors import INTERNAL_ERROR, HTTPError
from ese_server.handlers import Handlers
from ese_server.lifecycle import StoreLink
from ese_server.metrics import Metrics
from ese_server.redis_client import Connect, RedisClient

log = logging.getLogger("ese_server")

Handler = Callable[[Scope, bytes], Awaitable[Response]]

KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
# path -> {method: (Handlers method, role or None for every role, legacy counter or None)}
ROUTES: dict[str, dict[str, tuple[str, str | None, str | None]]] = {
    "/": {"GET": ("health", None, "health_ping_count")},
    "/metrics": {"GET": ("metrics_text", None, None)},
    "/openapi.json": {"GET": ("openapi_json", None, None)},
    "/event": {"POST": ("add_event", "ingest", "add_event_ping_count")},
    "/events": {
        "POST": ("add_events", "ingest", "add_events_ping_count"),
        "GET": ("get_events", "analytics", "get_events_ping_count"),
    },
    "/stats": {"GET": ("stats", "analytics", None)},
}
# The Allow header per path: its methods, HEAD where GET is served, and OPTIONS.
ALLOW = {
    path: ", ".join([*methods, *(["HEAD"] if "GET" in methods else []), "OPTIONS"])
    for path, methods in ROUTES.items()
}


class App:
    """ASGI callable of one shard. `connect` makes its Redis client (benchmarks inject
    another one to compare)."""

    def __init__(
        self, settings: Settings, metrics: Metrics | None = None, connect: Connect = RedisClient
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.link = StoreLink(settings, self.metrics, connect)
        self.admission = Admission(settings)
        self.cors = Cors(settings.cors_origins)
        handlers = Handlers(settings, self.metrics, self.link)
        # path -> {method: (bound handler, role, legacy counter)}, resolved once
        self.routes: dict[str, dict[str, tuple[Handler, str | None, str | None]]] = {
            path: {
                method: (getattr(handlers, name), role, legacy)
                for method, (name, role, legacy) in methods.items()
            }
            for path, methods in ROUTES.items()
        }

    @property
    def redis_up(self) -> bool:
        """Whether the last look at Redis found it up (the monitor refreshes it every second)."""
        return self.link.redis_up

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
                    await self.link.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.link.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request: route and run it, send the answer, record its duration."""
        started = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        head: RequestHead | None = None
        try:
            head = RequestHead(scope["headers"])
            response = await self._dispatch(scope, receive, method, path, head)
        except HTTPError as err:
            if err.reason is not None:
                self.metrics.reject(err.reason)
            response = Response(err.status, err.body(), headers=err.headers)
        except Exception:
            log.exception("unexpected error on %s %s", method, path)
            response = Response(500, INTERNAL_ERROR)
        route = path if path in ROUTES else "other"
        if head is None:
            await self._send(send, response, route, b"", False)
        else:
            await self._send(send, response, route, head.origin, head.body_pending)
        self.metrics.observe(
            route,
            method if method in KNOWN_METHODS else "other",
            response.status,
            time.perf_counter() - started,
        )

    async def _dispatch(
        self, scope: Scope, receive: Receive, method: str, path: str, head: RequestHead
    ) -> Response:
        """The answer of the route's handler, or of OPTIONS; raise HTTPError for a refusal."""
        methods = self.routes.get(path)
        if methods is None:
            raise HTTPError(404, f"no route {path}; see GET /openapi.json", "not_found")
        spec = methods.get(method)
        if spec is None and method == "HEAD":
            spec = methods.get("GET")  # HEAD answers like GET; uvicorn drops the body
        if spec is None:
            allow = ALLOW[path]
            if method == "OPTIONS":
                return self.cors.preflight(allow, head.origin)
            raise HTTPError(
                405,
                f"method {method} not allowed on {path}; allowed: {allow}",
                "method_not_allowed",
                headers=[(b"allow", allow.encode())],
            )
        handler, role, legacy = spec
        if legacy is not None:
            self.metrics.legacy[legacy] += 1
        self.admission.admit(role, head)
        body = b""
        if method == "POST":
            body = await read_body(receive, head, self.settings.max_body_bytes)
        return await handler(scope, body)

    async def _send(
        self, send: Send, response: Response, route: str, origin: bytes, close: bool
    ) -> None:
        """Send the answer with its content headers and, for an allowed origin, CORS ones.

        `close`: the request's body was left unread (refused before it was read, or not read
        by the route), so the connection closes after the answer instead of reading on to the
        next request through a body of any length; http_protocol.py closes it lingeringly."""
        if response.status == 204:  # no content: no content headers either (RFC 9110 8.6)
            headers = list(response.headers)
        else:
            headers = [
                (b"content-type", response.content_type),
                (b"content-length", str(len(response.body)).encode()),
                *response.headers,
            ]
        headers += self.cors.answer_headers(origin, route)
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
