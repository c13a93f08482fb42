"""The kit's image builds through the Docker SDK: builds, the rootfs import, image lookups.

The SDK client and the error translation here are shared with the kit's containers
(containers.py).

Whatever the SDK raises (an engine error, a lost connection) leaves this module as a one-line
KitError with a hint, never as a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ese.errors import EseError, docker_start_hint
from ese.host import sdk
from ese.kit import REPO_ROOT, KitError
from ese.kit.inputs import KEY_LABEL
from ese.kit.output import BUILD_TIMEOUT, BuildStopped, Transcript, action, built_image

CHUNK = 1 << 20  # bytes of the rootfs tarball sent at a time
ENGINE_LOG_HINT = "the Docker engine's log may say more (journalctl -u docker, or dockerd's log)"


def docker_errors() -> Any:
    # importlib: the repo's own docker/ directory would shadow the SDK for mypy.
    return importlib.import_module("docker.errors")


@functools.cache
def client() -> Any:
    """The Docker SDK client, made once; a KitError with the way to start Docker without one."""
    try:
        return sdk.client()
    except EseError as exc:
        raise KitError(str(exc)) from None


def require_engine() -> None:
    """Fail with a hint when no Docker engine answers."""
    client()


def reason(exc: BaseException) -> str:
    """One line saying why an SDK call failed: the engine's own words when it sent some."""
    said = getattr(exc, "explanation", None) or getattr(exc, "msg", None)
    text = str(said or exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if said and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextmanager
def engine_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn what the SDK raises inside into `KitError("<what> failed: <reason>; <hint>")`.

    The engine's own failures (HTTP 5xx) get a pointer to its log when no hint is given.
    """
    try:
        yield
    except docker_errors().DockerException as exc:  # APIError, BuildError, ImageNotFound...
        server_side = getattr(exc, "is_server_error", lambda: False)()
        hint = hint or (ENGINE_LOG_HINT if server_side else "")
        raise KitError(f"{what} failed: {reason(exc)}" + (f"; {hint}" if hint else "")) from None
    except OSError as exc:
        requests = importlib.import_module("requests")
        if isinstance(exc, requests.RequestException):  # refused, reset, timed out
            why = f"the Docker engine did not answer ({reason(exc)})"
            raise KitError(f"{what} failed: {why}; {docker_start_hint()}") from None
        raise KitError(f"{what} failed: {reason(exc)}") from None  # e.g. an unreadable file


def _image(ref: str) -> Any | None:
    with engine_errors(f"looking up {ref}"):
        try:
            return client().images.get(ref)
        except docker_errors().NotFound:
            return None


def image_id(ref: str) -> str | None:
    """The image's ID, or None when the engine has no such image."""
    image = _image(ref)
    return str(image.id) if image is not None else None


def image_key(ref: str) -> str | None:
    """The kit key label of an image, or None when it or its label is absent."""
    image = _image(ref)
    labels = image.labels if image is not None else {}
    return labels.get(KEY_LABEL) or None


def drop_replaced(previous: str | None, new: str | None) -> None:
    """Remove the image a rebuild untagged, so repeated kit runs do not fill the disk."""
    if not (previous and new and previous != new):
        return
    action(f"remove image {previous} (replaced by {new})")
    try:
        client().images.remove(previous)
    except (docker_errors().DockerException, OSError):
        pass  # still used by a container, or tagged elsewhere too: it stays, harmlessly


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


@dataclass(frozen=True)
class BuildSpec:
    """One build of a kit image: tag, Dockerfile, context, key label and base image."""

    tag: str
    dockerfile: Path
    context: Path  # may lie elsewhere than the Dockerfile: the SDK then sends that inside
    key: str
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False


def build(spec: BuildSpec) -> str:
    """Build with the classic builder (the SDK's /build), labelled with the key; the image ID."""
    action(f"build {spec.tag} ({_shown(spec.dockerfile)}, context {_shown(spec.context)})")
    previous = image_id(spec.tag)
    loose = _loose() if spec.target else set()
    what = f"building {spec.tag}"
    transcript = Transcript()
    with engine_errors(what, f"see {_shown(spec.dockerfile)}"):
        # A Dockerfile outside the context is sent inside it under a random name that the
        # SDK's generated .dockerignore keeps out of COPY; <context>/.dockerignore is honoured.
        stream = client().api.build(
            path=str(spec.context),
            dockerfile=str(spec.dockerfile),
            tag=spec.tag,
            buildargs=dict(spec.args),
            labels={KEY_LABEL: spec.key},
            target=spec.target,
            nocache=spec.no_cache,
            rm=True,
            decode=True,
            timeout=BUILD_TIMEOUT,
        )
        new = built_id(stream, transcript, what)
    if not new.startswith("sha256:"):  # a short ID from "Successfully built"
        new = image_id(new) or new
    drop_replaced(previous, new)
    if spec.target:
        drop_other_stages(loose)
    return new


def _loose() -> set[str]:
    """IDs of the untagged images that carry the kit's label (stages no tag keeps)."""
    with contextlib.suppress(docker_errors().DockerException, OSError):
        found = client().images.list(filters={"dangling": True, "label": KEY_LABEL})
        return {str(image.id) for image in found}
    return set()


def drop_other_stages(before: set[str]) -> None:
    """Remove the untagged images this build left: the stages before its target.

    Why: the classic builder builds every stage up to the target, and nothing keeps those
    it does not tag. Only images that appeared during this build go, never older ones.
    """
    for stale in _loose() - before:
        with contextlib.suppress(docker_errors().DockerException, OSError):
            client().images.remove(stale)


def built_id(items: Iterable[Mapping[str, Any]], transcript: Transcript, what: str) -> str:
    """Follow a build's JSON stream: show or keep its output; its image ID, or a KitError."""
    try:
        return built_image(items, transcript)
    except BuildStopped as exc:
        raise KitError(f"{what} {exc}{transcript.for_error()}") from None


def _chunks(pipe: IO[bytes]) -> Iterator[bytes]:
    # A generator body makes requests send it chunked: the tarball is never held whole.
    yield from iter(lambda: pipe.read(CHUNK), b"")


def imported_id(reply: str, what: str) -> str:
    """The image ID in the engine's reply to an import (JSON lines), or a KitError."""
    found = ""
    for line in reply.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("error"):
            raise KitError(f"{what} failed: {str(item['error']).strip()}; {ENGINE_LOG_HINT}")
        status = str(item.get("status") or "") if isinstance(item, dict) else ""
        if status.startswith("sha256:"):
            found = status
    if not found:
        raise KitError(f"{what} failed: the engine sent no image ID ({reply.strip()[:200]!r})")
    return found


def import_rootfs(rootfs: Path, tag: str, changes: list[str]) -> str:
    """`tar -C rootfs -c .` streamed into the engine's import as `tag`; the new image ID."""
    action(f"import {tag} from `tar -C {rootfs} -c .` with {'; '.join(changes)}")
    repository, version = sdk.split_ref(tag)
    what = f"importing the rootfs as {tag}"
    with tempfile.TemporaryFile() as errors:  # a file: a pipe could fill up and stall tar
        cmd = ["tar", "-C", str(rootfs), "-c", "."]
        tar = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        assert tar.stdout is not None  # for mypy: PIPE was asked for
        try:
            with engine_errors(what):
                reply = client().api.import_image_from_stream(
                    _chunks(tar.stdout), repository=repository, tag=version, changes=changes
                )
        finally:
            tar.stdout.close()  # after an engine error, tar stops on the broken pipe
            code = tar.wait()
        new = imported_id(str(reply), what)
        if code != 0:
            # The engine took a partial tarball: drop it, or its key label would keep it.
            with engine_errors(f"removing the partial import {new}"):
                client().images.remove(new, force=True)
            errors.seek(0)
            said = errors.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            raise KitError(f"{what} failed: tar exited {code}: {' | '.join(said)}")
    return new
