"""Fixtures for the task tests: fakes of Docker, netifaces and psutil, and a fake Grafana."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from ese.fake_grafana import FakeGrafanaServer
from ese.topology import Topology, load

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
        return {"State": state, "HostConfig": {"PortBindings": bindings}}

    def remove(self, force: bool = False) -> None:
        self.removed = True


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


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.builds: list[dict[str, Any]] = []

    def get(self, name: str) -> Any:
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(tags=[name])

    def build(self, **kwargs: Any) -> Any:
        self.builds.append(kwargs)
        self.present.add(kwargs["tag"])
        return SimpleNamespace(tags=[kwargs["tag"]]), []


class FakeDocker:
    """The slice of docker.DockerClient the tasks use."""

    def __init__(
        self, containers: list[FakeContainer] | None = None, images: set[str] | None = None
    ):
        self.containers = FakeContainers(list(containers or []))
        self.images = FakeImages(set(images or ()))

    def ping(self) -> bool:
        return True

    def version(self) -> dict[str, str]:
        return {"Version": "99.0-fake"}


@pytest.fixture
def fake_docker() -> FakeDocker:
    return FakeDocker()
