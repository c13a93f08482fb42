"""`ese-server` / `python -m ese_server`: configure from env and flags, then serve.

Invalid configuration prints one line (what is wrong + how to fix it) and exits with code 2.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from ese_server.config import DRAIN_SECONDS, ConfigError, Settings, load_settings
from ese_server.redis_client import Connect, RedisClient


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(settings: Settings, connect: Connect = RedisClient) -> None:
    """Run the shard until SIGTERM/SIGINT (uvicorn drains in-flight requests first).

    `connect` makes the store's Redis client (benchmarks inject redis-py's to compare)."""
    import uvicorn

    from ese_server.app import App
    from ese_server.http_protocol import protocol_class

    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = App(settings, connect=connect)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="auto",  # uvloop where installed (Linux image), asyncio elsewhere (Windows)
        # httptools where installed, with a cap on the request head (uvicorn has none)
        http=protocol_class(app.metrics.reject),
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=DRAIN_SECONDS,
        backlog=4096,
    )
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the
    # handler installed before it ran; exiting 0 there makes a graceful stop a clean exit
    # (not 143, and no KeyboardInterrupt traceback).
    signal.signal(signal.SIGTERM, _exit_quietly)
    signal.signal(signal.SIGINT, _exit_quietly)
    uvicorn.Server(config).run()


def main(argv: Sequence[str] | None = None, connect: Connect = RedisClient) -> int:
    """Console entry point (`connect`: see `serve`)."""
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"ese-server: error: {exc}", file=sys.stderr)
        print("ese-server: hint: see `ese-server --help` for every setting", file=sys.stderr)
        return 2
    client = "" if connect is RedisClient else f" redis-client={getattr(connect, '__name__', '?')}"
    print(
        f"ese-server: role={settings.role} port={settings.port} "
        f"redis={settings.redacted_redis_url()} retention={settings.retention_seconds}s{client}",
        file=sys.stderr,
        flush=True,
    )
    serve(settings, connect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
