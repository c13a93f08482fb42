"""Which images the stack runs, built or checked here, pushed to a registry for more nodes.

Until one module decides images for every flow (override > official present or pullable >
offline kit stand-in), this one honours the ESE_*_IMAGE overrides, else the topology.toml
defaults, and stops with a one-line hint when an image is neither here nor pullable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ese import stack
from ese.compose import join
from ese.errors import EseError
from ese.paths import BACKEND_COMPOSE
from ese.topology import Topology

INFRA = ("redis", "haproxy", "prometheus", "grafana")
KIT_HINT = (
    "pull it, export {env} naming an image you have, or build the offline image kit: "
    "python scripts/offline_images.py --env-out artifacts/offline.env && . artifacts/offline.env"
)
_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>[0-9]{1,5})$")

Run = Callable[[list[str]], bool]  # run a printed docker command; True when it succeeded


def check_registry(value: str) -> str:
    """`value` when it is HOST:PORT with a port in 1..65535, else an EseError."""
    match = _REGISTRY.match(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise EseError(f"--registry {value!r} is not HOST:PORT", "e.g. --registry 127.0.0.1:5000")
    return value


def present(cli: Any, ref: str) -> Any:
    """The image object when the engine has `ref`, else None."""
    try:
        return cli.images.get(ref)
    except Exception:  # docker.errors.ImageNotFound (and API errors: treat as absent)
        return None


def build_server(c: Any, topo: Topology, environ: Mapping[str, str]) -> None:
    """Build ese-server exactly as `invoke backend --build` does (the compose build section)."""
    stack.ensure_env()  # compose interpolates the whole file, secrets included
    analytics = topo.analytics_shard.name  # every shard service builds the same image
    stack.run_compose(c, topo.backend_project, BACKEND_COMPOSE, "build", analytics,
                      env=dict(environ))  # fmt: skip


def resolve(
    c: Any, cli: Any, topo: Topology, *, build: bool, environ: Mapping[str, str], run: Run
) -> dict[str, str]:
    """ESE_*_IMAGE -> image for every image of the stack, each present on this engine."""
    out: dict[str, str] = {}
    server = topo.images["ese_server"]
    if build or present(cli, server.resolve(environ)) is None:
        build_server(c, topo, environ)
    out[server.env] = server.resolve(environ)
    for key in INFRA:
        image = topo.images[key]
        ref = image.resolve(environ)
        if present(cli, ref) is None and not run(["docker", "pull", ref]):
            raise EseError(
                f"image {ref} is not on this machine and cannot be pulled",
                KIT_HINT.format(env=image.env),
            )
        out[image.env] = ref
    return out


def registry_ref(registry: str, ref: str) -> str:
    """`ref` under `registry`: the first path part is dropped when it names a registry."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    return f"{registry}/{ref}"


def needs_push(image: Any, registry: str) -> bool:
    """True for an image other nodes cannot pull: built here, or known to no other registry."""
    digests = (image.attrs or {}).get("RepoDigests") or []
    return not any(not d.startswith(f"{registry}/") for d in digests)


def push(cli: Any, images: Mapping[str, str], registry: str, run: Run) -> dict[str, str]:
    """Tag and push the local-only images to `registry`; the refs every node can pull."""
    out = dict(images)
    for env, ref in images.items():
        image = present(cli, ref)
        if image is None or not needs_push(image, registry):
            continue  # pulled from a registry every node reaches (e.g. Docker Hub)
        target = registry_ref(registry, ref)
        for argv in (["docker", "tag", ref, target], ["docker", "push", target]):
            if not run(argv):
                raise EseError(
                    f"`{join(argv, False)}` failed",
                    f"is the registry at {registry} running, and HTTPS or listed in the "
                    "engine's insecure-registries (127.0.0.0/8 is by default)?",
                )
        out[env] = target
    return out
