"""Settings of ese-client: environment variables and the same-named command-line flags.

A flag wins over its environment variable, which wins over the default. Invalid values raise
`ConfigError` with a one-line message and a hint, which the CLI prints before exiting with 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_SERVER = "http://localhost:8100"


class ConfigError(ValueError):
    """A setting has an invalid value; the message is one line and names the setting."""


@dataclass(frozen=True)
class Settings:
    """Everything one ese-client run needs to know."""

    server: str = DEFAULT_SERVER
    delay_ms: int = 300
    limit: int = 50_000
    batch_size: int = 5
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

    @property
    def base_url(self) -> str:
        """The server URL without a trailing slash, so routes join as `base_url + '/event'`."""
        return self.server.rstrip("/")


@dataclass(frozen=True)
class _Option:
    """One setting: its field, environment variable, flag(s), parser and hint."""

    field: str
    env: str
    flags: tuple[str, ...]
    kind: str  # "int", "float" or "str": how the raw text is converted
    minimum: float | None
    hint: str


_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "server",
        "REACT_APP_BE_SERVER",
        ("--server", "--be-server", "--react-app-be-server"),
        "str",
        None,
        "use the ingest endpoint, e.g. http://localhost:8100",
    ),
    _Option(
        "delay_ms",
        "ESE_EVENT_DELAY_MS",
        ("--event-delay-ms", "--delay-ms"),
        "int",
        0,
        "milliseconds between ticks; 0 turns the simulator into a load generator",
    ),
    _Option(
        "limit",
        "ESE_EVENT_LIMIT",
        ("--event-limit", "--limit"),
        "int",
        0,
        "total number of events to create, e.g. 50000",
    ),
    _Option(
        "batch_size",
        "ESE_BATCH_SIZE",
        ("--batch-size",),
        "int",
        1,
        "click events per POST /events request, e.g. 5",
    ),
    _Option(
        "concurrency",
        "ESE_CONCURRENCY",
        ("--concurrency",),
        "int",
        1,
        "number of simulated clients in this process, e.g. 1 or 8",
    ),
    _Option(
        "token",
        "ESE_INGEST_TOKEN",
        ("--ingest-token", "--token"),
        "str",
        None,
        "the ingest shards' bearer token; leave unset when they need none",
    ),
    _Option(
        "order_step_ms",
        "ESE_ORDER_STEP_MS",
        ("--order-step-ms",),
        "int",
        0,
        "milliseconds between the states of one order, 200 in the original",
    ),
    _Option(
        "retry_seconds",
        "ESE_RETRY_SECONDS",
        ("--retry-seconds",),
        "float",
        0,
        "how long one request is retried before its events are given up on",
    ),
    _Option(
        "stop_grace_seconds",
        "ESE_STOP_GRACE_SECONDS",
        ("--stop-grace-seconds",),
        "float",
        0,
        "after SIGINT/SIGTERM, seconds left to flush and retry before giving up, e.g. 5",
    ),
    _Option(
        "max_attempts",
        "ESE_RETRY_ATTEMPTS",
        ("--max-attempts",),
        "int",
        1,
        "attempts per request, the first one included",
    ),
    _Option(
        "timeout_seconds",
        "ESE_REQUEST_TIMEOUT_SECONDS",
        ("--timeout-seconds",),
        "float",
        0.001,
        "timeout of one HTTP request in seconds",
    ),
    _Option(
        "seed", "ESE_SEED", ("--seed",), "int", None, "an integer seed makes the simulation repeat"
    ),
)


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as one line (exit 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message}; hint: run `ese-client --help` for the options")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every option defaults to None so the environment can fill in."""
    parser = _OneLineParser(
        prog="ese-client",
        description="Simulate ese clients: order life cycles and click-stream bursts.",
    )
    for option in _OPTIONS:
        parser.add_argument(
            *option.flags,
            dest=option.field,
            default=None,
            metavar=option.env,
            help=f"{option.hint} (env {option.env})",
        )
    return parser


def _convert(option: _Option, raw: str, source: str) -> object:
    """Turn the raw text of one setting into its value, or raise ConfigError."""
    text = raw.strip()
    if option.kind == "str":
        return text
    try:
        value: float = int(text) if option.kind == "int" else float(text)
    except ValueError:
        kind = "an integer" if option.kind == "int" else "a number"
        raise ConfigError(f"{source} must be {kind}, got {raw!r}; hint: {option.hint}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{source} must be a finite number, got {raw!r}; hint: {option.hint}")
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(
            f"{source} must be at least {option.minimum:g}, got {raw!r}; hint: {option.hint}"
        )
    return value


def _check_server(url: str, source: str) -> str:
    """Accept only an absolute http(s) URL with a host, so a typo fails before any request."""
    hint = "hint: set it like http://localhost:8100 (scheme and host, no query)"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ConfigError(f"{source} is not a valid URL: {url!r}; {hint}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{source} must be an http(s) URL with a host, got {url!r}; {hint}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{source} must not carry a query or fragment, got {url!r}; {hint}")
    del port
    return url


def load_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """Settings from flags (first), then the environment, then the defaults."""
    args = build_parser().parse_args(list(argv) if argv is not None else [])
    values: dict[str, object] = {}
    for option in _OPTIONS:
        flag_value = getattr(args, option.field)
        if flag_value is not None:
            raw, source = str(flag_value), option.flags[0]
        elif env.get(option.env, "").strip():
            raw, source = env[option.env], option.env
        else:
            continue
        values[option.field] = _convert(option, raw, source)
        if option.field == "server":
            values["server"] = _check_server(str(values["server"]), source)
    token = values.get("token")
    if token == "":
        values["token"] = None
    return Settings(**values)  # type: ignore[arg-type]
