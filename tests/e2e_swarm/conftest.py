"""Fixtures of the Swarm drill: the stack deployed once through `invoke swarm.up`.

Runs only when asked for (`nox -s e2e` sets ESE_E2E=1 and runs it after the compose e2e tests,
which publish the same ports), or `pytest tests/e2e_swarm`. Always ends with `invoke down
--volumes` (the frontend) and `invoke swarm.down --volumes --leave`; when anything failed,
every service's logs are saved under artifacts/swarm-logs/ first.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness
from tests.tooling import ignored_unless_asked

HERE = Path(__file__).resolve().parent
LOG_DIR = harness.REPO_ROOT / "artifacts" / "swarm-logs"
STACK = "ese"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the drill out of a plain `pytest` run (the `tests` Nox session)."""
    return ignored_unless_asked(HERE, collection_path, config)


def docker_out(*args: str, timeout: float = 60) -> str:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.stdout + proc.stderr


def dump_logs() -> list[str]:
    """Every stack service's log to LOG_DIR; the last lines of each for the terminal."""
    if LOG_DIR.exists():
        shutil.rmtree(LOG_DIR)
    LOG_DIR.mkdir(parents=True)
    lines = [docker_out("service", "ls"), docker_out("stack", "ps", "--no-trunc", STACK)]
    names = docker_out("service", "ls", "--format", "{{.Name}}").split()
    for name in names:
        text = docker_out("service", "logs", "--timestamps", name, timeout=120)
        (LOG_DIR / f"{name}.log").write_text(text, encoding="utf-8")
        lines.append(f"===== {name}; full log: {LOG_DIR / (name + '.log')} =====")
        lines += text.splitlines()[-40:]
    return lines


@pytest.fixture(scope="session")
def swarm(request: pytest.FixtureRequest, docker_cli: Any) -> Iterator[harness.Stack]:
    """`invoke swarm.up --build --replicas 2`: every replica running, Grafana provisioned."""
    if _in_swarm(docker_cli) and docker_cli.api.services():
        pytest.exit("this engine's swarm runs services already; the drill would disturb them", 1)
    st = harness.Stack(docker_cli)
    try:
        # --build: the engine is shared, and its ese-server:local may come from another checkout.
        harness.invoke("swarm.up", "--build", "--replicas", "2", timeout=900)
        st.load_env()
        yield st
    finally:
        if request.session.testsfailed:
            print("\n".join(["", "swarm drill failed: logs of every service", *dump_logs()]))
        harness.invoke("down", "--volumes", timeout=300, check=False)
        harness.invoke("swarm.down", "--volumes", "--leave", timeout=300, check=False)


def _in_swarm(cli: Any) -> bool:
    return (cli.info().get("Swarm") or {}).get("LocalNodeState") == "active"
