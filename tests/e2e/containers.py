"""The Docker side of the e2e tests: containers by compose label, client IPs, summaries, logs."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ese.host import processes
from ese.host.sdk import PROJECT_LABEL, SERVICE_LABEL

BACKEND = "ese-backend"
FRONTEND = "ese-frontend"
CONSUMER = "ese-consumer"
PROJECTS = (BACKEND, FRONTEND)

_SUMMARY = re.compile(r"^ese-client summary: (.*)$", re.MULTILINE)


def project_containers(cli: Any, project: str) -> list[Any]:
    """Every container of a compose project, found by label (v1 and v2 name them differently)."""
    return list(cli.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}))


def consumer_containers(cli: Any) -> list[Any]:
    return [
        c for c in cli.containers.list(all=True, filters={"name": CONSUMER}) if c.name == CONSUMER
    ]


def leftovers(cli: Any) -> list[str]:
    """Containers and volumes of the demo that exist right now (a developer's stack?)."""
    found = [f"container {c.name}" for p in PROJECTS for c in project_containers(cli, p)]
    found += [f"container {c.name}" for c in consumer_containers(cli)]
    for project in PROJECTS:
        volumes = cli.volumes.list(filters={"label": f"{PROJECT_LABEL}={project}"})
        found += [f"volume {v.name}" for v in volumes]
    return found


def service_container(cli: Any, service: str, project: str = BACKEND) -> Any:
    """The one container of a compose service."""
    found = [c for c in project_containers(cli, project) if c.labels.get(SERVICE_LABEL) == service]
    assert len(found) == 1, f"expected one {service} container, found {[c.name for c in found]}"
    return found[0]


def health(container: Any) -> str:
    container.reload()
    state = container.attrs.get("State") or {}
    return str((state.get("Health") or {}).get("Status", state.get("Status", "?")))


class IpWatcher:
    """Records the IPv4 of every running container of a project while a phase runs.

    A stopped container loses its address in `docker inspect`, and a short client run may be
    over before anyone looks, so the addresses (the clients' identities) are caught live.
    """

    def __init__(self, cli: Any, project: str, interval: float = 0.1) -> None:
        self.cli = cli
        self.project = project
        self.interval = interval
        self.ips: dict[str, str] = {}  # container id -> IPv4
        self.running_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ip-watcher", daemon=True)

    def __enter__(self) -> IpWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def running_now(self) -> int:
        return len(self._poll())

    def _poll(self) -> list[dict[str, Any]]:
        # sparse: one list call, whose answer already carries each container's networks.
        found = self.cli.containers.list(
            sparse=True, filters={"label": f"{PROJECT_LABEL}={self.project}", "status": "running"}
        )
        return [c.attrs for c in found]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for attrs in self._poll():
                    self.running_seen.add(attrs["Id"])
                    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
                    for net in networks.values():
                        if net.get("IPAddress"):
                            self.ips[attrs["Id"]] = net["IPAddress"]
            except Exception:  # a container vanishing mid-call; the next poll sees it right
                pass
            self._stop.wait(self.interval)


@dataclass(frozen=True)
class ClientRun:
    """One ese-client container's run: its address and its summary line."""

    name: str
    ip: str
    exit_code: int
    fields: dict[str, str]
    log: str

    def count(self, key: str) -> int:
        return int(self.fields[key])


def wait_exited(cli: Any, project: str, timeout: float) -> list[Any]:
    """Wait until no container of the project runs; fail with their states at the deadline."""

    def all_exited() -> list[Any]:
        found = project_containers(cli, project)
        running = [c.name for c in found if c.status in ("running", "restarting", "created")]
        return found if found and not running else []

    try:
        return processes.wait_until(all_exited, timeout, f"{project}: every container exited")
    except processes.TimedOut as exc:
        raise AssertionError(str(exc)) from None


def client_runs(containers: list[Any], ips: dict[str, str], since: datetime) -> list[ClientRun]:
    """Each client container's summary (from its log since `since`) and captured address."""
    runs = []
    for c in containers:
        c.reload()
        log = c.logs(since=since, stdout=True, stderr=True).decode(errors="replace")
        matches = _SUMMARY.findall(log)
        assert matches, f"{c.name}: no summary line in its log:\n{log[-2000:]}"
        fields = dict(pair.split("=", 1) for pair in matches[-1].split())
        assert c.id in ips, f"{c.name}: its address was never seen while it ran"
        code = int((c.attrs.get("State") or {}).get("ExitCode", -1))
        runs.append(ClientRun(c.name, ips[c.id], code, fields, log))
    return runs


def dump_logs(cli: Any, outdir: Path, tail: int = 60) -> list[str]:
    """Write every demo container's full log to `outdir`; return the last lines of each."""
    outdir.mkdir(parents=True, exist_ok=True)
    found = [c for p in PROJECTS for c in project_containers(cli, p)] + consumer_containers(cli)
    lines: list[str] = []
    for c in found:
        try:
            text = c.logs(stdout=True, stderr=True, timestamps=True).decode(errors="replace")
        except Exception as exc:  # a container removed meanwhile must not hide the others
            text = f"(logs unavailable: {exc})"
        (outdir / f"{c.name}.log").write_text(text, encoding="utf-8")
        lines.append(f"===== {c.name} ({c.status}); full log: {outdir / (c.name + '.log')} =====")
        lines += text.splitlines()[-tail:]
    return lines
