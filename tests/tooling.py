"""Helpers shared by the test suite: find real tools, pick free ports.

A test that needs a real binary (redis-server, haproxy, promtool, docker) asks `need_binary`.
On a user's machine a missing tool is a skip; with CI=true it is a failure, so CI can never go
green by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Any

import pytest


def in_ci() -> bool:
    """True under CI (CI=true), where a missing tool must fail the run."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(what: str, hint: str) -> None:
    """Skip locally, fail under CI, with a message that names what is missing."""
    message = f"{what} is not available ({hint})"
    if in_ci():
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def need_binary(name: str, hint: str | None = None) -> str:
    """Path of a real binary on PATH, or skip/fail with an install hint."""
    path = shutil.which(name)
    if path is None:
        missing(name, hint or f"install it, e.g. apt-get install {name}")
    assert path is not None
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
