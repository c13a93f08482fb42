"""The ese-consumer image: builds from the repo root, runs as non-root, turns healthy.

The base image is the one a run would use (ese.engine.images: an ESE_PYTHON_BASE_IMAGE override,
the official image, or the offline kit's Python image with a wheelhouse); without Docker the
test is skipped (a failure under CI=true).
"""

from __future__ import annotations

import contextlib
import importlib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.engine import images
from ese.host.processes import wait_until
from ese.render.compose_files import SERVICE_DOCKERFILE, build_args
from ese.topology import load
from tests.tooling import free_port, missing, need_binary

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]


def _docker() -> Any:
    # Imported by name: the repo's `docker/` folder (compose files) would shadow the SDK for mypy.
    return importlib.import_module("docker")


@pytest.fixture
def docker_client() -> Iterator[Any]:
    need_binary("docker", "install docker.io and start dockerd")
    docker = _docker()
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        missing("a reachable Docker engine", str(exc).splitlines()[0])
    try:
        yield client
    finally:
        client.close()


def test_image_builds_runs_as_non_root_and_is_healthy(docker_client: Any) -> None:
    docker = _docker()
    # The base a run would use: an override, the official image, or the kit's stand-in.
    base = images.plan(load(), "auto", docker_client, only=("python_base",)).ref("python_base")
    tag = f"ese-consumer-test:{uuid.uuid4().hex[:10]}"
    container = None
    try:
        docker_client.images.build(
            path=str(REPO_ROOT),
            dockerfile=SERVICE_DOCKERFILE,
            tag=tag,
            buildargs={"BASE_IMAGE": base, **build_args("ese-consumer")},
            rm=True,
            forcerm=True,
        )
        port = free_port()
        # A non-default port through ESE_CONSUMER_PORT: the healthcheck must follow it.
        container = docker_client.containers.run(
            tag,
            detach=True,
            environment={"ESE_CONSUMER_PORT": "8600"},
            ports={"8600/tcp": ("127.0.0.1", port)},
        )

        def verdict() -> str:
            container.reload()
            status = container.attrs["State"].get("Health", {}).get("Status", "none")
            done = status in ("healthy", "unhealthy") or container.status == "exited"
            return status if done else ""

        status = wait_until(verdict, 90, "a health verdict", 1)
        assert status == "healthy", container.logs(tail=30).decode(errors="replace")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.status == 200
        code, output = container.exec_run(["id", "-u"])
        assert code == 0 and output.decode().strip() not in ("", "0")
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["Entrypoint"] == ["python", "-m", "ese_settings.image", "run"]
        assert "ESE_SERVICE=ese-consumer" in config["Env"]
        assert "8501/tcp" in config["ExposedPorts"]
        # PID 1 is the service itself (the entry point exec'd), so `docker stop` reaches it.
        code, output = container.exec_run(["cat", "/proc/1/cmdline"])
        assert code == 0 and b"ese-consumer" in output, output
    finally:
        if container is not None:
            container.remove(force=True)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)
