"""Every `docker compose` call goes through `docker_compose()`.

Why one helper: v2 (`docker compose`) and v1 (`docker-compose`) take the same arguments but a
different program name, and the command line must survive both POSIX shells and Windows
cmd.exe (Invoke runs commands through the platform shell). The arguments are built as a list
and quoted for the target shell with double quotes only, so paths with spaces work everywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ese.errors import EseError
from ese.paths import ENV_FILE

V2 = ("docker", "compose")
V1 = ("docker-compose",)
# Characters that never need quoting in sh/bash/zsh/fish or in cmd.exe + the MS C runtime.
_WIN_SAFE = re.compile(r"^[A-Za-z0-9_@+=:,./\\-]+$")
_POSIX_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# What no quoting makes safe in a cmd.exe line: % expands %VAR% even inside double quotes
# (and ^ cannot escape it there), a " would end cmd's quoted region early, and a line break
# ends the command. Windows paths cannot contain " anyway.
_WIN_UNQUOTABLE = re.compile(r'[%"\r\n\x00]')


def quote_posix(arg: str) -> str:
    """Quote one argument for a POSIX shell using double quotes (never single quotes)."""
    if arg and _POSIX_SAFE.match(arg):
        return arg
    escaped = re.sub(r'([\\"$`])', r"\\\1", arg)
    return f'"{escaped}"'


def quote_windows(arg: str) -> str:
    """Quote one argument for a cmd.exe line that the MS C runtime then splits into argv.

    Anything outside a strict safe set goes in double quotes, where cmd.exe leaves
    & | < > ^ ( ) and spaces alone; trailing backslashes are doubled so the closing quote
    stays a quote for the C runtime. `%`, `"` and line breaks are refused (see above).
    """
    if arg and _WIN_SAFE.match(arg):
        return arg
    bad = _WIN_UNQUOTABLE.search(arg)
    if bad:
        char = {"\r": "a line break", "\n": "a line break", "\x00": "a NUL"}.get(
            bad.group(), repr(bad.group())
        )
        raise EseError(
            f"cannot pass {arg!r} safely through cmd.exe: it contains {char}",
            "cmd.exe expands %NAME% even inside quotes; move the repository to a folder whose "
            'path has no % or " character'
            if bad.group() in '%"'
            else "remove it",
        )
    # No " inside, so the only C-runtime escaping left is doubling trailing backslashes.
    stripped = arg.rstrip("\\")
    return f'"{stripped}{(len(arg) - len(stripped)) * 2 * chr(92)}"'


def join(argv: Sequence[str], windows: bool | None = None) -> str:
    """One command line for the platform shell Invoke uses (cmd.exe on Windows, sh elsewhere)."""
    windows = os.name == "nt" if windows is None else windows
    quote = quote_windows if windows else quote_posix
    return " ".join(quote(str(a)) for a in argv)


@dataclass(frozen=True)
class Compose:
    """Which compose program to call and for which shell to quote."""

    base: tuple[str, ...] = V2
    windows: bool = field(default_factory=lambda: os.name == "nt")

    @property
    def version(self) -> str:
        return "v2" if self.base == V2 else "v1"

    def argv(
        self, project: str, file: PurePath, args: Sequence[str], env_file: PurePath = ENV_FILE
    ) -> list[str]:
        """The argument list: program, compose file, project, env file, then the subcommand."""
        return [*self.base, "-f", str(file), "-p", project, "--env-file", str(env_file), *args]

    def line(
        self, project: str, file: PurePath, args: Sequence[str], env_file: PurePath = ENV_FILE
    ) -> str:
        """The quoted command line."""
        return join(self.argv(project, file, args, env_file), self.windows)


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
    c: Any,
    project: str,
    file: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    compose: Compose | None = None,
    env_file: Path = ENV_FILE,
    hide: bool | str | None = None,
    check: bool = True,
) -> Any:
    """Print and run one compose command through the Invoke context `c`.

    `env` is merged into the child's environment by Invoke (never spliced into the command
    line), and `pty` stays off because Windows has none.
    """
    compose = compose or current()
    line = compose.line(project, file, list(args), env_file)
    print(f"> {line}", flush=True)
    result = c.run(line, env=dict(env or {}), pty=False, warn=True, hide=hide)
    if check and (result is None or result.failed):
        code = "?" if result is None else result.exited
        raise EseError(
            f"{compose.version} compose command failed (exit {code}): {' '.join(args)}",
            "read the compose output above; `invoke doctor` checks Docker, compose and ports",
        )
    return result
