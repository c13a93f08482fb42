"""Every `docker compose` call goes through `docker_compose()`.

v2 (`docker compose`) and v1 (`docker-compose`) take the same arguments under a different
program name; the command is an argument list (see ese.engine.commands), so paths with spaces
work on every OS without shell quoting.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ese.engine import commands
from ese.errors import EseError
from ese.kit import output
from ese.paths import ENV_FILE

V2 = ("docker", "compose")
V1 = ("docker-compose",)


@dataclass(frozen=True)
class Compose:
    """Which compose program to call."""

    base: tuple[str, ...] = V2

    @property
    def version(self) -> str:
        return "v2" if self.base == V2 else "v1"

    def argv(
        self, project: str, file: PurePath, args: Sequence[str], env_file: PurePath = ENV_FILE
    ) -> list[str]:
        """The argument list: program, compose file, project, env file, then the subcommand."""
        return [*self.base, "-f", str(file), "-p", project, "--env-file", str(env_file), *args]


Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


def detect(
    which: Callable[[str], str | None] = shutil.which, run: Runner = subprocess.run
) -> Compose:
    """v2 `docker compose` when the plugin answers, else v1 `docker-compose`."""
    if which("docker"):
        try:
            probe = run([*V2, "version"], capture_output=True, text=True, timeout=20)
            if probe.returncode == 0:
                return Compose(V2)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if which("docker-compose"):
        return Compose(V1)
    raise EseError(
        "Docker Compose not found (neither `docker compose` nor `docker-compose`)",
        "install Docker Desktop, or the docker-compose-plugin package on Linux",
    )


_detected: Compose | None = None


def current() -> Compose:
    """The compose program of this machine, detected once per process."""
    global _detected
    if _detected is None:
        _detected = detect()
    return _detected


def docker_compose(
    project: str,
    file: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    compose: Compose | None = None,
    env_file: Path | None = None,
    capture: bool = False,
    check: bool = True,
    show_output: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Print and run one compose command; `env` reaches compose's environment only.

    Without `show_output`, compose's own lines (build steps, "Creating ... done") are kept and
    only their last ones printed, when it fails.
    """
    compose = compose or current()
    argv = compose.argv(project, file, list(args), env_file or ENV_FILE)
    return commands.run(
        argv,
        env=env,
        check=check,
        capture=capture,
        show_output=show_output,
        what=f"{compose.version} compose command `{' '.join(args)}`",
        hint="read the compose output above; `invoke doctor` checks Docker, compose and ports",
    )


def build(
    project: str,
    file: Path,
    service: str,
    image: str,
    *,
    base: str,
    env: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    verbose: bool = False,
    compose: Compose | None = None,
) -> None:
    """Build `image` through the compose `service` that owns its `build:`.

    A line when it starts and one with its time when it ends; the builder's steps only with
    `verbose` (their last lines are printed anyway when the build fails).
    """
    with output.timed(image, f"base {base}"):
        docker_compose(
            project,
            file,
            "build",
            service,
            env=env,
            env_file=env_file,
            compose=compose,
            show_output=verbose,
        )
