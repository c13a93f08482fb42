"""The stack's images: picked as for `invoke backend`, pushed to a registry for more nodes.

ese.engine.images decides (override > official present or pullable > offline kit stand-in);
this module adds the registry step: images other nodes cannot pull are tagged and pushed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ese.engine import images, server_image
from ese.errors import EseError
from ese.host import sdk
from ese.swarm import calls
from ese.topology import Topology

STACK_IMAGES = (
    "ese_server",
    "redis",
    "haproxy",
    "prometheus",
    "alertmanager",
    "redis_exporter",
    "grafana",
    "node_exporter",
)
_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>[0-9]{1,5})$")


def check_registry(value: str) -> str:
    """`value` when it is HOST:PORT with a port in 1..65535, else an EseError."""
    match = _REGISTRY.match(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise EseError(f"--registry {value!r} is not HOST:PORT", "e.g. --registry 127.0.0.1:5000")
    return value


def get(cli: Any, ref: str) -> Any:
    """The image object when the engine has `ref`, else None."""
    try:
        return cli.images.get(ref)
    except Exception:  # docker.errors.ImageNotFound (and API errors: treat as absent)
        return None


def resolve(cli: Any, topo: Topology, *, build: bool, mode: str) -> dict[str, str]:
    """ESE_*_IMAGE -> image for the stack's images, as `invoke backend` picks and builds them."""
    plan = images.plan(topo, mode, cli)
    server_image.build(topo, plan, cli, build)
    return {topo.images[k].env: plan.ref(k) for k in STACK_IMAGES}


def registry_ref(registry: str, ref: str) -> str:
    """`ref` under `registry`: the first path part is dropped when it names a registry."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    return f"{registry}/{ref}"


def repository(ref: str) -> str:
    """`ref` without its tag or digest: the name a registry stores it under."""
    return sdk.split_ref(ref)[0]


def needs_push(image: Any, ref: str) -> bool:
    """True when other nodes cannot pull `ref` by its name: built here or a kit stand-in.

    An image pulled from a registry has a RepoDigest under its own name (`redis@sha256:...`);
    a digest under another name (an earlier push to some registry) does not help them.
    """
    digests = (image.attrs or {}).get("RepoDigests") or []
    return repository(ref) not in {repository(d) for d in digests}


def push(
    cli: Any, images: Mapping[str, str], registry: str, report: Callable[[str], None] = print
) -> dict[str, str]:
    """Tag and push the local-only images to `registry`; the refs every node can pull."""
    out = dict(images)
    for env, ref in images.items():
        image = get(cli, ref)
        if image is None or not needs_push(image, ref):
            continue  # pulled from a registry every node reaches (e.g. Docker Hub)
        target = registry_ref(registry, ref)
        report(f"pushing {ref} as {target}")
        problem = _tag_and_push(cli, image, target)
        if problem:
            raise EseError(
                f"pushing {target} failed: {problem}",
                f"is the registry at {registry} running, and HTTPS or listed in the "
                "engine's insecure-registries (127.0.0.0/8 is by default)?",
            )
        out[env] = target
    return out


def _tag_and_push(cli: Any, image: Any, target: str) -> str:
    """'' when `image` is now in the registry as `target`, else the engine's reason."""
    repo, tag = sdk.split_ref(target)
    try:
        image.tag(repo, tag=tag)
        # The engine reports a failed push inside the stream, not as an HTTP error.
        for message in cli.images.push(repo, tag=tag, stream=True, decode=True):
            if message.get("error"):
                return str(message["error"]).strip()
    except Exception as exc:  # docker.errors.APIError, requests' connection errors
        return calls.reason(exc)
    return ""
