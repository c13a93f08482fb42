"""Shard configuration: environment variables, overridable by command-line flags.

Every setting has a DESIGN-fixed environment name (SERVER_PORT, ESE_ROLE, REDIS_URL, ...) and a
flag with the same meaning. Invalid values raise `ConfigError`, which `__main__` turns into a
one-line message with a hint and exit code 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

ROLES = ("ingest", "analytics", "all")


class ConfigError(ValueError):
    """A setting is invalid; the message names it and says how to fix it."""


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


# (flag, env var, help). Flags win over the environment.
_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--port", "SERVER_PORT", "TCP port to listen on (default 2001)"),
    ("--host", "ESE_HOST", "address to bind (default 0.0.0.0)"),
    ("--role", "ESE_ROLE", "ingest, analytics or all (default all)"),
    ("--redis-url", "REDIS_URL", "redis://[:password@]host:port/db"),
    ("--redis-password", "REDIS_PASSWORD", "Redis password, if not in REDIS_URL"),
    ("--retention-seconds", "ESE_RETENTION_SECONDS", "events kept in the stream (default 300)"),
    ("--ingest-token", "ESE_INGEST_TOKEN", "Bearer token required by /event(s) POST"),
    ("--analytics-token", "ESE_ANALYTICS_TOKEN", "Bearer token required by GET /events, /stats"),
    ("--max-batch", "ESE_MAX_BATCH", "most events per POST /events (default 1000)"),
    ("--max-body-bytes", "ESE_MAX_BODY_BYTES", "largest request body (default 1048576)"),
    ("--cors-origins", "ESE_CORS_ORIGINS", "comma-separated allowed origins, or *"),
    ("--log-level", "ESE_LOG_LEVEL", "uvicorn log level (default warning)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every flag defaults to its environment variable."""
    parser = argparse.ArgumentParser(
        prog="ese-server",
        description="Run one ese-server shard (event API on a Redis Stream).",
        epilog="Each flag can also be given through the environment variable in brackets.",
    )
    for flag, env, text in _OPTIONS:
        parser.add_argument(flag, default=None, help=f"{text} [{env}]")
    return parser


def _int(name: str, raw: str, minimum: int, maximum: int, hint: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer; {hint}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} is out of range {minimum}..{maximum}; {hint}")
    return value


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from flags (first) and the environment; raise ConfigError when invalid."""
    env = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))

    def get(flag: str, var: str) -> str | None:
        value = args[flag.lstrip("-").replace("-", "_")]
        if value is None:
            value = env.get(var)
        if value is not None and value.strip() == "":
            return None
        return value

    raw = {var: get(flag, var) for flag, var, _ in _OPTIONS}
    defaults = Settings()
    port = defaults.port
    if raw["SERVER_PORT"] is not None:
        port = _int("SERVER_PORT", raw["SERVER_PORT"], 1, 65535, "use a free TCP port, e.g. 2001")
    role = (raw["ESE_ROLE"] or defaults.role).strip().lower()
    if role not in ROLES:
        raise ConfigError(f"ESE_ROLE={role!r} is not a role; use one of {', '.join(ROLES)}")
    redis_url = (raw["REDIS_URL"] or defaults.redis_url).strip()
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss", "unix") or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise ConfigError(
            f"REDIS_URL={redis_url!r} is not a Redis URL; "
            "use e.g. redis://:password@redis-server:6379/0"
        )
    try:
        parts.port  # noqa: B018 - property raises on a bad port
    except ValueError:
        raise ConfigError(f"REDIS_URL={redis_url!r} has an invalid port; use e.g. :6379") from None
    password = raw["REDIS_PASSWORD"]
    if password and parts.password is None:
        # Put the password into the URL so one string configures the connection.
        netloc = with_password(parts, quote(password, safe=""))
        redis_url = urlunsplit(parts._replace(netloc=netloc))
    hint_pos = "use a positive whole number"
    retention = defaults.retention_seconds
    if raw["ESE_RETENTION_SECONDS"] is not None:
        retention = _int(
            "ESE_RETENTION_SECONDS", raw["ESE_RETENTION_SECONDS"], 1, 10 * 365 * 86400, hint_pos
        )
    max_batch = defaults.max_batch
    if raw["ESE_MAX_BATCH"] is not None:
        max_batch = _int("ESE_MAX_BATCH", raw["ESE_MAX_BATCH"], 1, 100_000, hint_pos)
    max_body = defaults.max_body_bytes
    if raw["ESE_MAX_BODY_BYTES"] is not None:
        max_body = _int(
            "ESE_MAX_BODY_BYTES", raw["ESE_MAX_BODY_BYTES"], 256, 256 * 1024 * 1024, hint_pos
        )
    origins = tuple(o.strip() for o in (raw["ESE_CORS_ORIGINS"] or "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"ESE_CORS_ORIGINS entry {origin!r} is not an origin; "
                "use e.g. http://localhost:8501 (comma-separated) or *"
            )
    log_level = (raw["ESE_LOG_LEVEL"] or defaults.log_level).strip().lower()
    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ConfigError(
            f"ESE_LOG_LEVEL={log_level!r} is not a level; "
            "use critical, error, warning, info or debug"
        )
    return Settings(
        port=port,
        host=(raw["ESE_HOST"] or defaults.host).strip(),
        role=role,
        redis_url=redis_url,
        retention_seconds=retention,
        ingest_token=raw["ESE_INGEST_TOKEN"],
        analytics_token=raw["ESE_ANALYTICS_TOKEN"],
        max_batch=max_batch,
        max_body_bytes=max_body,
        cors_origins=origins,
        log_level=log_level,
    )
