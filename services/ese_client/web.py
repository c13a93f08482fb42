"""`ese-client --web`: serve the click-through page (the original demo's standalone mode).

The page is static HTML + JS (`static/`); the browser posts from it, cross-origin, straight to
the load balancer (REACT_APP_BE_SERVER) with the ingest token, so the shards must allow the
page's origin (ESE_CORS_ORIGINS). This server only hands out the files and injects the settings
as a JSON blob: the token is a write key that names the source, not a secret (anyone who can
open the page may post events, as with the original app).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ese_client.config import Settings
from ese_client.identity import own_ipv4

CONFIG_MARKER = "__ESE_CONFIG__"
# A partial batch of clicks goes after this long without a new one.
IDLE_FLUSH_MS = 1000
# Attempts per request (the first included), with backoff 0.25, 0.5, 1, 2 s in between: a person
# waiting for the counters sees the outcome within about 4 s.
MAX_ATTEMPTS = 5
BACKOFF_MS = 250
MAX_BACKOFF_MS = 4000
STATIC = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}


def identity(ip: str | None = None) -> str:
    """The page's `ip` field: like a simulator's `<IPv4>-<instance>`, with `web` as the
    instance, so the page is told apart from a simulator on the same host."""
    return f"{ip or own_ipv4()}-web"


def page_config(settings: Settings, ip: str) -> dict[str, Any]:
    """What the page's script reads from the JSON blob."""
    return {
        "server": settings.base_url,
        "token": settings.token,
        "ip": ip,
        "batchSize": settings.batch_size,
        "idleFlushMs": IDLE_FLUSH_MS,
        "maxAttempts": MAX_ATTEMPTS,
        "backoffMs": BACKOFF_MS,
        "maxBackoffMs": MAX_BACKOFF_MS,
    }


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: `<`, `>` and `&` are escaped as \\u003c
    etc., so no value (a token holding `</script>`, say) can close the element or open a
    comment; ensure_ascii covers U+2028/2029. JSON.parse reads it back unchanged."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of an http(s) URL, for the page's connect-src."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


def content_security_policy(server: str) -> str:
    """Scripts and styles only from this server, requests only to the event server."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {origin_of(server)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _static(name: str) -> str:
    return (
        resources.files("ese_client").joinpath("static").joinpath(name).read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class Page:
    """The rendered files, built once at start: the page never changes while served."""

    index: str
    csp: str
    assets: dict[str, tuple[str, str]]  # name -> (text, content type)


def render(settings: Settings, ip: str | None = None) -> Page:
    """The page with its settings injected, and its static assets."""
    template = _static("index.html")
    if template.count(CONFIG_MARKER) != 1:
        raise RuntimeError(f"index.html must hold {CONFIG_MARKER} exactly once")
    blob = script_json(page_config(settings, identity(ip)))
    assets = {name: (_static(name), kind) for name, kind in STATIC.items()}
    csp = content_security_policy(settings.server)
    return Page(template.replace(CONFIG_MARKER, blob), csp, assets)


def build_app(page: Page) -> web.Application:
    """The aiohttp application: GET / (the page), /static/app.js, /static/app.css, /healthz."""
    common = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # A new start may change the token or the server: never serve a stale copy.
        "Cache-Control": "no-store",
    }

    async def index(_request: web.Request) -> web.Response:
        headers = {**common, "Content-Security-Policy": page.csp, "X-Frame-Options": "DENY"}
        return web.Response(text=page.index, content_type="text/html", headers=headers)

    async def asset(request: web.Request) -> web.Response:
        found = page.assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="not found")
        text, kind = found
        return web.Response(text=text, content_type=kind, headers=common)

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok", headers=common)

    async def no_icon(_request: web.Request) -> web.Response:
        # Browsers ask for it on their own; an empty answer keeps their console free of 404s.
        return web.Response(status=204, headers=common)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/healthz", health)
    app.router.add_get("/favicon.ico", no_icon)
    return app


class PortBusy(OSError):
    """The page's address cannot be bound (in use, or not an address of this machine)."""


async def serve(settings: Settings, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the page on host:port until `stop` is set."""
    runner = web.AppRunner(build_app(render(settings)), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise PortBusy(exc.errno, exc.strerror or str(exc)) from None
        shown = "localhost" if host in {"0.0.0.0", "::", ""} else host
        print(
            f"ese-client: click-through page on http://{shown}:{port}/ "
            f"(posting to {settings.base_url}, "
            f"{'with the ingest token' if settings.token else 'without a token'})",
            flush=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def run(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGINT/SIGTERM; the exit code (2 when the address cannot be bound)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError):
                # Windows: no add_signal_handler; the plain handler hands over to the loop.
                signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
        await serve(settings, host, port, stop)

    try:
        asyncio.run(main())
    except PortBusy as exc:
        print(
            f"ese-client: error: cannot serve the page on {host}:{port} ({exc.strerror}); "
            "hint: pick a free port with --port (or ESE_WEB_PORT), or stop what uses it; "
            "--host (ESE_WEB_HOST) must be an address of this machine",
            file=sys.stderr,
        )
        return 2
    return 0
