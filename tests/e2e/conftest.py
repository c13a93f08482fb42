"""Fixtures of the e2e run: the real stack, brought up once through the real Invoke tasks.

These tests run only when asked for (`nox -s e2e`, which sets ESE_E2E=1, or `pytest tests/e2e`):
they take minutes and replace whatever runs under the demo's fixed project names and ports.
They refuse to start while containers or volumes of the demo exist, unless ESE_E2E_REPLACE=1.
The stack is always removed at the end (`invoke down --volumes`); when anything failed, every
service's logs are printed and saved under artifacts/e2e-logs/ first.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.host.processes import in_ci
from tests.e2e import containers, harness, outside

E2E_DIR = Path(__file__).resolve().parent

# The first client run, asserted by tests/e2e/test_1_stack.py.
FIRST_CLIENTS, FIRST_DELAY_MS, FIRST_LIMIT = 4, 20, 300


def _asked_for(config: pytest.Config) -> bool:
    if os.environ.get("ESE_E2E", "") == "1":
        return True
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == E2E_DIR or E2E_DIR in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the e2e tests out of a plain `pytest` run (the `tests` Nox session)."""
    if collection_path.parent == E2E_DIR and collection_path.name.startswith("test_"):
        return None if _asked_for(config) else True
    return None


def _say(config: pytest.Config, lines: list[str]) -> None:
    """Write to the terminal even while pytest captures output (teardown of the last test)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    with capman.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


def _dump_and_down(config: pytest.Config, stack: harness.Stack, failed: bool) -> None:
    if failed:
        if harness.LOG_DIR.exists():
            shutil.rmtree(harness.LOG_DIR)
        lines = containers.dump_logs(stack.cli, harness.LOG_DIR)
        _say(config, ["", "e2e failed: logs of every service (last lines)", *lines])
    harness.invoke("down", "--volumes", timeout=300, check=False)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, docker_cli: Any) -> Iterator[harness.Stack]:
    """`invoke backend --build`: every service healthy and Grafana provisioned."""
    found = containers.leftovers(docker_cli)
    if found:
        if os.environ.get("ESE_E2E_REPLACE", "") != "1":
            message = (
                f"e2e would replace the running demo ({', '.join(found[:4])}); stop it with "
                "`invoke down --volumes`, or set ESE_E2E_REPLACE=1"
            )
            if in_ci():
                pytest.exit(message, returncode=1)
            pytest.skip(message)
        harness.invoke("down", "--volumes", timeout=300)
    st = harness.Stack(docker_cli)
    try:
        harness.invoke("backend", "--build", timeout=900)
        st.load_env()
    except BaseException:
        _dump_and_down(request.config, st, failed=True)
        raise
    try:
        yield st
    finally:
        _dump_and_down(request.config, st, failed=request.session.testsfailed > 0)


@pytest.fixture(scope="session")
def first_run(stack: harness.Stack) -> harness.Phase:
    """`invoke frontend --clients 4` with a short delay and a small limit, run to its end."""
    return harness.run_clients(
        stack, clients=FIRST_CLIENTS, delay_ms=FIRST_DELAY_MS, limit=FIRST_LIMIT
    )


@pytest.fixture(scope="session")
def consumer(stack: harness.Stack) -> str:
    """`invoke consumer --build`, and the dashboard URL once it answers."""
    harness.invoke("consumer", "--build", timeout=600)

    def healthy() -> bool:
        return outside.request("GET", f"{outside.CONSUMER}/_stcore/health", timeout=3)[0] == 200

    outside.wait_until(healthy, 90, "consumer /_stcore/health answers 200")

    def docker_says_healthy() -> bool:
        return [containers.health(c) for c in containers.consumer_containers(stack.cli)] == [
            "healthy"
        ]

    # Its HEALTHCHECK runs every 10 s; `invoke status` must see the verdict, not "starting".
    outside.wait_until(docker_says_healthy, 60, "Docker reports ese-consumer healthy")
    return outside.CONSUMER


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if harness.TIMINGS:
        terminalreporter.section("e2e timings")
        for what, seconds in harness.TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f}s  {what}")
