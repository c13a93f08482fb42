"""Nox sessions: `nox` runs lint, configs, tests and e2e.

The Docker-heavy work is kept in its own session (`e2e`) so the others stay fast and run on any
machine with Python. Sessions hold no logic of their own: the checks live in `ese.checks`, the
image decision in `ese.engine.images`, and the e2e guards (Docker missing, a demo running) in
tests/e2e/conftest.py.
"""

from __future__ import annotations

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
# uv makes the per-session installs quick; plain virtualenv + pip where uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"
# e2e is always in the default run: without Docker it skips with a message (and fails under
# CI=true), so nobody mistakes a run without it for a full one.
nox.options.sessions = ["lint", "configs", "tests", "e2e"]

LOCATIONS = ["ese", "services", "tests", "scripts", "benchmarks", "tasks.py", "noxfile.py"]
CONSTRAINTS = "constraints.txt"


def install_impl(session: nox.Session, extras: str = "dev") -> None:
    """Install the project, editable, with the given extras, at the locked versions."""
    session.install("-e", f".[{extras}]", "-c", CONSTRAINTS)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format check) and mypy.

    mypy checks what `[tool.mypy] files` in pyproject.toml lists (all the Python here, tests,
    benchmarks and scripts included); paths after `--` check only those.
    """
    install_impl(session)
    session.run("ruff", "check", *LOCATIONS)
    session.run("ruff", "format", "--check", *LOCATIONS)
    session.run("mypy", *session.posargs)


@nox.session
def configs(session: nox.Session) -> None:
    """Regenerate the configs and run each through its own tool (python -m ese.checks)."""
    install_impl(session)
    session.run("python", "-m", "ese.checks", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and service tests (real redis-server, haproxy, promtool; no Docker)."""
    install_impl(session)
    # Exit 5 (nothing collected) means the suite is broken, unless the caller chose a selection.
    codes = [0, 5] if session.posargs else [0]
    # Image builds (marker `docker`) need Docker; they run in the e2e session.
    session.run("pytest", "-m", "not docker", *(session.posargs or ["-q"]), success_codes=codes)


@nox.session
def e2e(session: nox.Session) -> None:
    """The whole stack under Docker, driven by the real Invoke tasks, with failure drills.

    It takes the user's path: no ESE_*_IMAGE is set here, so the tasks pick the images as
    `invoke up` does (official, else the offline stand-ins). It refuses to replace a running
    demo unless ESE_E2E_REPLACE=1, always ends with `invoke down --volumes`, and on a failure
    saves every service's logs under artifacts/e2e-logs/. Extra arguments go to the compose
    pytest, e.g. `nox -s e2e -- -x -k drill`. Then the Docker Swarm drill (tests/e2e_swarm:
    scale and roll the ingest service under load, ending with `invoke swarm.down --volumes
    --leave`; logs in artifacts/swarm-logs/), then the cluster drills (tests/e2e_cluster: a
    three-node local cluster; a worker killed under load, the consumer on another node, then
    the store drills: the Redis master's node killed under load, a replica's node killed, the
    master cut off from both replicas; ending with `invoke cluster.down --volumes`).
    """
    install_impl(session)
    session.install("pip")  # the offline kit downloads its wheelhouse with `python -m pip`
    env = {"ESE_E2E": "1"}
    # The single-image tests first (quick, and they tell an image problem from a stack one).
    session.run(
        "pytest",
        "-m",
        "docker",
        "tests",
        "--ignore=tests/e2e",
        "--ignore=tests/e2e_swarm",
        "--ignore=tests/e2e_cluster",
        "-q",
        env=env,
    )
    session.run("pytest", "tests/e2e", *(session.posargs or ["-v", "--durations=15"]), env=env)
    # The Swarm drill publishes the same ports (8100, 2003, 3000): only after the compose
    # stack is gone. Same images (picked the same way; ese-server is rebuilt from the cache).
    session.run("invoke", "down", "--volumes", env=env)
    session.run("pytest", "tests/e2e_swarm", "-v", "--durations=5", env=env)
    # The cluster drill publishes them from its node 1: only after `swarm.down --leave`.
    session.run("pytest", "tests/e2e_cluster", "-v", "--durations=5", env=env)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Re-resolve constraints.txt (every platform, Python 3.10+) after a dependency change."""
    session.install("uv")
    session.run(
        "uv",
        "pip",
        "compile",
        "--universal",
        "--python-version",
        "3.10",
        "--extra",
        "dev",
        "pyproject.toml",
        "-o",
        CONSTRAINTS,
        "--no-header",
        *session.posargs,
    )
