"""Thin wrappers over the docker CLI (the kit needs nothing but the `docker` binary)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ese.kit import KitError

# Each kit image carries the digest of its inputs, so an unchanged image is not rebuilt.
KEY_LABEL = "org.ese-offline.key"


def docker_env() -> dict[str, str]:
    # The legacy builder: this engine has no buildx, and it honours a .dockerignore beside the
    # context and a Dockerfile outside it.
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


class Output:
    """Whether the kit shows docker's own output (the CLI) or keeps it for errors (the tasks)."""

    quiet = False


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


def tree_digest(paths: Sequence[Path], extra: Sequence[str] = ()) -> str:
    """sha256 over files (relative name, mode, content) and extra strings: an image's inputs."""
    digest = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(root.parent).as_posix()
            digest.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
            digest.update(path.read_bytes())
    for item in extra:
        digest.update(f"{item}\0".encode())
    return digest.hexdigest()[:32]


def echo(message: str) -> None:
    """Progress line, flushed so it interleaves with docker's output (silent when quiet)."""
    if not Output.quiet:
        print(f"[offline-images] {message}", file=sys.stderr, flush=True)
