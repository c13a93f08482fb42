"""Compose command lines for v1 and v2 on Windows and POSIX, and the one helper that runs them."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from invoke import MockContext, Result

from ese import compose
from ese.compose import V1, V2, Compose, docker_compose
from ese.errors import EseError

POSIX_FILE = Path("/home/ann lee/ese demo/docker/ese-server.compose.yml")
POSIX_ENV = Path("/home/ann lee/ese demo/docker/.env")
WIN_FILE = PureWindowsPath(r"C:\Users\Ann Lee\ese demo\docker\ese-server.compose.yml")
WIN_ENV = PureWindowsPath(r"C:\Users\Ann Lee\ese demo\docker\.env")


@pytest.mark.parametrize(
    ("base", "program"), [(V2, "docker compose"), (V1, "docker-compose")], ids=["v2", "v1"]
)
def test_posix_line_quotes_paths_with_spaces_in_double_quotes(base, program):
    line = Compose(base, windows=False).line("ese-backend", POSIX_FILE, ["up", "-d"], POSIX_ENV)
    assert line == (
        f'{program} -f "/home/ann lee/ese demo/docker/ese-server.compose.yml" -p ese-backend '
        '--env-file "/home/ann lee/ese demo/docker/.env" up -d'
    )
    assert "'" not in line
    # A POSIX shell splits it back into exactly the intended arguments.
    assert shlex.split(line) == [*base, "-f", str(POSIX_FILE), "-p", "ese-backend",
                                 "--env-file", str(POSIX_ENV), "up", "-d"]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "program"), [(V2, "docker compose"), (V1, "docker-compose")], ids=["v2", "v1"]
)
def test_windows_line_uses_cmd_compatible_double_quotes(base, program):
    c = Compose(base, windows=True)
    line = c.line("ese-frontend", WIN_FILE, ["up", "-d", "--scale", "ese-client=4"], WIN_ENV)
    assert line == (
        f'{program} -f "C:\\Users\\Ann Lee\\ese demo\\docker\\ese-server.compose.yml" '
        '-p ese-frontend --env-file "C:\\Users\\Ann Lee\\ese demo\\docker\\.env" '
        "up -d --scale ese-client=4"
    )
    assert "'" not in line


def test_posix_quoting_escapes_shell_specials():
    assert compose.quote_posix('a "b" $HOME `x` \\') == '"a \\"b\\" \\$HOME \\`x\\` \\\\"'
    assert compose.quote_posix("") == '""'
    assert compose.quote_posix("it's") == '"it\'s"'  # the quote is inside double quotes


def cmd_exe_outside_quotes(line: str) -> str:
    """The characters cmd.exe sees outside double quotes (where & | < > ^ ( ) are operators)."""
    outside, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            outside.append(ch)
    return "".join(outside)


def crt_split(line: str) -> list[str]:
    """How the MS C runtime splits a command line into argv (backslash/quote rules)."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        cur: list[str] = []
        quoted = False
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                if j < n and line[j] == '"':
                    cur.append("\\" * ((j - i) // 2))
                    if (j - i) % 2:
                        cur.append('"')
                        j += 1
                else:
                    cur.append("\\" * (j - i))
                i = j
            elif line[i] == '"':
                quoted = not quoted
                i += 1
            else:
                cur.append(line[i])
                i += 1
        args.append("".join(cur))
    return args


@pytest.mark.parametrize(
    "arg",
    [
        r"C:\R&D\x.yml",
        r"C:\a|b\x.yml",
        r"C:\a<b",
        r"C:\a>b",
        r"C:\Program Files (x86)\e",
        r"C:\a^b\x.yml",
        r"C:\it's mine",
        "C:\\dir with space\\",
        r"C:\a;b,c=d",
        "a!b",
        "",
    ],
)
def test_windows_quoting_survives_cmd_exe_and_the_c_runtime(arg):
    line = compose.join(["docker-compose", "-f", arg, "up"], windows=True)
    assert not set(cmd_exe_outside_quotes(line)) & set("&|<>^()%"), line
    assert crt_split(line) == ["docker-compose", "-f", arg, "up"]


@pytest.mark.parametrize(
    ("arg", "what"),
    [(r"C:\100%\x.yml", "'%'"), (r"C:\%USERNAME%\x", "'%'"), ('a"b', "'\"'"),
     ("a\nb", "a line break")],
)  # fmt: skip
def test_windows_quoting_refuses_what_cmd_exe_would_change(arg, what):
    with pytest.raises(EseError) as err:
        compose.quote_windows(arg)
    assert f"it contains {what}" in str(err.value)
    if "%" in arg:
        assert "path has no %" in str(err.value)


def test_windows_safe_arguments_stay_bare_and_percent_is_not_safe():
    assert compose.quote_windows(r"C:\ese\docker\.env") == r"C:\ese\docker\.env"
    assert compose.quote_windows("ese-client=4") == "ese-client=4"
    assert compose.quote_windows("a&b") == '"a&b"'
    with pytest.raises(EseError):
        compose.quote_windows("50%")


def test_detect_prefers_v2_when_the_plugin_answers():
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "Docker Compose version v2.27.0", "")

    found = compose.detect(which=lambda name: f"/usr/bin/{name}", run=run)
    assert found.base == V2
    assert calls == [["docker", "compose", "version"]]


def test_detect_falls_back_to_v1():
    def run(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "docker: 'compose' is not a docker command")

    assert compose.detect(which=lambda name: f"/usr/bin/{name}", run=run).base == V1


def test_detect_without_any_compose_is_a_clear_error():
    with pytest.raises(EseError, match="Docker Compose not found"):
        compose.detect(which=lambda name: None)


def test_docker_compose_prints_then_runs_with_env_and_no_pty(capsys):
    c = Compose(V1, windows=False)
    line = c.line("ese-frontend", POSIX_FILE, ["up", "-d"], POSIX_ENV)
    ctx: Any = MockContext(run={line: Result("", exited=0)})
    docker_compose(ctx, "ese-frontend", POSIX_FILE, "up", "-d", env={"REACT_APP_BE_SERVER": "u"},
                   compose=c, env_file=POSIX_ENV)  # fmt: skip
    assert capsys.readouterr().out == f"> {line}\n"
    args, kwargs = ctx.run.call_args
    assert args == (line,)
    assert kwargs["env"] == {"REACT_APP_BE_SERVER": "u"}
    assert kwargs["pty"] is False


def test_docker_compose_failure_is_one_line_error():
    c = Compose(V2, windows=False)
    line = c.line("ese-backend", POSIX_FILE, ["up", "-d"], POSIX_ENV)
    ctx = MockContext(run={line: Result("", exited=1)})
    with pytest.raises(EseError) as err:
        docker_compose(ctx, "ese-backend", POSIX_FILE, "up", "-d", compose=c, env_file=POSIX_ENV)
    assert "v2 compose command failed (exit 1): up -d" in str(err.value)
    assert "invoke doctor" in str(err.value)
