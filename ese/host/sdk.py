"""The Docker SDK client, and containers found by compose labels (same for compose v1 and v2).

Containers, images and health go through the SDK; only compose itself is a CLI.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import requests

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


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference, the tag "latest" when it names none. A
    registry's port (`host:5000/name`) is not a tag, and a digest (`@sha256:...`) is dropped."""
    name = ref.split("@", 1)[0]
    head, sep, tag = name.rpartition(":")
    return (head, tag) if sep and "/" not in tag else (name, "latest")


@contextmanager
def container(
    cli: Any, image: str, command: list[str] | None = None, **options: Any
) -> Iterator[Any]:
    """A detached container of `image` (`containers.run` options), removed with its anonymous
    volumes however the block ends: what `docker run --rm` promises, kept even when the
    caller stops waiting."""
    errors = importlib.import_module("docker.errors")
    box = cli.containers.run(image, command, detach=True, **options)
    try:
        yield box
    finally:
        with suppress(errors.APIError):
            box.remove(force=True, v=True)


def finished(box: Any, timeout: float) -> subprocess.CompletedProcess[str]:
    """Wait until the container ends: its exit code, stdout and stderr apart. TimeoutError
    when it runs longer than `timeout` seconds."""
    try:
        code = int(box.wait(timeout=timeout)["StatusCode"])
    except requests.exceptions.RequestException:  # the read deadline passed
        raise TimeoutError(f"{box.name} ran over {timeout:.0f} s") from None
    out = box.logs(stdout=True, stderr=False).decode("utf-8", "replace")
    err = box.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    return subprocess.CompletedProcess([box.name], code, out, err)


def run_once(
    image: str, command: list[str], timeout: float = 120, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm image command` as a finished process. As the CLI does, an engine that
    refuses the container answers 125, and one that runs over `timeout` 124."""
    shown = ["docker", "run", "--rm", image, *command]
    errors = importlib.import_module("docker.errors")
    cli = client()
    try:
        with container(cli, image, command, **options) as box:
            done = finished(box, timeout)
        return subprocess.CompletedProcess(shown, done.returncode, done.stdout, done.stderr)
    except TimeoutError as exc:
        return subprocess.CompletedProcess(shown, 124, "", str(exc))
    except errors.APIError as exc:
        return subprocess.CompletedProcess(shown, 125, "", f"docker: {exc.explanation or exc}")
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
