"""Commands as argument lists: what is printed, what the program receives, and compose."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ese.engine import commands, compose
from ese.engine.compose import V1, V2, Compose, docker_compose
from ese.errors import EseError
from tests.tasks.conftest import FakeSpawn

POSIX_FILE = Path("/home/ann lee/ese demo/docker/ese-server.compose.yml")
POSIX_ENV = Path("/home/ann lee/ese demo/docker/.env")


@pytest.mark.parametrize("base", [V2, V1], ids=["v2", "v1"])
def test_compose_argv_keeps_paths_whole(base):
    argv = Compose(base).argv("ese-backend", POSIX_FILE, ["up", "-d"], POSIX_ENV)
    assert argv == [
        *base,
        "-f",
        str(POSIX_FILE),
        "-p",
        "ese-backend",
        "--env-file",
        str(POSIX_ENV),
        "up",
        "-d",
    ]


def test_the_printed_line_splits_back_into_the_same_arguments():
    argv = ["docker", "compose", "-f", str(POSIX_FILE), "up", "-d"]
    line = commands.shown(argv, windows=False)
    assert shlex.split(line) == argv
    assert commands.shown(["a b", "c"], windows=True) == '"a b" c'  # the C runtime's quoting


def test_a_path_with_spaces_and_percent_reaches_the_program_unchanged(tmp_path, capsys):
    odd = tmp_path / "Ann Lee %USERPROFILE% & co" / "ese-server.compose.yml"
    probe = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['ESE_PROBE']]))"
    result = commands.run(
        [sys.executable, "-c", probe, str(odd), "--scale", "ese-client=4"],
        env={"ESE_PROBE": "50% & more"},
        capture=True,
    )
    args, env_value = json.loads(result.stdout)
    assert args == [str(odd), "--scale", "ese-client=4"]
    assert env_value == "50% & more"
    assert capsys.readouterr().out.startswith("> ")


def test_a_missing_program_is_one_line():
    with pytest.raises(EseError, match="no-such-program-ese not found; install it"):
        commands.run(["no-such-program-ese"], quiet=True)


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


def test_docker_compose_prints_then_runs_with_env_for_the_child_only(spawned: FakeSpawn, capsys):
    c = Compose(V1)
    docker_compose(
        "ese-frontend",
        POSIX_FILE,
        "up",
        "-d",
        env={"REACT_APP_BE_SERVER": "u"},
        compose=c,
        env_file=POSIX_ENV,
    )
    argv = c.argv("ese-frontend", POSIX_FILE, ["up", "-d"], POSIX_ENV)
    assert capsys.readouterr().out == f"> {commands.shown(argv)}\n"
    assert spawned.calls == [(argv, {"REACT_APP_BE_SERVER": "u"})]


def test_docker_compose_failure_is_one_line_error(spawned: FakeSpawn):
    spawned.fail_when("up")
    with pytest.raises(EseError) as err:
        docker_compose(
            "ese-backend", POSIX_FILE, "up", "-d", compose=Compose(V2), env_file=POSIX_ENV
        )
    assert "v2 compose command `up -d` failed (exit 1)" in str(err.value)
    assert "invoke doctor" in str(err.value)
