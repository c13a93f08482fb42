"""The kit's image builds against the real engine: a tiny import, builds and containers."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.kit import KitError
from ese.kit.catalog import BY_NAME
from ese.kit.containers import exec_in, name_for, run_once, running, until
from ese.kit.image_builds import BuildSpec, build, image_id, image_key, import_rootfs
from ese.kit.inputs import KEY_LABEL
from ese.kit.output import Output

pytestmark = pytest.mark.docker


@pytest.fixture
def scratch(docker_cli: Any, tmp_path: Path) -> Iterator[str]:
    """A one-file image imported through the kit (no shell in it: nothing to run)."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "marker").write_text("imported\n")
    tag = f"ese-kit-test/scratch-{uuid.uuid4().hex[:8]}:1"
    changes = ["ENV LANG=C.UTF-8", 'CMD ["/none"]', f"LABEL {KEY_LABEL}=scratch-key"]
    new = import_rootfs(rootfs, tag, changes)
    try:
        yield tag
    finally:
        docker_cli.images.remove(new, force=True)


@pytest.fixture
def quiet_tag(docker_cli: Any) -> Iterator[str]:
    """A fresh tag for a test build, with the kit quiet (as the tasks run it); the image of
    the tag is removed afterwards."""
    tag = f"ese-kit-test/built-{uuid.uuid4().hex[:8]}:1"
    Output.quiet = True
    try:
        yield tag
    finally:
        Output.quiet = False
        if image_id(tag):
            docker_cli.images.remove(tag, force=True)


def _files(docker_cli: Any, image: str, path: str) -> set[str]:
    # A created (never started) container serves its files: the image needs no shell.
    container = docker_cli.containers.create(image, command=["/none"])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            return {m.name for m in tar.getmembers() if m.isfile()}
    finally:
        container.remove(force=True)


def test_the_import_sets_the_changes(docker_cli: Any, scratch: str) -> None:
    config = docker_cli.images.get(scratch).attrs["Config"]
    assert "LANG=C.UTF-8" in config["Env"] and config["Cmd"] == ["/none"]
    assert image_key(scratch) == "scratch-key"


def test_a_build_is_labelled_sees_its_context_and_drops_the_image_it_replaced(
    docker_cli: Any, scratch: str, tmp_path: Path, quiet_tag: str
) -> None:
    # As the Python base: a Dockerfile outside the context, which `COPY .` copies whole.
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    dockerfile = recipe / "Dockerfile"
    dockerfile.write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /ctx/\n")
    context = tmp_path / "context"
    context.mkdir()
    (context / "wheel.whl").write_text("w")
    (context / "secret.txt").write_text("s")
    (context / ".dockerignore").write_text("secret.txt\n")
    tag, base = quiet_tag, {"BASE_IMAGE": scratch}
    first = build(BuildSpec(tag, dockerfile, context, "key-1", base))
    assert image_id(tag) == first and image_key(tag) == "key-1"
    # Neither the Dockerfile sent along nor the ignored file lands in the image.
    assert _files(docker_cli, tag, "/ctx") == {"ctx/wheel.whl", "ctx/.dockerignore"}
    second = build(BuildSpec(tag, dockerfile, context, "key-2", base))
    assert second != first and image_key(tag) == "key-2"
    assert image_id(first) is None  # untagged by the rebuild, then removed


def test_a_target_build_leaves_no_untagged_stage_behind(
    docker_cli: Any, scratch: str, tmp_path: Path, quiet_tag: str
) -> None:
    """As the Prometheus tools' recipe: the classic builder also builds the stage before the
    target, and the kit removes that image, which no tag keeps; older loose images stay."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {scratch} AS common\nENV COMMON=1\n"
        "FROM common AS first\nENV FIRST=1\n"
        "FROM common AS second\nENV SECOND=1\n"
    )
    loose = {"dangling": True, "label": KEY_LABEL}
    before = {i.id for i in docker_cli.images.list(filters=loose)}
    build(BuildSpec(quiet_tag, tmp_path / "Dockerfile", tmp_path, "k-staged", target="second"))
    env = docker_cli.images.get(quiet_tag).attrs["Config"]["Env"]
    assert "SECOND=1" in env and "FIRST=1" not in env
    after = {i.id for i in docker_cli.images.list(filters=loose)}
    assert after <= before, "the stage `first` was left as an untagged image"


def test_a_failed_build_is_one_kit_error_with_the_tail(
    scratch: str, tmp_path: Path, quiet_tag: str
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {scratch}\nCOPY missing.txt /\n")
    tag = quiet_tag
    with pytest.raises(KitError) as err:
        build(BuildSpec(tag, tmp_path / "Dockerfile", tmp_path, "k"))
    first, _, tail = str(err.value).partition("\n")
    assert first.startswith(f"building {tag} failed: ") and "missing.txt" in first
    assert "Step 2/3 : COPY missing.txt /" in tail
    assert image_id(tag) is None


def test_an_import_with_a_bad_change_says_why(tmp_path: Path) -> None:
    with pytest.raises(KitError) as err:
        import_rootfs(tmp_path, "ese-kit-test/never:1", ["FROBNICATE x"])
    assert str(err.value) == (
        "importing the rootfs as ese-kit-test/never:1 failed: "
        "frobnicate is not a valid change command"
    )


@pytest.fixture
def base(docker_cli: Any) -> str:
    tag = BY_NAME["debian"].tag
    if image_id(tag) is None:
        pytest.skip(f"{tag} not built here (python scripts/offline_images.py --only debian)")
    return tag


def test_a_one_off_container_gives_its_code_and_streams(base: str) -> None:
    ran = run_once(base, "test-once", command=["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (ran.code, ran.stdout, ran.stderr, ran.output) == (3, "out\n", "err\n", "out\nerr")


def test_a_running_container_and_its_volume_go_away(docker_cli: Any, base: str) -> None:
    volume = name_for("test-running")
    with running(base, "test-running", command=["sleep", "60"], volumes=[f"{volume}:/data"]) as box:
        assert until(box, ["test", "-d", "/data"])
        assert exec_in(box, ["sh", "-c", "echo hi; exit 4"]) == (4, "hi")
    assert not docker_cli.containers.list(all=True, filters={"name": box.name})
    assert volume not in {v.name for v in docker_cli.volumes.list()}


def test_a_probe_stops_waiting_when_the_container_stops(base: str) -> None:
    with running(base, "test-stops", command=["true"]) as box:
        start = time.monotonic()
        assert until(box, ["true"]) is False
        assert time.monotonic() - start < 10  # not the whole WAIT_SECONDS
