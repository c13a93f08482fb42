"""The Docker SDK client, and containers found by compose labels (same for compose v1 and v2).

Containers, images and health go through the SDK; only compose itself is a CLI.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ese.errors import EseError, docker_start_hint

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def client(factory: Any = None, platform: str | None = None) -> Any:
    """A connected Docker SDK client, or an EseError that says how to start Docker."""
    try:
        if factory is None:
            # importlib: the repo's own docker/ directory would shadow the SDK for mypy.
            factory = importlib.import_module("docker").from_env
        cli = factory()
        cli.ping()
        return cli
    except Exception as exc:  # DockerException, requests' ConnectionError, socket errors
        raise EseError(
            f"Docker engine not reachable ({type(exc).__name__})", docker_start_hint(platform)
        ) from None


def docker_reachable() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    try:
        client().close()
    except EseError:
        return False
    return True


def image_available(image: str) -> bool:
    """True when the engine has the image, pulling it first if a registry lets it."""
    try:
        cli = client()
    except EseError:
        return False
    try:
        try:
            cli.images.get(image)
            return True
        except Exception:  # ImageNotFound
            pass
        try:
            repo, _, tag = image.rpartition(":")
            cli.images.pull(repo or image, tag=tag or "latest")
            return True
        except Exception:  # no registry, or no such image there
            return False
    finally:
        cli.close()


@dataclass(frozen=True)
class ContainerInfo:
    service: str
    name: str
    status: str  # created, running, restarting, exited, dead, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    restarts: int = 0  # Docker's RestartCount: how often the restart policy restarted it

    @property
    def ok(self) -> bool:
        return self.status == "running" and self.health in ("healthy", "")

    @property
    def state(self) -> str:
        return f"{self.status}/{self.health}" if self.health else self.status


def info(container: Any) -> ContainerInfo:
    attrs = container.attrs or {}
    health = ((attrs.get("State") or {}).get("Health") or {}).get("Status", "")
    labels = container.labels or {}
    service = labels.get(SERVICE_LABEL, container.name)
    restarts = int(attrs.get("RestartCount") or 0)
    return ContainerInfo(service, container.name, container.status, health, restarts)


def list_containers(cli: Any, filters: dict[str, str], every: bool = True) -> list[Any]:
    """`containers.list`, safe while containers come and go.

    Why: the SDK lists ids, then inspects each one; a container removed in between (a
    replica stopping, compose recreating a service) is a 404 for the whole call. Asked again,
    the list no longer has it.
    """
    errors = importlib.import_module("docker.errors")
    for attempt in range(5):
        try:
            return list(cli.containers.list(all=every, filters=filters))
        except errors.NotFound:
            if attempt == 4:
                raise
    return []


def project_containers(cli: Any, project: str) -> list[ContainerInfo]:
    """Every container of a compose project, found by label (not by v1/v2 container names)."""
    found = list_containers(cli, {"label": f"{PROJECT_LABEL}={project}"})
    return sorted((info(c) for c in found), key=lambda i: (i.service, i.name))


def service_container_names(cli: Any, project: str, service: str) -> list[str]:
    return [i.name for i in project_containers(cli, project) if i.service == service]
