"""Which image each service of a run uses, and getting it onto this engine.

For every infrastructure image of topology.toml, the first that applies:
1. an `ESE_*_IMAGE` override in the environment;
2. the official image, when this engine has it or a registry lets it be pulled;
3. when no registry answers, the offline kit's stand-in (ese.kit), built from Debian's packages
   on first use and reused after that.

The images built from this repository (ese-server, ese-client, ese-consumer) are built FROM the
Python base chosen this way. The tasks, Nox and the kit's CLI all ask this module.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ese.errors import EseError
from ese.host import sdk
from ese.kit import KitError
from ese.kit.build import Options, build_all, missing
from ese.kit.catalog import IMAGES, with_parents
from ese.topology import Topology

MODES = ("auto", "official", "offline")
# Images this repository builds; every other topology image comes from a registry or the kit.
BUILT_HERE = ("ese_server", "ese_client", "ese_consumer")
# Images of the local cluster (`invoke cluster.up`): planned only when a run names them in
# `only`, so the stack's tasks never pull or build a Docker engine image.
CLUSTER_ONLY = ("node", "registry")
NO_REGISTRY = "no image registry answered"


@dataclass(frozen=True)
class Choice:
    """The image one topology entry resolves to, and why."""

    key: str
    ref: str
    source: str  # override | local | pulled | offline | build


@dataclass
class Plan:
    """The images of one run."""

    topo: Topology
    choices: dict[str, Choice] = field(default_factory=dict)
    registry: bool | None = None  # None: not asked (everything was present or overridden)

    def env(self) -> dict[str, str]:
        """`ESE_*_IMAGE` -> ref for every image, handed to compose through its environment.

        Explicit values for all of them, so a stale variable in the user's shell never mixes
        into a run that resolved otherwise.
        """
        return {self.topo.images[c.key].env: c.ref for c in self.choices.values()}

    def ref(self, key: str) -> str:
        return self.choices[key].ref

    def lines(self) -> list[str]:
        return [f"{c.key:<13} {c.ref} ({c.source})" for c in self.choices.values()]


def kit_possible(platform: str = sys.platform, which: Callable[[str], Any] = shutil.which) -> str:
    """'' when this machine can build the offline kit, else why not (one clause)."""
    if not platform.startswith("linux"):
        return "the offline kit builds on Linux only"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "the offline kit needs root (debootstrap and docker import)"
    if which("debootstrap") is None:
        return "the offline kit needs debootstrap (apt-get install debootstrap)"
    return ""


# Per engine, what its registry answered in this process: `invoke up` runs three tasks, and
# neither asks again nor says "no registry" three times.
_ANSWERED: dict[str, bool] = {}


def _engine(cli: Any) -> str:
    """The engine's address, or "" for a client that has none (a test's fake)."""
    return str(getattr(getattr(cli, "api", None), "base_url", "") or "")


class Registry:
    """Asks the engine's registry once per run, with a short deadline, and remembers."""

    def __init__(self, cli: Any, dry: bool = False) -> None:
        self.cli = cli
        self.dry = dry  # only ask whether it could be pulled (invoke doctor)
        self.engine = _engine(cli)
        self.answers: bool | None = _ANSWERED.get(self.engine) if self.engine else None
        self.known = self.answers is False  # said already in this process

    def pull(self, ref: str, report: Callable[[str], None]) -> bool:
        """Pull `ref`; False (and no more tries this run) when no registry answers."""
        if self.answers is False:
            return False
        try:
            # The manifest lookup answers in a second when a registry is there, and fails
            # fast (or at our deadline) when none is: no long wait before the kit takes over.
            self.cli.images.get_registry_data(ref)
        except Exception as exc:  # docker.errors.*, requests' timeouts and connection errors
            if _not_found(exc):
                self.answers = True
                return False
            self._remember(False)
            return False
        self._remember(True)
        if self.dry:
            return True
        report(f"pulling {ref}")
        repo, tag = sdk.split_ref(ref)
        try:
            self.cli.images.pull(repo, tag=tag)
        except Exception as exc:
            raise EseError(
                f"pulling {ref} failed: {exc}", "check the registry, then retry"
            ) from None
        return True

    def _remember(self, answers: bool) -> None:
        self.answers = answers
        if self.engine:
            _ANSWERED[self.engine] = answers


def _not_found(exc: Exception) -> bool:
    """The registry answered, but has no such image (a typo in an override, say)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status in (401, 403, 404) or "manifest unknown" in str(exc)


def present(cli: Any, ref: str) -> bool:
    try:
        cli.images.get(ref)
    except Exception:  # docker.errors.ImageNotFound, or an engine hiccup: treat as absent
        return False
    return True


def plan(
    topo: Topology,
    mode: str,
    cli: Any,
    *,
    environ: Mapping[str, str] = os.environ,
    report: Callable[[str], None] = print,
    registry: Registry | None = None,
    build_kit: Callable[[list[str], Callable[[str], None]], dict[str, str]] | None = None,
    why_no_kit: Callable[[], str] = kit_possible,
    only: tuple[str, ...] = (),
    dry: bool = False,
    verbose: bool = False,
) -> Plan:
    """Decide (and fetch or build) the images of a run (`only` these keys when given).

    `dry` decides without pulling or building anything (what `invoke doctor` shows); `verbose`
    shows the whole output of the offline kit's builds.
    """
    if mode not in MODES:
        raise EseError(f"--images {mode!r} is not a choice", f"use {', '.join(MODES)}")
    registry = registry or Registry(cli, dry=dry)
    result = Plan(topo)
    need_kit: list[str] = []
    for key, image in topo.images.items():
        if (only and key not in only) or (not only and key in CLUSTER_ONLY):
            continue
        override = environ.get(image.env, "").strip()
        if override:
            result.choices[key] = Choice(key, override, "override")
        elif key in BUILT_HERE:
            result.choices[key] = Choice(key, image.default, "build")
        elif mode == "offline":
            need_kit.append(key)
        elif present(cli, image.default):
            result.choices[key] = Choice(key, image.default, "local")
        elif registry.pull(image.default, report):
            result.choices[key] = Choice(key, image.default, "to pull" if dry else "pulled")
        elif registry.answers is not False:
            # The registry answered but has no such image: the kit would hide a real mistake.
            raise EseError(f"{image.default} is not in the registry", f"check {image.env}")
        elif mode == "official":
            raise EseError(
                f"{NO_REGISTRY} for {image.default}",
                "run with --images offline (or INVOKE_ESE_IMAGES=offline) to build local "
                "stand-ins from Debian packages",
            )
        else:
            need_kit.append(key)
    result.registry = registry.answers
    if need_kit:
        if dry:
            build_kit = kit_tags
        build_kit = build_kit or functools.partial(build_offline, verbose=verbose)
        # Said once per process: the first task of `invoke up` says it, the others need not.
        say = (lambda _: None) if registry.known else report
        result.choices.update(_from_kit(topo, need_kit, mode, say, build_kit, why_no_kit))
        # Keep the topology's order in the plan, whatever order the choices were made in.
        result.choices = {k: result.choices[k] for k in topo.images if k in result.choices}
    return result


def _from_kit(
    topo: Topology,
    keys: list[str],
    mode: str,
    report: Callable[[str], None],
    build_kit: Callable[[list[str], Callable[[str], None]], dict[str, str]],
    why_no_kit: Callable[[], str],
) -> dict[str, Choice]:
    refs = [topo.images[k].default for k in keys]
    reason = why_no_kit()
    if reason:
        raise EseError(
            f"{NO_REGISTRY} for {', '.join(refs)}, and {reason}",
            "connect this engine to a registry, or `docker load` the images from a machine "
            "that has them, or set the ESE_*_IMAGE variables to images you have",
        )
    if mode != "offline" and build_kit is not kit_tags:
        report(f"{NO_REGISTRY}: using local images built from Debian packages instead")
    tags = build_kit([topo.images[k].env for k in keys], report)
    return {k: Choice(k, tags[topo.images[k].env], "offline") for k in keys}


def kit_tags(envs: list[str], report: Callable[[str], None]) -> dict[str, str]:
    """The kit's tags for these `ESE_*_IMAGE` variables, building nothing."""
    by_env = {i.env: i.tag for i in IMAGES if i.env}
    return {e: by_env.get(e, "(no offline stand-in)") for e in envs}


def build_offline(
    envs: list[str], report: Callable[[str], None], verbose: bool = False
) -> dict[str, str]:
    """Build (or reuse) the kit's stand-ins for these `ESE_*_IMAGE` variables; env -> tag.

    A line when each build starts and one with its time when it ends; the engine's output only
    with `verbose` (its last lines are in the error when a build fails).
    """
    by_env = {i.env: i for i in IMAGES if i.env}
    unknown = [e for e in envs if e not in by_env]
    if unknown:
        raise EseError(
            f"the offline kit has no stand-in for {', '.join(unknown)}",
            "set those variables to images you have",
        )
    images = with_parents([by_env[e].name for e in envs])
    try:
        stale = missing(images)
        if stale:
            report(
                f"building {len(stale)} local image(s) from Debian packages: this takes a few "
                "minutes, once; later runs reuse them"
            )

        # Two lines per image built; a warm run says only what it had to rebuild.
        def rebuilt(line: str) -> None:
            if "up to date" not in line:
                report(line)

        build_all(images, Options(), report=report if stale else rebuilt, quiet=not verbose)
    except KitError as exc:
        raise EseError(
            f"building the offline images failed: {exc}", "see the lines above"
        ) from None
    return {e: by_env[e].tag for e in envs}
