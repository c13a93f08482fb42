"""Short-lived containers for the kit's probes and smoke tests, through the Docker SDK.

Each is named `ese-offline-...-<pid>` and removed afterwards, with its anonymous volumes and
the named volume of the same name, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ese.host import sdk
from ese.host.processes import TimedOut, wait_until
from ese.kit import KitError
from ese.kit.image_builds import client, docker_errors, engine_errors
from ese.kit.output import action

# A probe in a starting container (redis-cli ping, wget /health) succeeds within seconds.
WAIT_SECONDS = 30.0
# A one-off container runs at most this long: `pip install` of the whole project is the longest.
RUN_SECONDS = 600.0


def name_for(purpose: str) -> str:
    """A container (and volume) name of this run, so parallel runs do not collide."""
    return f"ese-offline-{purpose}-{os.getpid()}"


@dataclass(frozen=True)
class Ran:
    """How a one-off container ended."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, as captured from `docker run`."""
        return (self.stdout + self.stderr).strip()


def _describe(name: str, image: str, options: dict[str, Any]) -> str:
    entrypoint = options.get("entrypoint") or []
    words = ["--entrypoint", shlex.join(entrypoint)] if entrypoint else []
    return shlex.join(["--name", name, *words, image, *(options.get("command") or [])])


def _remove(name: str) -> None:
    """Remove container `name` and the volume `name`, if there; never raises."""
    # Not there is fine: the container was never created, or had no named volume.
    gone = (docker_errors().DockerException, OSError, KitError)
    with contextlib.suppress(*gone):
        client().containers.get(name).remove(force=True, v=True)
    with contextlib.suppress(*gone):
        client().volumes.get(name).remove(force=True)


@contextmanager
def running(image: str, purpose: str, verb: str = "run -d", **options: Any) -> Iterator[Any]:
    """A detached container (SDK `containers.run` options), removed on the way out."""
    name = name_for(purpose)
    action(f"{verb} {_describe(name, image, options)}")
    command = options.pop("command", None)
    try:
        with contextlib.ExitStack() as stack:
            with engine_errors(f"starting {image} as {name}"):
                box = stack.enter_context(
                    sdk.container(client(), image, command, name=name, **options)
                )
            yield box
    finally:
        _remove(name)  # also a container created but never started, and the named volume


def run_once(image: str, purpose: str, **options: Any) -> Ran:
    """Run a container to its end (at most RUN_SECONDS), like `docker run --rm`."""
    with running(image, purpose, "run --rm", **options) as box, engine_errors(f"running {image}"):
        try:
            done = sdk.finished(box, RUN_SECONDS)
        except TimeoutError:
            raise KitError(f"{box.name} ({image}) ran over {RUN_SECONDS:.0f} s") from None
    return Ran(done.returncode, done.stdout, done.stderr)


def _stopped(container: Any) -> bool:
    container.reload()
    return not container.attrs["State"]["Running"]


def exec_in(container: Any, command: Sequence[str]) -> tuple[int, str]:
    """`docker exec`: the exit code and output (stdout and stderr) of a command in it."""
    action(f"exec {container.name} {shlex.join(command)}")
    with engine_errors(f"running {command[0]} in {container.name}"):
        code, out = container.exec_run(list(command))
    return int(code), out.decode("utf-8", "replace").strip()


def until(container: Any, probe: Sequence[str]) -> bool:
    """Run `probe` in the container until it succeeds, at most WAIT_SECONDS; False if not."""
    action(f"exec {container.name} {shlex.join(probe)} (until it succeeds, {WAIT_SECONDS:.0f} s)")
    errors = docker_errors()

    def outcome() -> str:
        try:
            if container.exec_run(list(probe)).exit_code == 0:
                return "ok"
        except errors.APIError:
            pass  # not running (any more): said below
        try:
            return "" if not _stopped(container) else "stopped"
        except errors.NotFound:
            return "stopped"

    with engine_errors(f"waiting for {container.name}"):
        try:
            return wait_until(outcome, WAIT_SECONDS, f"{container.name} answers", retry=()) == "ok"
        except TimedOut:
            return False


def logs(container: Any, lines: int = 5) -> str:
    """The container's last log lines on one line (they explain a failed check)."""
    try:
        text = container.logs(tail=lines).decode("utf-8", "replace")
    except (docker_errors().DockerException, OSError):
        return "(no logs: the container is gone)"
    return " | ".join(text.strip().splitlines()[-lines:])
