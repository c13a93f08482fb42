"""Settings of ese-client: environment variables and the same-named command-line flags.

The `OPTIONS` table is read by the shared `ese_settings` helper, like the server's and the
consumer's settings: a flag wins over its environment variable, which wins over the default.
Invalid values raise `ConfigError` with a one-line message and a hint, which the CLI prints
before exiting with 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ese_settings import ConfigError, Convert, Option, resolve, text
from ese_settings import build_parser as settings_parser

__all__ = ["ConfigError", "Settings", "build_parser", "load_settings"]

# This image ships without topology.toml, so it keeps its own defaults; they are the stack's
# (the load balancer's port, [clients] and the page's port, ese.webclient_port), and
# tests/tasks/test_defaults.py fails when they drift apart.
DEFAULT_SERVER = "http://localhost:8100"
DEFAULT_DELAY_MS = 300
DEFAULT_LIMIT = 50_000
DEFAULT_BATCH_SIZE = 5
DEFAULT_WEB_PORT = 3006


@dataclass(frozen=True)
class Settings:
    """Everything one ese-client run needs to know."""

    server: str = DEFAULT_SERVER
    delay_ms: int = DEFAULT_DELAY_MS
    limit: int = DEFAULT_LIMIT
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = 1
    token: str | None = None
    order_step_ms: int = 200
    retry_seconds: float = 30.0
    # After SIGINT/SIGTERM: the total time left for retries under way and the final flush, so
    # the client ends well within `docker stop`'s 10 s grace period.
    stop_grace_seconds: float = 5.0
    max_attempts: int = 20
    timeout_seconds: float = 10.0
    seed: int | None = None
    # `--web`: serve the click-through page instead of simulating (ese_client.web).
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = DEFAULT_WEB_PORT

    @property
    def base_url(self) -> str:
        """The server URL without a trailing slash, so routes join as `base_url + '/event'`."""
        return self.server.rstrip("/")


def _number(kind: type[int] | type[float], minimum: float | None, hint: str) -> Convert:
    """A converter to int or float, finite and at least `minimum`."""

    def convert(raw: str, source: str) -> int | float:
        try:
            value = kind(raw.strip())
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{source} must be {what}, got {raw!r}; hint: {hint}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{source} must be a finite number, got {raw!r}; hint: {hint}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{source} must be at least {minimum:g}, got {raw!r}; hint: {hint}")
        return value

    return convert


def _server_url(raw: str, source: str) -> str:
    """Accept only an absolute http(s) URL with a host, so a typo fails before any request."""
    url = raw.strip()
    hint = f"hint: set it like {DEFAULT_SERVER} (scheme and host, no query)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ConfigError(f"{source} is not a valid URL: {url!r}; {hint}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{source} must be an http(s) URL with a host, got {url!r}; {hint}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{source} must not carry a query or fragment, got {url!r}; {hint}")
    return url


def _port(raw: str, source: str) -> int:
    """A TCP port number, 1..65535."""
    hint = f"hint: the page's port, e.g. {DEFAULT_WEB_PORT} (the original app's)"
    try:
        port = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{source} must be a TCP port number, got {raw!r}; {hint}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{source} must be a TCP port (1..65535), got {raw!r}; {hint}")
    return port


def _numeric(
    field: str,
    env: str,
    flags: tuple[str, ...],
    kind: type[int] | type[float],
    minimum: float | None,
    hint: str,
) -> Option:
    """A numeric option whose hint is both its help and the tail of its error messages."""
    return Option(field, env, flags, _number(kind, minimum, hint), hint)


# Flags win over the environment; blank values count as unset (the Settings default applies).
OPTIONS: tuple[Option, ...] = (
    Option(
        "server",
        "REACT_APP_BE_SERVER",
        ("--server", "--be-server", "--react-app-be-server"),
        _server_url,
        f"use the ingest endpoint, e.g. {DEFAULT_SERVER}",
    ),
    _numeric(
        "delay_ms",
        "ESE_EVENT_DELAY_MS",
        ("--event-delay-ms", "--delay-ms"),
        int,
        0,
        "milliseconds between ticks; 0 turns the simulator into a load generator",
    ),
    _numeric(
        "limit",
        "ESE_EVENT_LIMIT",
        ("--event-limit", "--limit"),
        int,
        0,
        f"total number of events to create, e.g. {DEFAULT_LIMIT}",
    ),
    _numeric(
        "batch_size",
        "ESE_BATCH_SIZE",
        ("--batch-size",),
        int,
        1,
        f"click events per POST /events request, e.g. {DEFAULT_BATCH_SIZE}",
    ),
    _numeric(
        "concurrency",
        "ESE_CONCURRENCY",
        ("--concurrency",),
        int,
        1,
        "number of simulated clients in this process, e.g. 1 or 8",
    ),
    Option(
        "token",
        "ESE_INGEST_TOKEN",
        ("--ingest-token", "--token"),
        text,
        "the ingest shards' bearer token; leave unset when they need none",
    ),
    _numeric(
        "order_step_ms",
        "ESE_ORDER_STEP_MS",
        ("--order-step-ms",),
        int,
        0,
        "milliseconds between the states of one order, 200 in the original",
    ),
    _numeric(
        "retry_seconds",
        "ESE_RETRY_SECONDS",
        ("--retry-seconds",),
        float,
        0,
        "how long one request is retried before its events are given up on",
    ),
    _numeric(
        "stop_grace_seconds",
        "ESE_STOP_GRACE_SECONDS",
        ("--stop-grace-seconds",),
        float,
        0,
        "after SIGINT/SIGTERM, seconds left to flush and retry before giving up, e.g. 5",
    ),
    _numeric(
        "max_attempts",
        "ESE_RETRY_ATTEMPTS",
        ("--max-attempts",),
        int,
        1,
        "attempts per request, the first one included",
    ),
    _numeric(
        "timeout_seconds",
        "ESE_REQUEST_TIMEOUT_SECONDS",
        ("--timeout-seconds",),
        float,
        0.001,
        "timeout of one HTTP request in seconds",
    ),
    _numeric(
        "seed", "ESE_SEED", ("--seed",), int, None, "an integer seed makes the simulation repeat"
    ),
    Option(
        "web_host",
        "ESE_WEB_HOST",
        ("--host",),
        text,
        "with --web: the address the page listens on (127.0.0.1; 0.0.0.0 in a container)",
    ),
    Option(
        "web_port",
        "ESE_WEB_PORT",
        ("--port",),
        _port,
        f"with --web: the page's port ({DEFAULT_WEB_PORT})",
    ),
)
# Flags that only mean something with --web (their variables may be set for any run).
_WEB_ONLY = ("web_host", "web_port")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every option defaults to None so the environment can fill in."""
    parser = settings_parser(
        "ese-client", "Simulate ese clients: order life cycles and click-stream bursts.", OPTIONS
    )
    # A mode switch, not a setting: it takes no value and has no variable.
    parser.add_argument(
        "--web",
        action="store_true",
        help="serve the click-through page (the original app's standalone mode) instead; "
        "the browser posts to REACT_APP_BE_SERVER with ESE_INGEST_TOKEN",
    )
    return parser


def load_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """Settings from flags (first), then the environment, then the defaults."""
    args = build_parser().parse_args(list(argv) if argv is not None else [])
    values, errors = resolve(OPTIONS, env, args)
    if errors:
        raise errors[0]
    if not args.web:
        for option in OPTIONS:
            if option.field in _WEB_ONLY and getattr(args, option.field) is not None:
                raise ConfigError(
                    f"{option.flags[0]} only applies to the page; "
                    f"hint: ese-client --web {option.flags[0]} ..."
                )
    return Settings(**values, web=args.web)
