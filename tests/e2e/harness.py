"""The e2e harness: run the real Invoke tasks, run client phases, check what they stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ese.host import secrets
from tests.e2e import containers, outside

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = REPO_ROOT / "artifacts" / "e2e-logs"
TIMINGS: dict[str, float] = {}  # printed in the terminal summary (see conftest)


def record(what: str, seconds: float) -> None:
    """Keep a duration for the terminal summary (a repeated step gets a number)."""
    key, n = what, 1
    while key in TIMINGS:
        n += 1
        key = f"{what} (#{n})"
    TIMINGS[key] = seconds


def invoke_argv() -> list[str]:
    """The `invoke` of this interpreter's environment (the Nox session's bin dir)."""
    found = shutil.which("invoke", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "invoke"]


def invoke(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one real Invoke task as a user would; its output is kept for the failure report."""
    started = time.monotonic()
    proc = subprocess.run(
        [*invoke_argv(), *args],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.monotonic() - started
    record(f"invoke {' '.join(args)}", took)
    print(f"$ invoke {' '.join(args)}  (exit {proc.returncode}, {took:.1f}s)\n{proc.stdout}")
    if check:
        assert proc.returncode == 0, (
            f"`invoke {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-4000:]}"
        )
    return proc


@dataclass
class Stack:
    """The running stack: the Docker client and this install's secrets (docker/.env)."""

    cli: Any
    env: dict[str, str] = field(default_factory=dict)
    # Set by a test that removes the stack (`invoke down`): the next module's `stack` fixture
    # brings it up again (tests/e2e/conftest.py).
    removed: bool = False

    def load_env(self) -> None:
        self.env = secrets.read()

    @property
    def analytics_token(self) -> str:
        return self.env.get(secrets.ANALYTICS_TOKEN, "")

    @property
    def ingest_token(self) -> str:
        return self.env.get(secrets.INGEST_TOKEN, "")

    def stream_end(self) -> str:
        """The cursor after the newest stored event (phases read from there)."""
        return outside.read_stream(self.analytics_token)[1]


@dataclass
class Phase:
    """One `invoke frontend` run: what the clients say and what the analytics shard holds."""

    runs: list[containers.ClientRun]
    events: list[dict[str, Any]]  # stored during the phase, oldest first
    stats_before: dict[str, Any]
    stats_after: dict[str, Any]
    seconds: float

    @property
    def acknowledged(self) -> int:
        return sum(r.count("events_acknowledged") for r in self.runs)


def run_clients(
    stack: Stack,
    *,
    clients: int,
    delay_ms: int,
    limit: int,
    during: Callable[[containers.IpWatcher], None] | None = None,
    timeout: float = 180,
) -> Phase:
    """`invoke frontend` with these settings, `during(watcher)` while the clients run, then
    wait for every client to exit and read the stream from where it was before."""
    token = stack.analytics_token
    _, cursor = outside.read_stream(token)
    before = outside.stats(token)
    since = datetime.now(timezone.utc).replace(microsecond=0)
    started = time.monotonic()
    with containers.IpWatcher(stack.cli, containers.FRONTEND) as watcher:
        args = ["--clients", str(clients), "--delay-ms", str(delay_ms), "--limit", str(limit)]
        invoke("frontend", *args)
        if during is not None:
            during(watcher)
        found = containers.wait_exited(stack.cli, containers.FRONTEND, timeout)
    seconds = time.monotonic() - started
    runs = containers.client_runs(found, watcher.ips, since)
    events, _ = outside.read_stream(token, cursor)
    return Phase(runs, events, before, outside.stats(token), seconds)


def identity_ip(identity: str) -> str:
    """`<container ip>-<instance>` -> the container ip."""
    return identity.rpartition("-")[0]


def check_phase(
    phase: Phase, clients: int, limit: int, extra_ips: frozenset[str] = frozenset()
) -> None:
    """Everything acknowledged is stored exactly once, per client, in the stream and in /stats.

    `extra_ips`: identities of events the test itself sent (probes), allowed besides clients.
    """
    assert len(phase.runs) == clients, [r.name for r in phase.runs]
    for run in phase.runs:
        problem = f"{run.name}: {run.fields} (exit {run.exit_code})\n{run.log[-1500:]}"
        assert run.exit_code == 0, problem
        assert run.count("events_failed") == 0, problem
        assert run.count("events_created") == limit, problem
        assert run.count("events_acknowledged") == limit, problem

    ids = Counter(str(e.get("id")) for e in phase.events)
    dupes = {i: n for i, n in ids.items() if n > 1}
    assert not dupes, f"{len(dupes)} event ids stored more than once, e.g. {list(dupes)[:5]}"
    assert all(e.get("id") for e in phase.events), "a stored client event has no id"

    stored_by_ip = Counter(
        identity_ip(str(e["ip"])) for e in phase.events if str(e["ip"]) not in extra_ips
    )
    expected = {r.ip: r.count("events_acknowledged") for r in phase.runs}
    assert len(expected) == clients, f"two clients share an address: {phase.runs}"
    assert dict(stored_by_ip) == expected, "stored per client != acknowledged per client"

    def delta(ip: str) -> int:
        after, before = phase.stats_after["clients"], phase.stats_before["clients"]
        return sum(int(n) - int(before.get(k, 0)) for k, n in after.items() if identity_ip(k) == ip)

    assert {ip: delta(ip) for ip in expected} == expected, "/stats clients != acknowledged"
