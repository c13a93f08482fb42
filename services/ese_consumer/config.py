"""Settings of the consumer, from the environment (names fixed by DESIGN.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ese_consumer.source import DEFAULT_URL

DEFAULT_POLL_SECONDS = 5
MIN_POLL_SECONDS = 1
MAX_POLL_SECONDS = 3600


@dataclass(frozen=True)
class Settings:
    """Pre-filled sidebar values and the token; `problems` are shown in the sidebar."""

    url: str
    poll_seconds: int
    token: str | None
    problems: tuple[str, ...] = ()


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read ESE_SERVER_URL, ESE_POLL_SECONDS and ESE_ANALYTICS_TOKEN; bad values fall back."""
    env = os.environ if env is None else env
    problems: list[str] = []
    raw_poll = env.get("ESE_POLL_SECONDS", "").strip()
    poll_seconds = DEFAULT_POLL_SECONDS
    if raw_poll:
        try:
            value = float(raw_poll)
            # int() of inf raises OverflowError and of nan ValueError: both are "not a number".
            poll_seconds = int(value)
        except (ValueError, OverflowError):
            problems.append(
                f"ESE_POLL_SECONDS={raw_poll!r} is not a finite number; "
                f"using {DEFAULT_POLL_SECONDS} s."
            )
        else:
            if not MIN_POLL_SECONDS <= poll_seconds <= MAX_POLL_SECONDS:
                problems.append(
                    f"ESE_POLL_SECONDS={raw_poll!r} is outside {MIN_POLL_SECONDS}.."
                    f"{MAX_POLL_SECONDS}; using {DEFAULT_POLL_SECONDS} s."
                )
                poll_seconds = DEFAULT_POLL_SECONDS
    return Settings(
        url=env.get("ESE_SERVER_URL", "").strip() or DEFAULT_URL,
        poll_seconds=poll_seconds,
        token=env.get("ESE_ANALYTICS_TOKEN", "").strip() or None,
        problems=tuple(problems),
    )
