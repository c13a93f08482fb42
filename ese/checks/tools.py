"""Find the real tools a check needs: a local binary first, else its image when Docker runs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ese.engine import commands, compose
from ese.errors import EseError


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a tool quietly, capturing text output; never raises for a non-zero exit."""
    return commands.output(cmd, timeout)


def compose_command() -> list[str] | None:
    """The compose program (`docker compose` or `docker-compose`), or None when neither exists."""
    try:
        return list(compose.detect().base)
    except EseError:
        return None


@dataclass(frozen=True)
class Missing:
    """Why a tool could not be found, phrased for a skip message."""

    what: str
    hint: str

    def __str__(self) -> str:
        return f"{self.what} not found ({self.hint})"
