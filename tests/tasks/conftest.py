"""Fixtures for the task tests: fakes of Docker, netifaces and psutil, and a fake Grafana."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from ese.engine import commands
from ese.topology import Topology, load
from fake_grafana.server import FakeGrafanaServer

AF_INET = 2


@pytest.fixture
def topo() -> Topology:
    return load()


@pytest.fixture
def grafana() -> Iterator[FakeGrafanaServer]:
    server = FakeGrafanaServer("127.0.0.1", 0, "admin", "s3cret").start()
    try:
        yield server
    finally:
        server.stop()


class FakeNetifaces:
    """netifaces' API over a dict {iface: [{"addr":..., "broadcast":...}]} and a default iface."""

    AF_INET = AF_INET

    def __init__(self, layout: dict[str, list[dict[str, str]]], default: str | None) -> None:
        self.layout = layout
        self.default = default

    def interfaces(self) -> list[str]:
        return list(self.layout)

    def ifaddresses(self, name: str) -> dict[int, list[dict[str, str]]]:
        return {AF_INET: self.layout[name]} if self.layout[name] else {}

    def gateways(self) -> dict[Any, Any]:
        if self.default is None:
            return {"default": {}}
        return {"default": {AF_INET: ("192.168.1.1", self.default)}}


@dataclass
class FakeContainer:
    name: str
    status: str = "running"
    health: str = "healthy"
    project: str = "ese-backend"
    service: str = ""
    removed: bool = False
    host_ports: tuple[int, ...] = ()  # published host ports (HostConfig.PortBindings)
    restarts: int = 0  # RestartCount
    log_text: bytes = b""
    env: list[str] = field(default_factory=list)  # Config.Env
    log_calls: list[dict[str, Any]] = field(default_factory=list)
    exec_exit: int = 0  # what exec_run's command exits with
    exec_calls: list[list[str]] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {
            "com.docker.compose.project": self.project,
            "com.docker.compose.service": self.service or self.name,
        }

    @property
    def attrs(self) -> dict[str, Any]:
        state: dict[str, Any] = {"Status": self.status}
        if self.health:
            state["Health"] = {"Status": self.health}
        bindings = {
            f"{p}/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(p)}] for p in self.host_ports
        }
        return {
            "State": state,
            "HostConfig": {"PortBindings": bindings},
            "RestartCount": self.restarts,
            "Config": {"Env": self.env},
        }

    def remove(self, force: bool = False) -> None:
        self.removed = True

    def exec_run(self, cmd: list[str], **kwargs: Any) -> tuple[int, bytes]:
        self.exec_calls.append(cmd)
        return self.exec_exit, b""

    def logs(self, **kwargs: Any) -> bytes:
        self.log_calls.append(kwargs)
        return self.log_text


@dataclass
class FakeContainers:
    items: list[FakeContainer] = field(default_factory=list)
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    list_calls: int = 0

    def list(self, all: bool = False, filters: dict[str, str] | None = None) -> list[Any]:
        self.list_calls += 1
        filters = filters or {}
        out = [c for c in self.items if not c.removed]
        if "label" in filters:
            key, _, value = filters["label"].partition("=")
            out = [c for c in out if c.labels.get(key) == value]
        if "name" in filters:
            out = [c for c in out if filters["name"] in c.name]
        return out

    def get(self, name: str) -> FakeContainer:
        for c in self.items:
            if c.name == name and not c.removed:
                return c
        raise docker.errors.NotFound(f"No such container: {name}")

    def run(self, image: str, **kwargs: Any) -> FakeContainer:
        self.runs.append((image, kwargs))
        container = FakeContainer(kwargs["name"], project="", health="")
        self.items.append(container)
        return container


class NoRegistry(Exception):
    """What the engine answers when no registry can be reached (a DNS failure)."""


class FakeImages:
    """Images on the engine, and a registry that holds `registry` (None: no registry answers)."""

    def __init__(self, present: set[str], registry: set[str] | None = None) -> None:
        self.present = present
        self.registry = registry
        self.builds: list[dict[str, Any]] = []
        self.pulls: list[str] = []
        self.asked: list[str] = []

    def get_registry_data(self, ref: str) -> Any:
        self.asked.append(ref)
        if self.registry is None:
            raise NoRegistry("Get https://registry-1.docker.io/v2/: dial tcp: lookup: no such host")
        if ref not in self.registry:
            response = SimpleNamespace(status_code=404)
            raise docker.errors.NotFound("manifest unknown", response=response)
        return SimpleNamespace(id="sha256:feed")

    def pull(self, repo: str, tag: str = "latest") -> Any:
        ref = f"{repo}:{tag}"
        self.pulls.append(ref)
        self.present.add(ref)
        return SimpleNamespace(tags=[ref])

    def get(self, name: str) -> Any:
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(tags=[name])


class FakeAPI:
    """The low-level API's build: the JSON stream `api.build(decode=True)` yields. A build
    whose tag is in `failing` prints `output` lines and stops with an error."""

    def __init__(self, images: FakeImages) -> None:
        self.images = images
        self.base_url = ""  # a real client's engine address; none: nothing is remembered for it
        self.failing: set[str] = set()
        self.output = ["Step 1/2 : FROM base", "Step 2/2 : RUN pip install ."]

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.images.builds.append(kwargs)
        yield from ({"stream": f"{line}\n"} for line in self.output)
        if kwargs["tag"] in self.failing:
            yield {"error": "The command '/bin/sh -c pip install .' returned a non-zero code: 1"}
            return
        yield {"aux": {"ID": "sha256:" + "c" * 64}}
        self.images.present.add(kwargs["tag"])


class FakeDocker:
    """The slice of docker.DockerClient the tasks use."""

    def __init__(
        self,
        containers: list[FakeContainer] | None = None,
        images: set[str] | None = None,
        registry: set[str] | None = None,
    ):
        self.containers = FakeContainers(list(containers or []))
        self.images = FakeImages(set(images or ()), registry)
        self.api = FakeAPI(self.images)

    def ping(self) -> bool:
        return True

    def version(self) -> dict[str, str]:
        return {"Version": "99.0-fake"}


@pytest.fixture
def fake_docker() -> FakeDocker:
    return FakeDocker()


class FakeSpawn:
    """Stands in for ese.engine.commands.spawn: records (argv, env), answers exit 0 or 1."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.hidden: list[bool] = []  # per call: was the output kept (merged) instead of shown
        self.failing: list[str] = []
        self.stdout = ""

    def fail_when(self, word: str) -> None:
        """Commands that contain `word` exit 1."""
        self.failing.append(word)

    def __call__(
        self, argv: Any, env: Any, capture: bool, timeout: float | None, merge: bool = False
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(a) for a in argv]
        self.calls.append((argv, dict(env or {})))
        self.hidden.append(merge)
        code = 1 if any(word in argv for word in self.failing) else 0
        return subprocess.CompletedProcess(argv, code, self.stdout, None if merge else "")

    def commands(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]


@pytest.fixture
def spawned(monkeypatch) -> FakeSpawn:
    """Every command the code under test runs is recorded here instead of started."""
    fake = FakeSpawn()
    monkeypatch.setattr(commands, "spawn", fake)
    return fake
