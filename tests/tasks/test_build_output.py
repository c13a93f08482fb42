"""What builds and compose show: a line when a build starts and one when it ends, the whole
output with --verbose, and the last lines of a failure whatever the setting.

The commands are real programs (this interpreter printing numbered lines); compose and the
Docker SDK are the recorded fakes of tests/tasks/conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ese.engine import commands, compose, standalone_containers
from ese.engine.compose import V1, Compose
from ese.errors import EseError
from ese.kit.output import TAIL_LINES
from tests.tasks.conftest import FakeDocker, FakeSpawn
from tests.tooling import missing

# 100 numbered lines, the odd ones on stderr, then the exit code given as the argument.
CHATTY = (
    "import sys; [print(f'line {i}', file=sys.stderr if i % 2 else sys.stdout, flush=True) "
    "for i in range(1, 101)]; sys.exit(int(sys.argv[1]))"
)
FILE = Path("/srv/ese/docker/ese-client.compose.yml")
ENV_FILE = Path("/srv/ese/docker/.env")
BUILT = re.compile(r"built (\S+) in \d+s")


def chatty(code: int) -> list[str]:
    return [sys.executable, "-c", CHATTY, str(code)]


def test_hidden_output_of_a_success_is_one_line_the_command(capfd):
    result = commands.run(chatty(0), show_output=False)
    out, err = capfd.readouterr()
    assert out == f"> {commands.shown(chatty(0))}\n" and err == ""
    # Kept, in the order the program wrote it, stderr and stdout merged.
    assert result.stdout.splitlines() == [f"line {i}" for i in range(1, 101)]


def test_hidden_output_of_a_failure_shows_its_last_lines(capfd):
    with pytest.raises(EseError, match="chatty failed \\(exit 3\\)"):
        commands.run(chatty(3), show_output=False, what="chatty")
    lines = capfd.readouterr().out.splitlines()
    assert lines[1] == f"--- last {TAIL_LINES} lines of the output of chatty ---"
    assert lines[2:] == [f"line {i}" for i in range(101 - TAIL_LINES, 101)]


def test_a_failure_unchecked_still_shows_its_last_lines(capfd):
    assert commands.run(chatty(1), show_output=False, check=False).returncode == 1
    assert capfd.readouterr().out.splitlines()[-1] == "line 100"


def test_shown_output_reaches_the_terminal_whole(capfd):
    with pytest.raises(EseError):
        commands.run(chatty(2))
    out, err = capfd.readouterr()
    assert "line 2\n" in out and "line 1\n" in err  # as the program wrote it, nothing kept
    assert "--- last" not in out


def compose_build(verbose: bool) -> None:
    compose.build(
        "ese-frontend",
        FILE,
        "ese-client",
        "ese-client:local",
        base="py:base",
        env={"ESE_PYTHON_BASE_IMAGE": "py:base"},
        env_file=ENV_FILE,
        verbose=verbose,
        compose=Compose(V1),
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_a_compose_build_says_what_it_builds_runs_one_command_and_times_it(
    spawned: FakeSpawn, capsys, verbose
):
    compose_build(verbose)
    argv = Compose(V1).argv("ese-frontend", FILE, ["build", "ese-client"], ENV_FILE)
    assert spawned.commands() == [argv]
    assert spawned.hidden == [not verbose]  # the builder's steps only with --verbose
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["building ese-client:local (base py:base)", f"> {commands.shown(argv)}"]
    built = BUILT.fullmatch(lines[2])
    assert built and built.group(1) == "ese-client:local"
    assert len(lines) == 3


def test_a_failed_compose_build_shows_its_last_lines_and_no_end_line(spawned: FakeSpawn, capsys):
    spawned.fail_when("build")
    spawned.stdout = "".join(f"Step {i}/40 : RUN something\n" for i in range(1, 41))
    with pytest.raises(EseError, match="v1 compose command `build ese-client` failed"):
        compose_build(verbose=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == f"--- last {TAIL_LINES} lines of the output of v1 compose command " + (
        "`build ese-client` ---"
    )
    assert lines[3:] == [f"Step {i}/40 : RUN something" for i in range(11, 41)]
    assert not any(BUILT.fullmatch(line) for line in lines)


@pytest.mark.parametrize("verbose", [False, True])
def test_the_consumer_build_is_two_lines_or_the_whole_output(capsys, verbose):
    cli = FakeDocker()
    standalone_containers.ensure_image(cli, "ese-consumer:local", "py:base", False, verbose=verbose)
    lines = capsys.readouterr().out.splitlines()
    steps = ["Step 1/2 : FROM base", "Step 2/2 : RUN pip install ."]
    assert lines[0] == "building ese-consumer:local (base py:base)"
    assert lines[1:-1] == (steps if verbose else [])
    assert BUILT.fullmatch(lines[-1])
    assert "ese-consumer:local" in cli.images.present


@pytest.mark.parametrize("verbose", [False, True])
def test_a_failed_consumer_build_shows_its_last_lines_whatever_the_setting(capsys, verbose):
    cli = FakeDocker()
    cli.api.failing.add("ese-consumer:local")
    cli.api.output = [f"Collecting package{i}" for i in range(1, 51)]
    with pytest.raises(EseError) as err:
        standalone_containers.ensure_image(
            cli, "ese-consumer:local", "py:base", True, verbose=verbose
        )
    assert str(err.value).startswith(
        "building ese-consumer:local failed: The command '/bin/sh -c pip install .' returned"
    )
    assert "--verbose" in str(err.value)  # the hint: how to see all of it
    lines = capsys.readouterr().out.splitlines()
    last = [f"Collecting package{i}" for i in range(51 - TAIL_LINES, 51)]
    assert lines[-TAIL_LINES:] == last  # printed as it came, or as the tail when it was hidden
    assert not any(BUILT.fullmatch(line) for line in lines)
    if not verbose:
        assert lines[1] == f"--- last {TAIL_LINES} lines of the output of building " + (
            "ese-consumer:local ---"
        )
        assert len(lines) == 2 + TAIL_LINES


# -- a real build: FROM scratch needs no registry and no base image ---------------------------


@pytest.fixture
def tiny_project(tmp_path: Path, docker_cli) -> Iterator[tuple[Path, str]]:
    """A compose file whose one service builds an image from scratch; the image is removed."""
    try:
        compose.current()
    except EseError as exc:
        missing("Docker Compose", str(exc))
    tag = f"ese-build-output-test:{uuid.uuid4().hex[:8]}"
    (tmp_path / "hello.txt").write_text("hello\n")
    spec = {"services": {"tiny": {"image": tag, "build": {"context": str(tmp_path)}}}}
    (tmp_path / "compose.yml").write_text(json.dumps(spec))  # JSON is YAML
    (tmp_path / ".env").write_text("")
    try:
        yield tmp_path, tag
    finally:
        with contextlib.suppress(Exception):
            docker_cli.images.remove(tag, force=True)


def build_tiny(project: Path, tag: str, copied: str, verbose: bool) -> None:
    """Build the tiny image; its last step copies `copied` (a missing file fails it)."""
    (project / "Dockerfile").write_text(f"FROM scratch\nCOPY hello.txt /\nCOPY {copied} /x\n")
    compose.build(
        f"ese-test-{uuid.uuid4().hex[:6]}",
        project / "compose.yml",
        "tiny",
        tag,
        base="scratch",
        env_file=project / ".env",
        verbose=verbose,
    )


@pytest.mark.docker
@pytest.mark.parametrize("verbose", [False, True])
def test_a_real_build_is_two_lines_and_the_command_or_the_whole_output(
    tiny_project, capfd, verbose
):
    project, tag = tiny_project
    build_tiny(project, tag, "hello.txt", verbose)
    out = capfd.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"building {tag} (base scratch)" and lines[1].startswith("> ")
    assert BUILT.fullmatch(lines[-1])
    assert ("COPY hello.txt" in out) is verbose  # a step, in either builder's words
    if not verbose:
        assert len(lines) == 3


@pytest.mark.docker
@pytest.mark.parametrize("verbose", [False, True])
def test_a_real_failed_build_shows_its_cause_whatever_the_setting(tiny_project, capfd, verbose):
    project, tag = tiny_project
    with pytest.raises(EseError, match="compose command `build tiny` failed"):
        build_tiny(project, tag, "missing.txt", verbose)
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert "missing.txt" in out  # the builder's own words: COPY failed ... missing.txt
    assert ("--- last " in out) is not verbose  # when it was shown, it is on screen already
    assert not BUILT.search(out)
