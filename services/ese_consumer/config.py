"""Settings of the consumer, from the environment (the original demo's names).

The `OPTIONS` table is read by the shared `ese_settings` helper, like the server's and the
client's settings. Unlike theirs, a bad value does not stop the page: it falls back to the
default and the message is shown in the sidebar (`Settings.problems`). The command line
(`ese-consumer --server-url ...`) only sets these variables for the page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ese_consumer.source import DEFAULT_URL
from ese_settings import ConfigError, Option, resolve, text

DEFAULT_POLL_SECONDS = 5
MIN_POLL_SECONDS = 1
MAX_POLL_SECONDS = 3600


@dataclass(frozen=True)
class Settings:
    """Pre-filled sidebar values and the token; `problems` are shown in the sidebar."""

    url: str = DEFAULT_URL
    poll_seconds: int = DEFAULT_POLL_SECONDS
    token: str | None = None
    problems: tuple[str, ...] = ()


def _poll_seconds(raw: str, source: str) -> int:
    shown = raw.strip()
    fallback = f"using {DEFAULT_POLL_SECONDS} s."
    try:
        # int() of inf raises OverflowError and of nan ValueError: both are "not a number".
        value = int(float(shown))
    except (ValueError, OverflowError):
        raise ConfigError(f"{source}={shown!r} is not a finite number; {fallback}") from None
    if not MIN_POLL_SECONDS <= value <= MAX_POLL_SECONDS:
        raise ConfigError(
            f"{source}={shown!r} is outside {MIN_POLL_SECONDS}..{MAX_POLL_SECONDS}; {fallback}"
        )
    return value


# Environment only (no flags here); blank values count as unset (the Settings default applies).
OPTIONS: tuple[Option, ...] = (
    Option("url", "ESE_SERVER_URL", (), text, "live-events URL pre-filled in the sidebar"),
    Option("poll_seconds", "ESE_POLL_SECONDS", (), _poll_seconds, "poll interval in seconds"),
    Option("token", "ESE_ANALYTICS_TOKEN", (), text, "Bearer token of the analytics shards"),
)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read ESE_SERVER_URL, ESE_POLL_SECONDS and ESE_ANALYTICS_TOKEN; bad values fall back."""
    values, errors = resolve(OPTIONS, os.environ if env is None else env)
    return Settings(**values, problems=tuple(str(exc) for exc in errors))
