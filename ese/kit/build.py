"""Builds the kit's images in dependency order, skipping those whose inputs did not change."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ese.kit import IMAGES_DIR, REPO_ROOT, KitError, debian, wheelhouse
from ese.kit.catalog import BY_NAME, KitImage
from ese.kit.containers import run_once
from ese.kit.image_builds import BuildSpec, build, image_id, image_key
from ese.kit.inputs import tree_digest
from ese.kit.output import Output, echo, finished, starting

DEFAULT_EXTRAS = ("server", "client", "consumer")
# The fake Grafana's image holds its package and nothing else: it is stdlib only and runs from a
# copy (nothing installed), so a change elsewhere in the repository does not rebuild it.
FAKE_GRAFANA = REPO_ROOT / "services" / "fake_grafana"


@dataclass
class Options:
    """What the CLI asked for."""

    forced: set[str] = field(default_factory=set)  # rebuilt even when up to date
    wheel_dir: Path = REPO_ROOT / "wheelhouse"
    pyproject: Path = REPO_ROOT / "pyproject.toml"
    extras: tuple[str, ...] = DEFAULT_EXTRAS
    mirrors: debian.Mirrors | None = None


@dataclass
class Result:
    """Seconds spent per image, and whether it was built or reused."""

    seconds: dict[str, float] = field(default_factory=dict)
    built: dict[str, bool] = field(default_factory=dict)


def _parent_id(image: KitImage) -> str:
    assert image.parent is not None  # for mypy: only the Debian base has none
    parent = BY_NAME[image.parent]
    found = image_id(parent.tag)
    if found is None:
        raise KitError(f"{parent.tag} is missing; build it first (--only {parent.name})")
    return found


Begin = Callable[[], None]  # says that an image's build starts (once, however often called)


def _unsaid() -> None:
    """A Begin that says nothing (an image built by itself, in a test)."""


def _dockerfile_image(image: KitImage, opts: Options, begin: Begin = _unsaid) -> bool:
    """A stand-in built from images/<recipe>/Dockerfile with that folder as context."""
    folder = IMAGES_DIR / image.folder
    args = {"BASE_IMAGE": BY_NAME[image.parent or ""].tag, **dict(image.args)}
    # The target and arguments are inputs too: two images of one recipe get two keys.
    extra = [_parent_id(image), image.target or "", *(f"{k}={v}" for k, v in image.args)]
    key = tree_digest([folder], extra)
    forced = image.name in opts.forced
    if not forced and image_key(image.tag) == key:
        echo(f"{image.tag} is up to date")
        return False
    begin()
    dockerfile = folder / "Dockerfile"
    build(BuildSpec(image.tag, dockerfile, folder, key, args, image.target, no_cache=forced))
    return True


def _python_image(image: KitImage, opts: Options, begin: Begin = _unsaid) -> bool:
    """The Python base: runtime stage, then wheels for the interpreter found in it."""
    folder = IMAGES_DIR / "python"
    parent_id = _parent_id(image)
    base = {"BASE_IMAGE": BY_NAME["debian"].tag}
    runtime_key = tree_digest([folder], [parent_id, "runtime"])
    if image_id(image.tag) is None:
        begin()  # a first build: its runtime stage alone takes a minute
    with tempfile.TemporaryDirectory(prefix="ese-offline-empty-") as empty:
        # --force refreshes the apt layer here; the full build below then reuses it.
        runtime = f"{image.tag}-runtime"  # tagged, so it is not left dangling in `docker images`
        build(
            BuildSpec(
                runtime,
                folder / "Dockerfile",
                Path(empty),
                runtime_key,
                base,
                target="runtime",
                no_cache=image.name in opts.forced,
            )
        )
    probe = run_once(runtime, "probe-python", command=["python", "-c", wheelhouse.PROBE])
    if probe.code != 0:
        raise KitError(f"asking the Python in {runtime} failed ({probe.code}): {probe.output}")
    target = wheelhouse.Target.from_probe(probe.stdout)
    echo(
        f"image Python {target.env['python_full_version']} ({target.abi}, "
        f"glibc {target.glibc[0]}.{target.glibc[1]})"
    )
    reqs = wheelhouse.requirements(opts.pyproject, opts.extras)
    constraints = opts.pyproject.parent / "constraints.txt"
    wheelhouse.ensure(
        opts.wheel_dir,
        reqs,
        target,
        image.name in opts.forced,
        constraints if constraints.is_file() else None,
    )
    key = tree_digest([folder], [parent_id, *wheelhouse.listing(opts.wheel_dir)])
    if image.name not in opts.forced and image_key(image.tag) == key:
        echo(f"{image.tag} is up to date")
        return False
    begin()
    build(BuildSpec(image.tag, folder / "Dockerfile", opts.wheel_dir, key, base))
    return True


def _grafana_image(image: KitImage, opts: Options, begin: Begin = _unsaid) -> bool:
    """The fake Grafana (services/fake_grafana) on the Python base: its package copied, run as
    `python -m fake_grafana`; the key is the Dockerfile folder and the package's own files."""
    folder = IMAGES_DIR / image.folder
    if not (FAKE_GRAFANA / "server.py").is_file():
        raise KitError(f"{FAKE_GRAFANA / 'server.py'} does not exist (the Grafana fake)")
    # Sources only: bytecode caches come and go with every test run and must not change the key.
    files = sorted(
        p
        for p in FAKE_GRAFANA.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    key = tree_digest([folder, *files], [_parent_id(image)])
    forced = image.name in opts.forced
    if not forced and image_key(image.tag) == key:
        echo(f"{image.tag} is up to date")
        return False
    begin()
    base = {"BASE_IMAGE": BY_NAME["python"].tag}
    with tempfile.TemporaryDirectory(prefix="ese-offline-grafana-") as tmp:
        context = Path(tmp)
        for path in files:
            target = context / "fake_grafana" / path.relative_to(FAKE_GRAFANA)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        build(BuildSpec(image.tag, folder / "Dockerfile", context, key, base, no_cache=forced))
    return True


def missing(images: list[KitImage]) -> list[KitImage]:
    """The images this engine does not have yet (a first build, which takes minutes)."""
    return [image for image in images if image_id(image.tag) is None]


def build_all(
    images: list[KitImage],
    opts: Options,
    report: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> Result:
    """Build (or reuse) each image, parents first; time each one.

    `quiet` keeps docker's output for error messages only. `report` gets a line when an image's
    build starts and one with its time when it ends, or `<tag> is up to date`.
    """
    result = Result()
    mirrors = opts.mirrors or debian.host_mirrors()
    say = report or (lambda _: None)
    Output.quiet = quiet
    try:
        for image in images:
            _one(image, opts, mirrors, result, say)
            if result.built[image.name]:
                say(finished(image.tag, result.seconds[image.name]))
            else:
                say(f"{image.tag} is up to date")
    finally:
        Output.quiet = False
    return result


def _one(
    image: KitImage,
    opts: Options,
    mirrors: debian.Mirrors,
    result: Result,
    say: Callable[[str], None],
) -> None:
    start = time.monotonic()
    echo(f"== {image.name}: {image.tag} (stands in for {image.stands_in_for})")
    begun: list[bool] = []

    def begin() -> None:
        if not begun:
            begun.append(True)
            say(starting(image.tag, f"stands in for {image.stands_in_for}"))

    if image.name == "debian":
        key = debian.key(mirrors)
        built = image.name in opts.forced or image_key(image.tag) != key
        if built:
            begin()
            debian.build(image.tag, mirrors, key)
        else:
            echo(f"{image.tag} is up to date")
    elif image.name == "python":
        built = _python_image(image, opts, begin)
    elif image.name == "grafana":
        built = _grafana_image(image, opts, begin)
    else:
        built = _dockerfile_image(image, opts, begin)
    result.seconds[image.name] = time.monotonic() - start
    result.built[image.name] = built
