"""Fixtures of the e2e run: the real stack, brought up once through the real Invoke tasks.

These tests run only when asked for (`nox -s e2e`, which sets ESE_E2E=1, or `pytest tests/e2e`):
they take minutes and replace whatever runs under the demo's fixed project names and ports.
They refuse to start while containers or volumes of the demo exist, unless ESE_E2E_REPLACE=1.
The stack is always removed at the end (`invoke down --volumes`); when anything failed, every
service's logs are printed and saved under artifacts/e2e-logs/ first.

The modules pass in any order. Each asks for what it needs: `stack` (up, brought up again when
a module before removed it), `client_run` and `consumer` (made for the module that asks), and a
module that disturbs the stack on purpose uses `hands_back_quiet`, so the next one finds no
alert firing. Only to spare a second bring-up, the test that removes the stack (it asks for
`stack_to_remove`) is moved to the end of the run.
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
from tests.tooling import ignored_unless_asked

E2E_DIR = Path(__file__).resolve().parent

# The client run of tests/e2e/test_stack.py (fixture client_run).
RUN_CLIENTS, RUN_DELAY_MS, RUN_LIMIT = 4, 20, 300
# How long a disturbed stack may take to fall quiet: EseStoreFull lasts its 1 min rate window.
QUIET_SECONDS = 150


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the e2e tests out of a plain `pytest` run (the `tests` Nox session)."""
    return ignored_unless_asked(E2E_DIR, collection_path, config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that remove the stack run last (a stable sort: the rest keep their order). Any
    order passes; this one brings the stack up once instead of twice."""
    items.sort(key=lambda item: "stack_to_remove" in getattr(item, "fixturenames", ()))


def _say(config: pytest.Config, lines: list[str]) -> None:
    """Write to the terminal even while pytest captures output (teardown of the last test)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    with capman.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


def _dump_logs(config: pytest.Config, stack: harness.Stack) -> None:
    if harness.LOG_DIR.exists():
        shutil.rmtree(harness.LOG_DIR)
    lines = containers.dump_logs(stack.cli, harness.LOG_DIR)
    _say(config, ["", "e2e failed: logs of every service (last lines)", *lines])


def _dump_and_down(config: pytest.Config, stack: harness.Stack, failed: bool) -> None:
    if failed and not stack.removed:  # a removed stack has no logs; they were saved before
        _dump_logs(config, stack)
    harness.invoke("down", "--volumes", timeout=300, check=False)


def _bring_up(config: pytest.Config, stack: harness.Stack) -> None:
    """`invoke backend --build`: every service healthy and Grafana provisioned."""
    stack.removed = False  # from here on, whatever comes up has logs to show
    try:
        harness.invoke("backend", "--build", timeout=900)
        stack.load_env()
    except BaseException:
        _dump_and_down(config, stack, failed=True)
        stack.removed = True
        raise


@pytest.fixture(scope="session")
def stack_session(request: pytest.FixtureRequest, docker_cli: Any) -> Iterator[harness.Stack]:
    """The stack, brought up once per session and removed at its end."""
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
    _bring_up(request.config, st)
    try:
        yield st
    finally:
        _dump_and_down(request.config, st, failed=request.session.testsfailed > 0)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, stack_session: harness.Stack) -> harness.Stack:
    """The running stack for this module: up again if a module before removed it."""
    if stack_session.removed:
        _bring_up(request.config, stack_session)
    return stack_session


@pytest.fixture
def stack_to_remove(request: pytest.FixtureRequest, stack: harness.Stack) -> harness.Stack:
    """The running stack, for a test that removes it. When a test has failed, every service's
    logs are saved first (the session's end finds nothing to save); the next module that asks
    for `stack` brings it up again."""
    if request.session.testsfailed:
        _dump_logs(request.config, stack)
    stack.removed = True
    return stack


@pytest.fixture(scope="module")
def hands_back_quiet(stack: harness.Stack) -> Iterator[None]:
    """For a module that raises alerts or restarts services on purpose: after its last test,
    wait until no alert fires in Prometheus and Alertmanager holds none, so the next module
    finds the stack as a fresh one (test_stack asserts that a healthy stack raises no alarm)."""
    yield
    left: list[str] = []

    def quiet() -> bool:
        left[:] = outside.alarms()
        return not left

    try:
        outside.wait_until(quiet, QUIET_SECONDS, "no alert firing or held")
    except AssertionError:
        raise AssertionError(f"alerts still firing after {QUIET_SECONDS}s: {left}") from None


@pytest.fixture(scope="module")
def client_run(stack: harness.Stack) -> harness.Phase:
    """`invoke frontend --clients 4` with a short delay and a small limit, run to its end."""
    return harness.run_clients(stack, clients=RUN_CLIENTS, delay_ms=RUN_DELAY_MS, limit=RUN_LIMIT)


@pytest.fixture(scope="module")
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
