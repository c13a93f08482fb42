"""Thin wrappers over the docker CLI (the kit needs nothing but the `docker` binary)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ese.kit import KitError
from ese.kit.inputs import KEY_LABEL
from ese.kit.output import Output


def docker_env() -> dict[str, str]:
    # The legacy builder: this engine has no buildx, and it honours a .dockerignore beside the
    # context and a Dockerfile outside it.
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


def docker(
    *args: str, capture: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`; echo it unless the output is captured or the kit runs quietly."""
    keep = capture or Output.quiet
    if not keep:
        print("+ docker " + " ".join(args), flush=True)
    proc = subprocess.run(
        ["docker", *args],
        env=docker_env(),
        capture_output=keep,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        lines = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()
        detail = "\n".join(lines[-15:] if Output.quiet else lines[-1:])
        raise KitError(f"`docker {' '.join(args[:3])} ...` failed ({proc.returncode}) {detail}")
    return proc


def require_engine() -> None:
    """Fail with a hint when the docker CLI or engine is not usable."""
    if shutil.which("docker") is None:
        raise KitError("docker CLI not found; install docker.io (apt-get install docker.io)")
    proc = docker("info", "--format", "{{.ServerVersion}}", capture=True, check=False)
    if proc.returncode != 0:
        raise KitError(
            "Docker engine not reachable; start it (e.g. `dockerd > /tmp/dockerd.log 2>&1 &`)"
        )


def image_id(ref: str) -> str | None:
    """The image's ID, or None when the engine has no such image."""
    proc = docker("image", "inspect", "--format", "{{.Id}}", ref, capture=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_key(ref: str) -> str | None:
    """The kit key label of an image, or None when it is absent."""
    fmt = '{{index .Config.Labels "' + KEY_LABEL + '"}}'
    proc = docker("image", "inspect", "--format", fmt, ref, capture=True, check=False)
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and value and value != "<no value>" else None


def build(
    tag: str,
    dockerfile: Path,
    context: Path,
    key: str,
    build_args: dict[str, str],
    target: str | None = None,
    no_cache: bool = False,
) -> str:
    """`docker build` with the key label; returns the image ID."""
    args = ["build", "--label", f"{KEY_LABEL}={key}", "-f", str(dockerfile)]
    if no_cache:
        args.append("--no-cache")
    if tag:
        args += ["-t", tag]
    if target:
        args += ["--target", target]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    previous = image_id(tag) if tag else None
    with tempfile.TemporaryDirectory(prefix="ese-offline-") as tmp:
        iidfile = Path(tmp) / "iid"
        docker(*args, "--iidfile", str(iidfile), str(context))
        if not iidfile.is_file():
            raise KitError(f"build of {tag or dockerfile} produced no image ID")
        new = iidfile.read_text().strip()
    drop_replaced(previous, new)
    return new


def drop_replaced(previous: str | None, new: str | None) -> None:
    """Remove the image a rebuild untagged, so repeated kit runs do not fill the disk."""
    if previous and new and previous != new:
        # Fails harmlessly while a container still uses it.
        docker("rmi", previous, capture=True, check=False)
