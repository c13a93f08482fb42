"""Nox sessions: `nox` runs lint, configs, tests and e2e (e2e skips without Docker).

Docker-heavy work is kept in its own session (`e2e`) so the others stay fast and runnable on
any machine with Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

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


# e2e is always in the default run: it skips with a message where Docker is missing (and
# fails under CI=true), so nobody mistakes a run without it for a full one.
nox.options.sessions = ["lint", "configs", "tests", "e2e"]


CONSTRAINTS = "constraints.txt"


def install_impl(session: nox.Session, extras: str = "dev") -> None:
    """Install the project, editable, with the given extras, at the locked versions."""
    session.install("-e", f".[{extras}]", "-c", CONSTRAINTS)


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
    # Image builds (marker `docker`) need the e2e session's images; they run there.
    session.run("pytest", "-m", "not docker", *(session.posargs or ["-q"]), success_codes=codes)


# The infrastructure images the e2e run needs from a registry (or the offline kit's stand-ins).
E2E_OFFICIAL_IMAGES = ("redis", "haproxy", "prometheus", "grafana", "python_base")
OFFLINE_ENV = "artifacts/offline.env"


def _topology() -> dict[str, Any]:
    """topology.toml, parsed without the project installed (nox runs before any install)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    with open("topology.toml", "rb") as fh:
        return tomllib.load(fh)


def _official_images() -> dict[str, str]:
    """ESE_*_IMAGE variable -> official default image, read from topology.toml."""
    images = _topology()["images"]
    return {images[name]["env"]: images[name]["default"] for name in E2E_OFFICIAL_IMAGES}


def _docker_ok(*args: str, timeout: float) -> bool:
    try:
        proc = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _demo_containers() -> list[str]:
    """Containers of the demo (both compose projects and the consumer) that exist now."""
    topo = _topology()
    projects = topo["projects"]
    selectors = [
        f"label=com.docker.compose.project={projects['backend']}",
        f"label=com.docker.compose.project={projects['frontend']}",
        f"name=^{topo['consumer']['name']}$",
    ]
    names: list[str] = []
    for selector in selectors:
        try:
            proc = subprocess.run(
                ["docker", "ps", "-a", "--filter", selector, "--format", "{{.Names}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        names += proc.stdout.split()
    return names


def _e2e_images(session: nox.Session) -> dict[str, str]:
    """Image overrides for the e2e run: official images when present or pullable, else the
    offline kit's stand-ins (ESE_E2E_IMAGES=offline|official forces one)."""
    mode = os.environ.get("ESE_E2E_IMAGES", "auto").strip().lower() or "auto"
    if mode not in {"auto", "offline", "official"}:
        session.error(f"ESE_E2E_IMAGES={mode!r}: use offline, official or leave it unset")
    official = _official_images()
    if mode != "offline":
        have = {img for img in official.values() if _docker_ok("image", "inspect", img, timeout=30)}
        missing = [img for img in official.values() if img not in have]
        for image in list(missing):
            session.log(f"image {image} not present; trying docker pull")
            if _docker_ok("pull", image, timeout=600):
                missing.remove(image)
        if not missing:
            # Explicit values: an exported offline override must not leak into this run.
            return official
        if mode == "official":
            session.error(
                f"official images unavailable (no registry?): {', '.join(missing)}; "
                "run with ESE_E2E_IMAGES=offline to build local stand-ins"
            )
        session.log(f"no registry for {', '.join(missing)}: building the offline image kit")
    session.install("pip")  # the kit downloads the wheelhouse with `python -m pip`
    session.run("python", "scripts/offline_images.py", "--smoke", "--env-out", OFFLINE_ENV)
    overrides = {}
    with open(OFFLINE_ENV, encoding="utf-8") as fh:
        for line in fh:
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.startswith("ESE_"):
                overrides[key] = value.strip().strip('"')
    if not overrides:
        session.error(f"the offline kit wrote no image overrides to {OFFLINE_ENV}")
    return overrides


@nox.session
def e2e(session: nox.Session) -> None:
    """The whole stack under Docker, driven by the real Invoke tasks, with failure drills.

    Skips when no Docker engine answers (fails under CI=true). Uses the official images when
    present or pullable, else builds the offline kit's stand-ins (force with
    ESE_E2E_IMAGES=offline|official). Refuses to touch existing ese-backend/ese-frontend
    containers or the ese-consumer container unless ESE_E2E_REPLACE=1; always ends with
    `invoke down --volumes`; on a failure every service's logs go to artifacts/e2e-logs/.
    Then the Docker Swarm drill (tests/e2e_swarm: scale and roll the ingest service under
    load, ending with `invoke swarm.down --volumes --leave`; logs in artifacts/swarm-logs/).
    Extra arguments go to the compose e2e pytest, e.g. `nox -s e2e -- -x -k drill`.
    """
    if not _docker_reachable():
        message = "Docker engine not reachable (start dockerd or Docker Desktop)"
        if _in_ci():
            session.error(f"{message}; CI=true requires the e2e session to run")
        session.skip(f"{message}; the e2e session needs it")
    running = _demo_containers()
    if running and os.environ.get("ESE_E2E_REPLACE", "") != "1":
        message = (
            f"a demo stack is running ({', '.join(running[:4])}); e2e would replace it. "
            "Stop it with `invoke down --volumes`, or set ESE_E2E_REPLACE=1"
        )
        if _in_ci():
            session.error(message)
        session.skip(message)
    install_impl(session)
    env = {"ESE_E2E": "1", **_e2e_images(session)}
    for key, value in sorted(env.items()):
        session.log(f"{key}={value}")
    # The single-image tests first (quick, and they tell an image problem from a stack one).
    session.run("pytest", "-m", "docker", "tests", "--ignore=tests/e2e",
                "--ignore=tests/e2e_swarm", "-q", env=env)  # fmt: skip
    session.run("pytest", "tests/e2e", *(session.posargs or ["-v", "--durations=15"]), env=env)
    # The Swarm drill publishes the same ports (8100, 2003, 3000): only after the compose
    # stack is gone. Same images (the overrides above; it rebuilds ese-server from the cache).
    session.run("invoke", "down", "--volumes", env=env)
    session.run("pytest", "tests/e2e_swarm", "-v", "--durations=5", env=env)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Re-resolve constraints.txt (every platform, Python 3.10+) after a dependency change."""
    session.install("uv")
    session.run(
        "uv", "pip", "compile", "--universal", "--python-version", "3.10", "--extra", "dev",
        "pyproject.toml", "-o", CONSTRAINTS, "--no-header", *session.posargs,
    )  # fmt: skip
