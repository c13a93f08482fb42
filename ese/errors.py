"""One error type for the tasks: a short line saying what failed and a hint saying how to fix it.

Plain exceptions only: the package does not depend on the task runner; tasks.py turns an
EseError into Invoke's Exit."""

from __future__ import annotations

import sys


class EseError(Exception):
    """A failure the user can fix; `str()` is the single line printed by the task."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what, hint)
        self.what = what
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.what}; {self.hint}" if self.hint else self.what


def docker_start_hint(platform: str | None = None) -> str:
    """How to start the Docker engine on this operating system."""
    platform = platform or sys.platform
    if platform.startswith("win"):
        return "start Docker Desktop from the Start menu and wait until it says 'Engine running'"
    if platform == "darwin":
        return "start Docker Desktop (open -a Docker) and wait until the whale icon stops animating"
    return "start it with: sudo systemctl start docker (and add yourself to the docker group)"
