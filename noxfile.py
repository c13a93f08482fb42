"""Nox sessions: `nox` runs lint, configs, tests, and e2e when a Docker engine answers.

Docker-heavy work is kept in its own session (`e2e`) so the others stay fast and runnable on
any machine with Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
# uv makes the per-session installs quick; plain virtualenv + pip where uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"

LOCATIONS = ["ese", "services", "tests", "scripts", "tasks.py", "noxfile.py"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _docker_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


# e2e joins the default run where it can run; under CI it always joins, and fails loudly
# when Docker is missing instead of quietly not running.
nox.options.sessions = ["lint", "configs", "tests"]
if _in_ci() or _docker_reachable():
    nox.options.sessions.append("e2e")


def install_impl(session: nox.Session, extras: str = "dev") -> None:
    """Install the project, editable, with the given extras."""
    session.install("-e", f".[{extras}]")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format check) and mypy."""
    install_impl(session)
    session.run("ruff", "check", *LOCATIONS)
    session.run("ruff", "format", "--check", *LOCATIONS)
    session.run("mypy", *session.posargs)


@nox.session
def configs(session: nox.Session) -> None:
    """Regenerate the configs and run each through its own tool."""
    install_impl(session)
    session.run("python", "-m", "ese.configcheck", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and service tests (real redis-server, haproxy, promtool; no Docker)."""
    install_impl(session)
    # Exit 5 (nothing collected) means the suite is broken, unless the caller chose a selection.
    codes = [0, 5] if session.posargs else [0]
    session.run("pytest", *(session.posargs or ["-q"]), success_codes=codes)
