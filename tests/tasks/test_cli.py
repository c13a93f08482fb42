"""The tasks through Invoke's real parser, config and env loading (not by calling the functions).

Calling a task function directly skips what broke before: Invoke's parser (a positional
argument is always required) and its env loading (INVOKE_ESE_* values are cast to the type
of the config default before any task runs). These tests go through `invoke.Program`, and a
few run the real `invoke` command in a subprocess.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from invoke import Argument, Collection, Program, Task
from invoke.parser import Parser

import tasks
from ese import task_defaults
from ese.flows import backend, cluster, consumer, frontend, logs, shared, swarm, teardown
from ese.paths import REPO_ROOT

# One sample value per string flag, chosen so that a wrong conversion shows.
SAMPLES = {
    "clients": "3",
    "be-server": "http://10.0.0.2:8100",
    "delay-ms": "120",
    "limit": "77",
    "server-url": "http://10.0.0.9:2003/events",
    "port": "8600",
    "service": "grafana-server",
    "tail": "12",
    "url": "http://127.0.0.1:3999",
    "user": "boss",
    "password": "pw",
    "dashboard": "d.json",
    "shell": "fish",
    "images": "offline",
    "replicas": "3",
    "registry": "127.0.0.1:5000",
    "ingest": "4",
    "nodes": "2",
    "managers": "1",
    "node": "ese-node-2",
}

# The stack flows each task calls, recorded instead of run: flow name -> (module, function).
# A new collection (`cluster.*`) adds its flows here, its tasks to TASK_FLOWS and its string
# flags to SAMPLES; every test below then covers it.
FLOWS: dict[str, tuple[Any, str]] = {
    "backend": (backend, "backend"),
    "frontend": (frontend, "frontend"),
    "consumer": (consumer, "consumer"),
    "down": (teardown, "down"),
    "logs": (logs, "logs"),
    "swarm.up": (swarm, "up"),
    "swarm.scale": (swarm, "scale"),
    "swarm.down": (swarm, "down"),
    "cluster.up": (cluster, "up"),
    "cluster.kill": (cluster, "kill"),
    "cluster.start": (cluster, "start"),
    "cluster.down": (cluster, "down"),
}
# Task -> the flows it runs (all of them recorded, so running the task touches no engine).
TASK_FLOWS = {
    "backend": {"backend"},
    "frontend": {"frontend"},
    "consumer": {"consumer"},
    "up": {"backend", "frontend", "consumer"},
    "down": {"down"},
    "logs": {"logs"},
    "swarm.up": {"swarm.up"},
    "swarm.scale": {"swarm.scale"},
    "swarm.down": {"swarm.down"},
    "cluster.up": {"cluster.up"},
    "cluster.kill": {"cluster.kill"},
    "cluster.start": {"cluster.start"},
    "cluster.down": {"cluster.down"},
}
# Tasks that read or write files or ask running services instead: parsed, not run, here.
NOT_RUN = {"render", "webclient", "status", "grafana", "env", "doctor"}


def fresh() -> Collection:
    """A copy of the namespace: Invoke pops each task's help text when it builds arguments."""
    return copy.deepcopy(tasks.ns)


def every_task() -> dict[str, Task]:
    """Every task by the name it is run with, the collections' too (`swarm.up`)."""
    found: dict[str, Task] = {}

    def walk(collection: Collection, prefix: str) -> None:
        for name, task in collection.tasks.items():
            found[prefix + name] = task
        for name, sub in collection.collections.items():
            walk(sub, f"{prefix}{name}.")

    walk(fresh(), "")
    return found


def name_of(arg: Argument) -> str:
    """The key `parse` gives the argument's value under: Invoke types `Argument.name` as
    Optional, yet it is `attr_name or names[0]`, never None."""
    assert arg.name is not None
    return arg.name


def every_flag() -> list[tuple[str, str, bool]]:
    return [
        (name, name_of(arg).replace("_", "-"), arg.kind is bool)
        for name, task in every_task().items()
        for arg in task.get_arguments()
    ]


def parse(*argv: str) -> dict[str, Any]:
    result = Parser(contexts=fresh().to_contexts()).parse_argv(list(argv))
    return {a.name: a.value for a in result[0].args.values()}


def test_every_task_is_run_here_or_listed_as_not():
    assert "swarm.up" in every_task()
    assert set(every_task()) == set(TASK_FLOWS) | NOT_RUN
    assert set().union(*TASK_FLOWS.values()) == set(FLOWS)


@pytest.mark.parametrize("name", sorted(every_task()))
def test_every_task_parses_without_arguments(name):
    parse(name)  # a required (positional) argument would raise ParseError here


@pytest.mark.parametrize(("name", "flag", "is_bool"), every_flag())
def test_every_flag_parses_long_and_short(name, flag, is_bool):
    task = every_task()[name]
    arg = next(a for a in task.get_arguments() if name_of(a).replace("_", "-") == flag)
    value = [] if is_bool else [SAMPLES[flag]]
    expected = True if is_bool else SAMPLES[flag]
    assert parse(name, f"--{flag}", *value)[name_of(arg)] == expected
    short = [n for n in arg.names if len(n) == 1]
    if short:
        assert parse(name, f"-{short[0]}", *value)[name_of(arg)] == expected


def run_program(*argv: str) -> int:
    """`invoke <argv>` in-process through Invoke's Program: parser, config files, env vars."""
    try:
        Program(namespace=fresh(), name="invoke", binary="invoke").run(["invoke", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def recorded(monkeypatch) -> dict[str, dict[str, Any]]:
    """Replace the stack flows the tasks call with recorders of their arguments."""
    calls: dict[str, dict[str, Any]] = {}

    def recorder(name: str):
        def record(*args: Any, **kwargs: Any) -> None:
            calls[name] = kwargs

        return record

    for name, (module, function) in FLOWS.items():
        monkeypatch.setattr(module, function, recorder(name))
    return calls


@pytest.mark.parametrize("name", sorted(TASK_FLOWS))
def test_every_task_reaches_its_flows_with_the_defaults(recorded, name):
    assert run_program(name) == 0
    assert set(recorded) == TASK_FLOWS[name]


def test_logs_without_a_service_shows_the_backend(recorded):
    assert run_program("logs") == 0
    assert recorded["logs"] == {"service": None, "follow": False, "tail": 200}


def test_logs_flags_reach_the_task(recorded):
    assert run_program("logs", "-s", "grafana-server", "--follow", "--tail", "5") == 0
    assert recorded["logs"] == {"service": "grafana-server", "follow": True, "tail": 5}


def test_frontend_flags_are_converted(recorded):
    argv = ["frontend", "--clients", "3", "--delay-ms", "120", "--limit", "77", "--build"]
    assert run_program(*argv) == 0
    got = recorded["frontend"]
    assert (got["clients"], got["delay_ms"], got["limit"], got["build"]) == (3, 120, 77, True)


def test_consumer_flags_reach_the_task(recorded):
    assert run_program("consumer", "--remote", "--port", "8600") == 0
    assert recorded["consumer"] == {
        "remote": True,
        "server_url": None,
        "port": 8600,
        "build": False,
        "images_mode": "auto",
        "verbose": False,
    }


def test_images_mode_reaches_every_flow_from_flag_or_environment(recorded, monkeypatch):
    assert run_program("up", "--images", "offline") == 0
    assert [recorded[f]["images_mode"] for f in ("backend", "frontend", "consumer")] == [
        "offline"
    ] * 3
    monkeypatch.setenv("INVOKE_ESE_IMAGES", "official")
    assert run_program("backend") == 0
    assert recorded["backend"]["images_mode"] == "official"


def test_verbose_reaches_every_flow_from_flag_or_environment(recorded, monkeypatch):
    assert run_program("up") == 0
    assert [recorded[f]["verbose"] for f in ("backend", "frontend", "consumer")] == [False] * 3
    assert run_program("up", "--verbose") == 0
    assert [recorded[f]["verbose"] for f in ("backend", "frontend", "consumer")] == [True] * 3
    monkeypatch.setenv("INVOKE_ESE_VERBOSE", "true")
    assert run_program("frontend") == 0
    assert recorded["frontend"]["verbose"] is True
    # A Boolean default would turn any non-empty string, "false" too, into True.
    monkeypatch.setenv("INVOKE_ESE_VERBOSE", "false")
    assert run_program("backend") == 0
    assert recorded["backend"]["verbose"] is False


def test_env_overrides_through_invokes_env_loading(recorded, monkeypatch):
    monkeypatch.setenv("INVOKE_ESE_CLIENTS", "8")
    monkeypatch.setenv("INVOKE_ESE_HEALTH_TIMEOUT", "300.5")
    assert run_program("frontend") == 0
    assert recorded["frontend"]["clients"] == 8
    assert run_program("backend") == 0
    assert recorded["backend"]["timeout"] == 300.5


@pytest.mark.parametrize(("value", "auth"), [("false", False), ("0", False), ("true", True)])
def test_invoke_ese_auth_is_read_as_true_or_false_not_as_any_string(
    recorded, monkeypatch, value, auth
):
    # A bool config default would make Invoke turn any non-empty value, "false" too, into True.
    monkeypatch.setenv("INVOKE_ESE_AUTH", value)
    assert run_program("backend") == 0
    assert recorded["backend"]["auth"] is auth


def test_swarm_flags_reach_the_flows(recorded):
    argv = ["swarm.up", "--build", "--replicas", "3", "--registry", "127.0.0.1:5000"]
    assert run_program(*argv, "--images", "offline") == 0
    got = recorded["swarm.up"]
    assert (got["build"], got["replicas"], got["registry"], got["images_mode"]) == (
        True,
        "3",
        "127.0.0.1:5000",
        "offline",
    )
    defaults = task_defaults.defaults()
    timeout, lines = float(defaults["health_timeout"]), int(defaults["log_lines"])
    assert got["timeout"] == timeout
    assert run_program("swarm.scale", "--ingest", "4") == 0
    assert recorded["swarm.scale"] == {"ingest": "4", "timeout": timeout, "log_lines": lines}
    assert run_program("swarm.down", "--volumes", "--leave") == 0
    assert recorded["swarm.down"] == {"volumes": True, "leave": True, "timeout": timeout}


def test_swarm_tasks_take_the_environment_through_invokes_env_loading(recorded, monkeypatch):
    monkeypatch.setenv("INVOKE_ESE_HEALTH_TIMEOUT", "300.5")
    monkeypatch.setenv("INVOKE_ESE_IMAGES", "official")
    assert run_program("swarm.up") == 0
    assert recorded["swarm.up"]["images_mode"] == "official"
    assert recorded["swarm.up"]["timeout"] == 300.5
    assert run_program("swarm.down") == 0
    assert recorded["swarm.down"]["timeout"] == 300.5


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["swarm.scale"], "--ingest is required; e.g. invoke swarm.scale --ingest 3"),
        (["swarm.scale", "--ingest", "0"], "--ingest must be a whole number between 1 and 8"),
        (["swarm.scale", "-i", "x"], "--ingest must be a whole number between 1 and 8, got 'x'"),
        (["swarm.up", "--replicas", "9"], "--replicas must be a whole number between 1 and 8"),
        (["swarm.up", "--registry", "localhost"], "--registry 'localhost' is not HOST:PORT"),
    ],
)
def test_a_bad_swarm_value_is_one_line_before_any_engine_call(monkeypatch, capsys, argv, expected):
    def no_engine() -> None:
        raise AssertionError("the engine was asked before the value was checked")

    monkeypatch.setattr(shared, "docker", no_engine)
    monkeypatch.setattr(shared, "render_if_stale", no_engine)
    assert run_program(*argv) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("var", "value", "argv", "expected"),
    [
        ("INVOKE_ESE_CLIENTS", "x", ["frontend"], "INVOKE_ESE_CLIENTS must be a whole number"),
        ("INVOKE_ESE_CLIENTS", "-3", ["frontend"], "INVOKE_ESE_CLIENTS must be a whole number"),
        ("INVOKE_ESE_HEALTH_TIMEOUT", "soon", ["backend"], "INVOKE_ESE_HEALTH_TIMEOUT must be"),
        ("INVOKE_ESE_HEALTH_TIMEOUT", "nan", ["backend"], "INVOKE_ESE_HEALTH_TIMEOUT must be"),
        ("INVOKE_ESE_CONSUMER_PORT", "99999", ["consumer"], "INVOKE_ESE_CONSUMER_PORT must be"),
        ("INVOKE_ESE_LOG_TAIL", "lots", ["logs"], "INVOKE_ESE_LOG_TAIL must be a whole number"),
        ("INVOKE_ESE_IMAGES", "local", ["up"], "INVOKE_ESE_IMAGES must be one of auto, official"),
        ("INVOKE_ESE_VERBOSE", "loud", ["up"], "INVOKE_ESE_VERBOSE must be true or false"),
        ("INVOKE_ESE_IMAGES", "x", ["swarm.up"], "INVOKE_ESE_IMAGES must be one of auto, official"),
        ("INVOKE_ESE_HEALTH_TIMEOUT", "soon", ["swarm.down"], "INVOKE_ESE_HEALTH_TIMEOUT must"),
        ("INVOKE_ESE_LOG_LINES", "many", ["swarm.scale"], "INVOKE_ESE_LOG_LINES must be"),
    ],
)
def test_a_bad_env_value_is_one_line_naming_the_variable(
    recorded, monkeypatch, capsys, var, value, argv, expected
):
    monkeypatch.setenv(var, value)
    assert run_program(*argv) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert f"e.g. {var}=" in err
    assert not recorded


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["frontend", "--clients", "-3"], "--clients must be a whole number between 0 and 1000"),
        (["frontend", "--clients", "x"], "e.g. --clients 4"),
        (["consumer", "--port", "0"], "--port must be a whole number between 1 and 65535"),
        (["consumer", "--port", "65536"], "--port must be a whole number between 1 and 65535"),
        (["logs", "--tail", "ten"], "--tail must be a whole number at least 0, got 'ten'"),
        (["frontend", "--delay-ms", "1.5"], "--delay-ms must be a whole number"),
        (["backend", "--images", "registry"], "--images must be one of auto, official, offline"),
        (["swarm.up", "--images", "local"], "--images must be one of auto, official, offline"),
    ],
)
def test_a_bad_flag_value_names_the_flag(recorded, capsys, argv, expected):
    assert run_program(*argv) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert "consumer_port" not in err and "log_tail" not in err


# -- the real `invoke` command -----------------------------------------------------------------


def invoke_cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *argv],
        cwd=REPO_ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invoke_list_shows_every_task():
    proc = invoke_cli("--list")
    assert proc.returncode == 0, proc.stderr
    listed = {m[1] for m in re.finditer(r"^  (\S+)", proc.stdout, re.MULTILINE)}
    assert listed == set(every_task())


def test_invoke_logs_help_documents_the_service_flag():
    proc = invoke_cli("logs", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "-s STRING, --service=STRING" in proc.stdout
    assert "[--options]" in proc.stdout and "<service>" not in proc.stdout


def test_invoke_env_survives_bad_numbers_it_does_not_use():
    # Before: Invoke cast these to the int default's type -> ValueError traceback everywhere.
    proc = invoke_cli(
        "env", "--shell", "bash", INVOKE_ESE_CLIENTS="x", INVOKE_ESE_HEALTH_TIMEOUT="300.5"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'export REACT_APP_BE_SERVER="http://host.docker.internal:8100"\n'


def test_invoke_env_rejects_a_bad_be_server_from_the_environment():
    proc = invoke_cli("env", "--shell", "bash", INVOKE_ESE_BE_SERVER="nonsense")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "INVOKE_ESE_BE_SERVER 'nonsense' is not an http(s) URL; "
        "e.g. INVOKE_ESE_BE_SERVER=http://host:8100"
    )
