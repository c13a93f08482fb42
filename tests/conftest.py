"""Fixtures shared by every test module.

- `redis_server`: a real, throw-away `redis-server` on a free loopback port (session-wide).
- `redis_url`: that server's URL with an empty database (FLUSHALL before each test).
- `ese_server_factory`: start real `ese-server` subprocesses against the test Redis.

Example::

    def test_something(ese_server_factory, redis_url):
        shard = ese_server_factory(role="ingest", ESE_INGEST_TOKEN="s3cret")
        httpx.post(f"{shard.url}/event", json=..., headers={"Authorization": "Bearer s3cret"})
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from ese.errors import EseError
from ese.host import sdk
from ese.host.processes import TimedOut, wait_until
from tests.tooling import free_port, missing, need_binary

REPO_ROOT = Path(__file__).resolve().parent.parent


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise EarlyExit(f"process exited early with code {proc.returncode}")
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True

    try:
        wait_until(listening, timeout, f"a listener on 127.0.0.1:{port}", 0.05, retry=OSError)
    except TimedOut as exc:
        raise TimeoutError(str(exc)) from None


class EarlyExit(RuntimeError):
    """The process a test waits for exited before it listened."""


class RedisServer:
    """A real redis-server process on a fixed loopback port, without persistence.

    `.url` is `redis://127.0.0.1:PORT/0`; `.stop()` kills it and `.start()` brings it back on the
    same port (for outage tests). Data does not survive a stop (no persistence).
    """

    def __init__(self, binary: str, port: int, extra_args: Sequence[str] = ()) -> None:
        self.binary = binary
        self.port = port
        # e.g. ("--appendonly", "yes", "--dir", tmp) for a Redis whose data survives stop/start
        self.extra_args = list(extra_args)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start redis-server (no-op when running) and wait until it accepts connections."""
        if self.running:
            return
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        args += ["--protected-mode", "no", "--loglevel", "warning", *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, 10.0, self.proc)

    def stop(self) -> None:
        """Stop redis-server (no-op when stopped); its data is lost."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def flushall(self) -> None:
        """Empty every database (and the script cache) over a raw RESP connection."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")


def get_json(url: str, token: str | None = None) -> Any:
    """A JSON answer from a shard (with a bearer token when given)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def stored_events(base_url: str) -> list[dict[str, Any]]:
    """Every retained event, oldest first, read incrementally from `since=0`."""
    events: list[dict[str, Any]] = []
    cursor = "0"
    for _ in range(1000):  # bounded: 1000 pages of 10000 events is far beyond any test
        page = get_json(f"{base_url}/events?since={cursor}&limit=10000")
        if not page["events"]:
            return events
        events += page["events"]
        cursor = page["cursor"]
    raise AssertionError("GET /events?since= did not come to an end")


# The services of the compose backend, as topology.toml describes it.
BACKEND_SERVICES = (
    "redis-server",
    "ese-server1",
    "ese-server2",
    "ese-server-analytics",
    "elb",
    "prometheus-server",
    "grafana-server",
    "redis-exporter",
    "alertmanager",
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Session-wide real redis-server on a free loopback port (`.url`, `.port`, `.stop()`,
    `.start()`). Prefer the `redis_url` fixture, which also empties the database per test."""
    binary = need_binary("redis-server", "apt-get install redis-server")
    server = RedisServer(binary, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the test Redis, running (restarted if a previous test stopped it) and empty."""
    redis_server.start()
    redis_server.flushall()
    return redis_server.url


class ServerHandle:
    """A running `ese-server` subprocess: `.url` (http://127.0.0.1:PORT), `.port`, `.proc`,
    `.stop()` (SIGTERM, wait, returns the exit code) and `.output()` (its stdout+stderr so far)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: IO[bytes], role: str) -> None:
        self.proc = proc
        self.port = port
        self.role = role
        self.url = f"http://127.0.0.1:{port}"
        self._log = log

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """Send SIGTERM (graceful stop), wait for exit and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def _get_root(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/", timeout=1) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def ese_server_factory(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServerHandle]]:
    """Start real `ese-server` processes: `start(role="all", **env) -> ServerHandle`.

    Each runs `python -m ese_server` on a free port against the test Redis (`REDIS_URL` can be
    overridden through **env, as can any ESE_* variable, e.g. `ESE_INGEST_TOKEN="t"`), and is
    returned once `GET /` answers 200. Every process started is stopped at teardown.
    """
    handles: list[ServerHandle] = []
    logdir = tmp_path_factory.mktemp("ese-server")

    def start(role: str = "all", **env: str) -> ServerHandle:
        port = free_port()
        full_env = dict(os.environ)
        full_env.update({"SERVER_PORT": str(port), "ESE_ROLE": role, "REDIS_URL": redis_url})
        full_env.update({key: str(value) for key, value in env.items()})
        full_env.setdefault("PYTHONPATH", str(REPO_ROOT / "services"))
        log = open(logdir / f"server-{port}.log", "w+b")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [sys.executable, "-m", "ese_server"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
        )
        handle = ServerHandle(proc, port, log, role)
        handles.append(handle)
        deadline = time.monotonic() + 20
        while not _get_root(handle.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                handle.stop()
                pytest.fail(f"ese-server did not come up on port {port}:\n{handle.output()}")
            time.sleep(0.05)
        return handle

    yield start
    for handle in handles:
        handle.stop()
        handle._log.close()


@pytest.fixture(scope="session")
def docker_cli() -> Any:
    """A connected Docker SDK client; no engine is a skip (a failure under CI=true)."""
    try:
        return sdk.client()
    except EseError as exc:
        missing("Docker engine", str(exc))
