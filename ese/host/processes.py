"""Child processes, CI detection and polling: small helpers the package, Nox and tests share."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_ci(environ: Any = None) -> bool:
    """True under CI (CI=true), where a missing tool must fail instead of skip."""
    env = os.environ if environ is None else environ
    return str(env.get("CI", "")).strip().lower() in {"1", "true", "yes"}


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM a child process, wait a bounded time, then kill it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class TimedOut(Exception):
    """`wait_until` gave up; `last` is the last value the probe returned."""

    def __init__(self, what: str, seconds: float, last: Any) -> None:
        super().__init__(f"{what} not reached after {seconds:.0f}s (last: {last!r})")
        self.last = last


def wait_until(
    probe: Callable[[], T],
    timeout: float,
    what: str = "condition",
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> T:
    """Call `probe` until it returns something truthy, and return that; TimedOut at the deadline.

    An exception of a `retry` type from the probe counts as "not yet" (a server still starting
    refuses connections), and the last one is what TimedOut reports; any other propagates.
    """
    deadline = clock() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except retry as exc:  # the probe's own failure means "not yet"
            last = exc
        if clock() >= deadline:
            raise TimedOut(what, timeout, last)
        sleep(interval)
