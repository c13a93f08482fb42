"""The exact line that sets REACT_APP_BE_SERVER in the user's shell, for running compose by hand."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from ese.errors import EseError

VAR = "REACT_APP_BE_SERVER"
SHELLS = ("powershell", "cmd", "bash", "zsh", "fish")
# Process names (lower case, without .exe) that identify each shell.
_NAMES = {
    "pwsh": "powershell",
    "powershell": "powershell",
    "powershell_ise": "powershell",
    "cmd": "cmd",
    "bash": "bash",
    "sh": "bash",
    "dash": "bash",
    "ksh": "bash",
    "zsh": "zsh",
    "fish": "fish",
}


def _escape(value: str, specials: str, escape: str) -> str:
    return "".join(escape + ch if ch in specials else ch for ch in value)


def set_line(shell: str, value: str, var: str = VAR) -> str:
    """The command that sets `var` to `value` for the rest of the session in `shell`."""
    shell = shell.lower()
    if shell == "powershell":
        quoted = _escape(value, '`"$', "`")
        return f'$env:{var} = "{quoted}"'
    if shell == "cmd":
        return _cmd_set(var, value)
    if shell in ("bash", "zsh"):
        quoted = _escape(value, '\\"$`', "\\")
        return f'export {var}="{quoted}"'
    if shell == "fish":
        quoted = _escape(value, '\\"$', "\\")
        return f'set -gx {var} "{quoted}"'
    raise EseError(f"unknown shell {shell!r}", f"use one of: {', '.join(SHELLS)}")


_CMD_SPECIALS = '&|<>^()"'


def _cmd_set(var: str, value: str) -> str:
    """`set` for the interactive cmd.exe prompt (not a .bat file, where % doubles instead).

    Usually `set "VAR=value"`: the quotes keep & | < > ^ ( ) literal. But cmd expands %NAME%
    even inside quotes, and at the prompt %% is not an escape; a `"` in the value would end
    the quoted region. Then the line is unquoted with caret escapes: ^ before each special
    character, and a ^ right after each % so that no `%NAME%` names a defined variable (cmd
    keeps `%^NAME%` as is when no variable `^NAME` exists, then drops the caret).
    """
    if "%" not in value and '"' not in value:
        return f'set "{var}={value}"'
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in _CMD_SPECIALS:
            out.append("^" + ch)
        elif i > 0 and value[i - 1] == "%":
            out.append("^" + ch)  # a caret before a plain character is just dropped
        else:
            out.append(ch)
    return f"set {var}={''.join(out)}"


def _from_name(name: str) -> str | None:
    base = os.path.basename(name).lower()
    base = base.removesuffix(".exe").lstrip("-")  # login shells show up as "-zsh"
    return _NAMES.get(base)


def detect(
    ancestors: Callable[[], Iterable[str]] | None = None,
    environ: Mapping[str, str] | None = None,
    windows: bool | None = None,
) -> str:
    """The shell that started this process: the nearest ancestor that is a known shell.

    Falls back to $SHELL on POSIX, and to PowerShell/cmd on Windows by PSModulePath (PowerShell
    puts a per-user entry there; cmd does not).
    """
    environ = os.environ if environ is None else environ
    windows = os.name == "nt" if windows is None else windows
    for name in (ancestors or _ancestor_names)():
        shell = _from_name(name)
        if shell and not (shell == "bash" and windows and name.lower().startswith("sh")):
            return shell
    if windows:
        ps_paths = environ.get("PSModulePath", "")
        return "powershell" if "documents" in ps_paths.lower() else "cmd"
    return _from_name(environ.get("SHELL", "")) or "bash"


def _ancestor_names(limit: int = 6) -> list[str]:
    try:
        import psutil

        proc = psutil.Process().parent()
        names: list[str] = []
        while proc is not None and len(names) < limit:
            names.append(proc.name())
            proc = proc.parent()
        return names
    except Exception:  # psutil can be denied access to a parent; fall back to the env
        return []
