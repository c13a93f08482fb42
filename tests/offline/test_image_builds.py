"""The kit's image builds without an engine: output tails, build streams, error conversion."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

from ese.errors import EseError
from ese.host import sdk
from ese.kit import KitError, image_builds
from ese.kit.image_builds import built_id, engine_errors, imported_id
from ese.kit.output import TAIL_LINES, Output, Transcript, action, last_lines


@pytest.fixture
def quiet() -> Iterator[None]:
    Output.quiet = True
    yield
    Output.quiet = False


def _errors() -> Any:
    return importlib.import_module("docker.errors")


def test_a_quiet_transcript_keeps_the_last_lines_whole_and_uncoloured(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = Transcript(keep=3)
    for chunk in ["Step 1\n", "one\ntw", "o\n", "\x1b[91mls: no such file\n\x1b[0m", "last"]:
        transcript.add(chunk)
    assert transcript.tail() == ["two", "ls: no such file", "last"]
    assert transcript.for_error() == "; last lines:\ntwo\nls: no such file\nlast"
    assert capsys.readouterr().out == ""  # nothing shown when quiet


def test_a_shown_transcript_prints_as_it_comes_and_adds_nothing_to_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transcript = Transcript()
    transcript.add("Step 1/2 : FROM x\n")
    transcript.add("partial")
    assert transcript.for_error() == ""
    # The error message that follows starts on its own line.
    assert capsys.readouterr().out == "Step 1/2 : FROM x\npartial\n"


def test_actions_are_one_short_line_and_silent_when_quiet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    action("run --rm img python -c '\nimport json\n'")
    action("x" * 500)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "+ run --rm img python -c ' import json '"
    assert len(lines) == 2 and lines[1].endswith("...") and len(lines[1]) < 200
    Output.quiet = True
    try:
        action("build something")
    finally:
        Output.quiet = False
    assert capsys.readouterr().out == ""


def test_the_build_id_comes_from_aux_or_the_success_line() -> None:
    items: list[dict[str, Any]] = [
        {"stream": "Step 1/1 : FROM x\n"},
        {"aux": {"ID": "sha256:" + "a" * 64}},
        {"stream": "Successfully built aaaaaaaaaaaa\n"},
    ]
    assert built_id(items, Transcript(), "building t") == "sha256:" + "a" * 64
    old_engine = [{"stream": "Step 1/1 : FROM x\n"}, {"stream": "Successfully built 0123abcd\n"}]
    assert built_id(old_engine, Transcript(), "building t") == "0123abcd"


def test_a_build_error_carries_the_tail_when_quiet(quiet: None) -> None:
    items: list[dict[str, Any]] = [
        {"stream": "Step 3/4 : RUN apt-get install nope\n"},
        {"stream": "E: Unable to locate package nope\n"},
        {"error": "The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100"},
        {"aux": {"ID": "sha256:never"}},
    ]
    with pytest.raises(KitError) as err:
        built_id(items, Transcript(), "building ese-offline/x:1")
    text = str(err.value)
    assert text.startswith("building ese-offline/x:1 failed: The command '/bin/sh -c apt-get")
    assert text.endswith(
        "last lines:\nStep 3/4 : RUN apt-get install nope\nE: Unable to locate package nope"
    )


def test_a_build_without_an_id_fails() -> None:
    with pytest.raises(KitError, match="building t produced no image ID"):
        built_id([{"stream": "Step 1/1 : FROM x\n"}], Transcript(), "building t")


def test_the_import_reply_gives_the_id_or_the_engine_error() -> None:
    reply = '{"status":"Importing"}\r\n{"status":"sha256:' + "b" * 64 + '"}\r\n'
    assert imported_id(reply, "importing") == "sha256:" + "b" * 64
    with pytest.raises(KitError, match="importing failed: archive/tar: invalid tar header"):
        imported_id('{"error":"archive/tar: invalid tar header"}\n', "importing")
    with pytest.raises(KitError, match="the engine sent no image ID"):
        imported_id("", "importing")


def _api_error(status: int, explanation: str) -> Exception:
    requests = importlib.import_module("requests")
    response = requests.Response()
    response.status_code = status
    return _errors().APIError("HTTP error", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (
            lambda: _api_error(400, "dockerfile parse error line 2: unknown instruction: FOO"),
            "building t failed: dockerfile parse error line 2: unknown instruction: FOO",
        ),
        (
            lambda: _api_error(500, "Error processing tar file(exit status 1)\nmore"),
            "building t failed: Error processing tar file(exit status 1); the Docker engine's log",
        ),
        (
            lambda: importlib.import_module("requests").ConnectionError("Connection aborted."),
            "building t failed: the Docker engine did not answer (ConnectionError: Connection "
            "aborted.); start it",
        ),
        (
            lambda: PermissionError(13, "Permission denied"),
            "building t failed: PermissionError: [Errno 13] Permission denied",
        ),
        (lambda: _errors().BuildError("no space left", []), "building t failed: no space left"),
    ],
)
def test_sdk_errors_become_one_line_kit_errors(raised: Any, expected: str) -> None:
    with pytest.raises(KitError) as err, engine_errors("building t"):
        raise raised()
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained traceback


def test_a_given_hint_replaces_the_default() -> None:
    with pytest.raises(KitError) as err, engine_errors("building t", "see Dockerfile"):
        raise _api_error(400, "unknown instruction: FOO")
    assert str(err.value) == "building t failed: unknown instruction: FOO; see Dockerfile"


def test_no_engine_is_a_kit_error_with_the_start_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> Any:
        raise EseError("Docker engine not reachable (ConnectionError)", "start it with: dockerd")

    monkeypatch.setattr(sdk, "client", refused)
    image_builds.client.cache_clear()
    try:
        with pytest.raises(KitError) as err:
            image_builds.require_engine()
    finally:
        image_builds.client.cache_clear()  # the next caller connects for real
    assert str(err.value) == "Docker engine not reachable (ConnectionError); start it with: dockerd"


def test_a_transcript_keeps_the_one_tail_length_of_every_build() -> None:
    transcript = Transcript(shown=False)
    transcript.add("".join(f"step {i}\n" for i in range(1, 101)))
    assert TAIL_LINES == 30
    assert transcript.tail() == [f"step {i}" for i in range(71, 101)]
    assert last_lines("".join(f"pip {i}\n\n" for i in range(1, 41))) == [
        f"pip {i}" for i in range(11, 41)
    ]


def test_the_tasks_see_two_lines_per_image_built_and_one_per_image_reused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ese.kit import build as kit_build
    from ese.kit.catalog import BY_NAME

    built: list[str] = []

    def build(spec: image_builds.BuildSpec) -> str:
        built.append(spec.tag)
        return "sha256:x"

    monkeypatch.setattr(kit_build, "_parent_id", lambda image: "sha256:debian")
    monkeypatch.setattr(kit_build, "tree_digest", lambda paths, extra: "key")
    monkeypatch.setattr(kit_build, "image_key", lambda tag: "key" if "redis" in tag else None)
    monkeypatch.setattr(kit_build, "build", build)
    lines: list[str] = []
    images = [BY_NAME["redis"], BY_NAME["haproxy"]]
    opts = kit_build.Options(mirrors=kit_build.debian.Mirrors("http://m", "http://s"))
    kit_build.build_all(images, opts, report=lines.append, quiet=True)
    assert built == ["ese-offline/haproxy:2.6"]
    haproxy = BY_NAME["haproxy"]
    assert lines[:2] == [
        "ese-offline/redis:7 is up to date",
        f"building {haproxy.tag} (stands in for {haproxy.stands_in_for})",
    ]
    assert re.fullmatch(r"built ese-offline/haproxy:2\.6 in \d+s", lines[2]) and len(lines) == 3
    assert capsys.readouterr() == ("", "")  # quiet: the kit's own progress is not shown
    assert Output.quiet is False  # restored for the CLI
