"""Containers run alone with the Docker SDK, outside any compose project: the ese-consumer
dashboard and the click-through page (ese/flows/consumer.py, ese/flows/webclient.py)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ese.errors import EseError
from ese.kit import output
from ese.paths import REPO_ROOT
from ese.render.compose_files import SERVICE_DOCKERFILE, build_args

LABEL = "org.ese.service"
DOCKERFILE = SERVICE_DOCKERFILE


def _errors() -> Any:
    return importlib.import_module("docker.errors")


def remove(cli: Any, name: str) -> bool:
    """Remove the container called `name` (running or not); False when there is none."""
    try:
        cli.containers.get(name).remove(force=True)
    except _errors().NotFound:
        return False
    return True


def logs(cli: Any, name: str, tail: int, follow: bool) -> Iterator[str]:
    """The container's log text: the last `tail` lines, then new ones while `follow`."""
    try:
        container = cli.containers.get(name)
    except _errors().NotFound:
        raise EseError(f"no container {name!r}", "start it with `invoke consumer`") from None
    if not follow:
        yield container.logs(tail=tail).decode("utf-8", "replace")
        return
    for chunk in container.logs(tail=tail, stream=True, follow=True):
        yield chunk.decode("utf-8", "replace")


def holds_port(cli: Any, name: str, port: int) -> bool:
    """True when the running container `name` publishes host `port` (busy, but by us)."""
    try:
        container = cli.containers.get(name)
    except _errors().NotFound:
        return False
    if container.status != "running":
        return False
    bindings = ((container.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
    return any(
        str(bound.get("HostPort")) == str(port)
        for binds in bindings.values()
        for bound in binds or []
    )


def ensure_image(
    cli: Any,
    image: str,
    base_image: str,
    build: bool,
    report: Callable[[str], None] = print,
    verbose: bool = False,
) -> None:
    """Build the consumer image from this repository when asked or when it is missing.

    A line when the build starts and one with its time when it ends; the builder's steps only
    with `verbose`, and their last lines when it fails.
    """
    errors = _errors()
    if not build:
        try:
            cli.images.get(image)
            return
        except errors.ImageNotFound:
            pass
    args = {"BASE_IMAGE": base_image, **build_args("ese-consumer")}
    transcript = output.Transcript(shown=verbose)
    try:
        with output.timed(image, f"base {base_image}", say=report):
            stream = cli.api.build(
                path=str(REPO_ROOT),
                dockerfile=DOCKERFILE,
                tag=image,
                buildargs=args,
                rm=True,
                decode=True,
                timeout=output.BUILD_TIMEOUT,
            )
            output.built_image(stream, transcript)
    except (output.BuildStopped, errors.APIError) as exc:
        said = str(exc).splitlines()[0] if str(exc) else repr(exc)
        why = said if isinstance(exc, output.BuildStopped) else f"failed: {said}"
        transcript.show_tail(f"building {image}")
        raise EseError(
            f"building {image} {why}",
            f"`invoke consumer --build --verbose` shows the whole build of {DOCKERFILE}",
        ) from None


def run(
    cli: Any,
    *,
    image: str,
    name: str,
    host_port: int,
    container_port: int,
    bind: str,
    environment: Mapping[str, str],
    platform: str | None = None,
    command: list[str] | None = None,
) -> Any:
    """Replace any container called `name` and start it (the consumer, or the click-through
    page with `command`), publishing its port."""
    platform = platform or sys.platform
    remove(cli, name)
    kwargs: dict[str, Any] = {
        "name": name,
        "detach": True,
        "ports": {f"{container_port}/tcp": (bind, host_port)},
        "environment": dict(environment),
        "labels": {LABEL: name},
        "restart_policy": {"Name": "unless-stopped"},
    }
    if command:
        kwargs["command"] = command
    if platform.startswith("linux"):
        # Docker Desktop defines host.docker.internal; a Linux engine needs the host gateway.
        kwargs["extra_hosts"] = {"host.docker.internal": "host-gateway"}
    try:
        return cli.containers.run(image, **kwargs)
    except _errors().APIError as exc:
        explanation = getattr(exc, "explanation", None) or str(exc)
        hint = "run `invoke doctor`"
        if "port is already allocated" in explanation or "address already in use" in explanation:
            hint = (
                f"port {host_port} is busy; pass --port or run `invoke doctor` to see who holds it"
            )
        raise EseError(f"starting {name} failed: {explanation}", hint) from None
