"""Find the real tools a check needs: a local binary first, else its image when Docker runs."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from ese import compose
from ese.errors import EseError


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; never raises for a non-zero exit."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def docker_reachable() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        return run(["docker", "version", "--format", "{{.Server.Version}}"], 15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_available(image: str) -> bool:
    """True when the engine has the image, pulling it first if a registry can be reached."""
    if run(["docker", "image", "inspect", image], 30).returncode == 0:
        return True
    try:
        return run(["docker", "pull", image], 600).returncode == 0
    except subprocess.TimeoutExpired:
        return False


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
