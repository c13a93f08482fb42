"""Helpers shared by the test suite: find real tools, pick free ports.

A test that needs a real binary (redis-server, haproxy, promtool, docker) asks `need_binary`.
On a user's machine a missing tool is a skip; with CI=true it is a failure, so CI can never go
green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ese.checks.tools import with_hosts
from ese.host.ports import free_port
from ese.host.processes import in_ci, stop_process

__all__ = ["free_port", "in_ci", "missing", "need_binary", "need_hosts", "stop_process"]


def missing(what: str, hint: str) -> None:
    """Skip locally, fail under CI, with a message that names what is missing."""
    message = f"{what} is not available ({hint})"
    if in_ci():
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def need_hosts(argv: list[str], names: list[str], tmp: Path) -> list[str]:
    """`argv` where `names` resolve to 127.0.0.1 (a private mount namespace), or skip/fail."""
    wrapped = with_hosts(argv, names, tmp)
    if wrapped is None:
        missing("unshare with mount namespaces", "Linux with util-linux; root or user namespaces")
    assert wrapped is not None
    return wrapped


def need_binary(name: str, hint: str | None = None) -> str:
    """Path of a real binary on PATH, or skip/fail with an install hint."""
    path = shutil.which(name)
    if path is None:
        missing(name, hint or f"install it, e.g. apt-get install {name}")
    assert path is not None
    return path


def ignored_unless_asked(here: Path, collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest_ignore_collect` for a Docker suite in `here`: its test files are collected only
    when asked for (ESE_E2E=1, as `nox -s e2e` sets, or a path inside `here` on the command
    line), so a plain `pytest` (the `tests` Nox session) leaves them out."""
    if collection_path.parent != here or not collection_path.name.startswith("test_"):
        return None
    if os.environ.get("ESE_E2E", "") == "1":
        return None
    paths = [Path(a.split("::", 1)[0]).resolve() for a in config.args]
    return None if any(p == here or here in p.parents for p in paths) else True
