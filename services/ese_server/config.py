"""Shard configuration: environment variables, overridable by command-line flags.

Every setting has an environment name kept from the original demo (SERVER_PORT, ESE_ROLE,
REDIS_URL, ...) and a flag with the same meaning, listed in the `OPTIONS` table (read by the
shared `ese_settings` helper, like the client's and the consumer's settings). Invalid values
raise `ConfigError`, which `__main__` turns into a one-line message with a hint and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from ese_settings import ConfigError, Convert, Option, load, text, verbatim
from ese_settings import build_parser as settings_parser

__all__ = ["ROLES", "ConfigError", "Settings", "build_parser", "load_settings"]

ROLES = ("ingest", "analytics", "all")
# Seconds uvicorn lets in-flight requests finish after SIGTERM/SIGINT. The stack's
# stop_grace_period is derived from it (ese/render/common.py keeps the same number, checked by
# tests/render/test_stop_grace.py), so Docker never kills a draining shard.
DRAIN_SECONDS = 10


@dataclass(frozen=True)
class Settings:
    """Everything one shard needs to run."""

    port: int = 2001
    host: str = "0.0.0.0"
    role: str = "all"
    redis_url: str = "redis://127.0.0.1:6379/0"
    retention_seconds: int = 300
    ingest_token: str | None = None
    analytics_token: str | None = None
    max_batch: int = 1000
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    key_prefix: str = "ese"
    log_level: str = "warning"

    @property
    def serves_ingest(self) -> bool:
        return self.role in ("ingest", "all")

    @property
    def serves_analytics(self) -> bool:
        return self.role in ("analytics", "all")

    def redacted_redis_url(self) -> str:
        """The Redis URL without its password, for logs and error messages."""
        parts = urlsplit(self.redis_url)
        if parts.password is None:
            return self.redis_url
        return urlunsplit(parts._replace(netloc=with_password(parts, "***")))


def with_password(parts: SplitResult, password: str) -> str:
    """The URL's netloc rebuilt from its parts with `password` (already quoted) in it.

    WHY rebuild: `netloc` already holds any user name and password, so prefixing it would
    give `user:pw@user@host`. IPv6 hosts get their brackets back; a unix:// URL has no host.
    """
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.username or ''}:{password}@{host}"


def _integer(minimum: int, maximum: int, hint: str) -> Convert:
    def convert(raw: str, source: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{source}={raw!r} is not an integer; {hint}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{source}={value} is out of range {minimum}..{maximum}; {hint}")
        return value

    return convert


def _role(raw: str, source: str) -> str:
    role = raw.strip().lower()
    if role not in ROLES:
        raise ConfigError(f"{source}={role!r} is not a role; use one of {', '.join(ROLES)}")
    return role


def _redis_url(raw: str, source: str) -> str:
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise ConfigError(
            f"{source}={url!r} is not a Redis URL; use e.g. redis://:password@redis-server:6379/0"
        )
    try:
        parts.port  # noqa: B018 - property raises on a bad port
    except ValueError:
        raise ConfigError(f"{source}={url!r} has an invalid port; use e.g. :6379") from None
    return url


def _origins(raw: str, source: str) -> tuple[str, ...]:
    # Commas or spaces: HAProxy reads the same variable as a space-separated list.
    origins = tuple(o for o in re.split(r"[,\s]+", raw) if o)
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"{source} entry {origin!r} is not an origin; "
                "use e.g. http://localhost:8501 (separated by spaces or commas) or *"
            )
    return origins


def _one_of(choices: tuple[str, ...], noun: str, use: str) -> Convert:
    """A converter that takes one of `choices` (any case) and names them when it refuses."""

    def convert(raw: str, source: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{source}={value!r} is not a {noun}; use {use}")
        return value

    return convert


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_POSITIVE = "use a positive whole number"

# Flags win over the environment; blank values count as unset (the Settings default applies).
OPTIONS: tuple[Option, ...] = (
    Option(
        "port",
        "SERVER_PORT",
        ("--port",),
        _integer(1, 65535, "use a free TCP port, e.g. 2001"),
        "TCP port to listen on (default 2001)",
    ),
    Option("host", "ESE_HOST", ("--host",), text, "address to bind (default 0.0.0.0)"),
    Option("role", "ESE_ROLE", ("--role",), _role, "ingest, analytics or all (default all)"),
    Option(
        "redis_url", "REDIS_URL", ("--redis-url",), _redis_url, "redis://[:password@]host:port/db"
    ),
    Option(
        "redis_password",
        "REDIS_PASSWORD",
        ("--redis-password",),
        verbatim,
        "Redis password, if not in REDIS_URL",
        secret_file=True,
    ),
    Option(
        "retention_seconds",
        "ESE_RETENTION_SECONDS",
        ("--retention-seconds",),
        _integer(1, 10 * 365 * 86400, _POSITIVE),
        "events kept in the stream (default 300)",
    ),
    Option(
        "ingest_token",
        "ESE_INGEST_TOKEN",
        ("--ingest-token",),
        verbatim,
        "Bearer token required by /event(s) POST",
        secret_file=True,
    ),
    Option(
        "analytics_token",
        "ESE_ANALYTICS_TOKEN",
        ("--analytics-token",),
        verbatim,
        "Bearer token required by GET /events, /stats",
        secret_file=True,
    ),
    Option(
        "max_batch",
        "ESE_MAX_BATCH",
        ("--max-batch",),
        _integer(1, 100_000, _POSITIVE),
        "most events per POST /events (default 1000)",
    ),
    Option(
        "max_body_bytes",
        "ESE_MAX_BODY_BYTES",
        ("--max-body-bytes",),
        _integer(256, 256 * 1024 * 1024, _POSITIVE),
        "largest request body (default 1048576)",
    ),
    Option(
        "cors_origins",
        "ESE_CORS_ORIGINS",
        ("--cors-origins",),
        _origins,
        "allowed origins, separated by spaces or commas, or *",
    ),
    Option(
        "log_level",
        "ESE_LOG_LEVEL",
        ("--log-level",),
        _one_of(LOG_LEVELS, "level", "critical, error, warning, info or debug"),
        "uvicorn log level (default warning)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every flag defaults to its environment variable."""
    return settings_parser(
        "ese-server",
        "Run one ese-server shard (event API on a Redis Stream).",
        OPTIONS,
        epilog="Each flag can also be given through the environment variable in brackets.",
    )


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from flags (first) and the environment; raise ConfigError when invalid."""
    env = os.environ if environ is None else environ
    values = load(OPTIONS, env, build_parser(), sys.argv[1:] if argv is None else argv)
    password = values.pop("redis_password", None)
    url = values.get("redis_url", Settings.redis_url)
    parts = urlsplit(url)
    if password and parts.password is None:
        # Put the password into the URL so one string configures the connection.
        netloc = with_password(parts, quote(password, safe=""))
        values["redis_url"] = urlunsplit(parts._replace(netloc=netloc))
    return Settings(**values)
