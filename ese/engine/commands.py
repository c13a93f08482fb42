"""Run a command as an argument list, printed before it runs.

Why lists and not strings: a list reaches the program as it is, on every OS, so a path with
spaces or `%` needs no quoting rules of any shell. The printed line is only for people: POSIX
quoting (`shlex.join`) or, on Windows, the C runtime's (`subprocess.list2cmdline`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence

from ese.errors import EseError
from ese.kit.output import last_lines, print_tail

Spawn = Callable[..., "subprocess.CompletedProcess[str]"]


def shown(argv: Sequence[str], windows: bool | None = None) -> str:
    """The command line a person would type for `argv` on this OS."""
    windows = os.name == "nt" if windows is None else windows
    items = [str(a) for a in argv]
    return subprocess.list2cmdline(items) if windows else shlex.join(items)


def spawn(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    capture: bool,
    timeout: float | None,
    merge: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Start the program and wait for it (the one place a child process is started).

    `merge` captures stderr into stdout, in the order the program wrote them.
    """
    environment = {**os.environ, **env} if env else None
    return subprocess.run(
        list(argv),
        env=environment,
        stdout=subprocess.PIPE if capture or merge else None,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE if capture else None,
        text=True,
        errors="replace",  # a builder's output is not always UTF-8
        timeout=timeout,
        check=False,
    )


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = False,
    quiet: bool = False,
    show_output: bool = True,
    timeout: float | None = None,
    what: str = "",
    hint: str = "read the output above",
) -> subprocess.CompletedProcess[str]:
    """Print `> command` (unless quiet), run it; a failure is an EseError when `check`.

    `env` is added to this process's environment for the child only (never spliced into the
    command line), which is how every OS passes variables safely. Without `show_output` the
    program's output (stdout and stderr, in order) is kept in `stdout` instead of shown, and
    its last lines are printed if it fails.
    """
    if not quiet:
        print(f"> {shown(argv)}", flush=True)
    try:
        result = spawn(argv, env, capture or not show_output, timeout, merge=not show_output)
    except FileNotFoundError:
        raise EseError(f"{argv[0]} not found", "install it or put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise EseError(f"{what or argv[0]} took longer than {timeout:.0f}s", hint) from None
    label = what or " ".join(str(a) for a in argv[:3])
    if result.returncode != 0 and not show_output:
        print_tail(last_lines(result.stdout or ""), label)
    if check and result.returncode != 0:
        raise EseError(f"{label} failed (exit {result.returncode})", hint)
    return result


def output(argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run quietly and capture text output; never raises for a non-zero exit."""
    return spawn(argv, None, True, timeout)


__all__ = ["Spawn", "output", "run", "shown", "spawn"]
