"""Fixtures of the ese-client tests: a recording proxy and a runner for the real `ese-client`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.tooling import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Recorded:
    """One request that went through the proxy, and the status the server gave it."""

    method: str
    path: str
    body: Any
    status: int


@dataclass
class RecordingProxy:
    """A loopback HTTP proxy in front of one upstream URL that records every request.

    It lets a test see the requests exactly as ese-client sent them (how many, how many events
    each), which the server cannot tell afterwards.
    """

    upstream: str
    port: int = field(default_factory=free_port)
    records: list[Recorded] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in _PASS_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=raw, headers=headers
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type", "application/json")
        body: Any = orjson.loads(raw) if raw else None
        self.records.append(Recorded(request.method, request.path, body, status))
        return web.Response(body=payload, status=status, headers={"Content-Type": content_type})

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    def start(self) -> None:
        """Run the proxy's event loop in a daemon thread and wait until it listens."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        """Stop listening and end the thread."""
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


_PASS_HEADERS = {"content-type", "authorization"}


@pytest.fixture
def recording_proxy() -> Iterator[Callable[[str], RecordingProxy]]:
    """`start(upstream_url) -> RecordingProxy`; every proxy started is stopped at teardown."""
    proxies: list[RecordingProxy] = []

    def start(upstream: str) -> RecordingProxy:
        proxy = RecordingProxy(upstream.rstrip("/"))
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@dataclass
class ClientRun:
    """A finished `ese-client` process: exit code, output and the parsed summary line."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, str]:
        lines = [x for x in self.stdout.splitlines() if x.startswith("ese-client summary:")]
        assert len(lines) == 1, f"expected one summary line:\n{self.stdout}\n{self.stderr}"
        return dict(re.findall(r"(\w+)=(\S+)", lines[0]))

    def count(self, name: str) -> int:
        return int(self.summary[name])


def client_env(server: str, **env: str) -> dict[str, str]:
    """Environment of an ese-client subprocess: ours without ESE_* leftovers, plus `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ESE_")}
    full.pop("REACT_APP_BE_SERVER", None)
    full.setdefault("PYTHONPATH", str(REPO_ROOT / "services"))
    full.update({"REACT_APP_BE_SERVER": server, "ESE_EVENT_DELAY_MS": "0"})
    full.update(env)
    return full


def start_client(server: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """Start `python -m ese_client` (what the `ese-client` script runs) against `server`."""
    return subprocess.Popen(
        [sys.executable, "-m", "ese_client", *args],
        env=client_env(server, **env),
        cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> ClientRun:
    """Wait (bounded) for an ese-client process and collect its result."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"ese-client did not finish in {timeout}s:\n{stdout}\n{stderr}")
    return ClientRun(proc.returncode, stdout, stderr)


def run_client(server: str, *args: str, timeout: float = 120, **env: str) -> ClientRun:
    """Run ese-client to its end."""
    return finish(start_client(server, *args, **env), timeout)


def assert_usage_error(
    argv: list[str], env: dict[str, str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad settings: a ConfigError naming `names`, and from `main` exit code 2 with one line
    and a hint on stderr, nothing on stdout and no traceback."""
    from ese_client.__main__ import main
    from ese_client.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as info:
        load_settings(argv, env)
    assert names in str(info.value)
    assert main(argv, env) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ese-client: error: ") and "hint" in lines[0]
    assert "Traceback" not in captured.err
