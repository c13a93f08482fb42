"""The cluster's image registry: a container on the cluster network that every node pulls from
by name (`<registry>:5000`, trusted as an insecure registry by the node engines), and that this
machine pushes to through a port published on 127.0.0.1 only (loopback registries need no TLS).

The push reuses the Swarm stack's (ese.swarm.stack_images.push); the tags it makes on this
machine (`127.0.0.1:PORT/...`) are removed again right after, so nothing of the cluster stays
in this engine's image list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ese.cluster import nodes, spec
from ese.errors import EseError
from ese.host import ports
from ese.host.processes import TimedOut, wait_until
from ese.swarm import calls, stack_images
from ese.topology import Topology

CONFIG = "/etc/docker/registry/config.yml"  # the official image's, and the stand-in's


def find(cli: Any, topo: Topology) -> Any | None:
    found = [b for b in nodes.find(cli, topo, "registry") if b.name == topo.cluster.registry]
    return found[0] if found else None


def host_port(box: Any) -> int | None:
    """The 127.0.0.1 port this machine pushes through, as the container was created with."""
    bindings = ((box.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
    for binding in bindings.get(f"{spec.REGISTRY_PORT}/tcp") or []:
        if str(binding.get("HostPort", "")).isdigit():
            return int(binding["HostPort"])
    return None


def ensure(cli: Any, topo: Topology, image: str, timeout: float) -> int:
    """The registry running on the cluster network (created when missing); its host port."""
    name, net = topo.cluster.registry, topo.cluster.network
    box = find(cli, topo)
    if box is None:
        data = nodes.volume(cli, topo, spec.registry_volume(topo), "registry")
        port = ports.free_port("127.0.0.1")
        shown = (
            f"docker create --name {name} --network {net} -p 127.0.0.1:{port}:"
            f"{spec.REGISTRY_PORT} -v {data}:/var/lib/registry {image}"
        )
        box = calls.call(
            shown,
            lambda: cli.containers.create(
                image,
                name=name,
                hostname=name,
                labels=nodes.labels(topo, "registry"),
                network=net,
                ports={f"{spec.REGISTRY_PORT}/tcp": ("127.0.0.1", port)},
                volumes={data: {"bind": "/var/lib/registry", "mode": "rw"}},
            ),
            hint=spec.AGAIN,
        )
    if box.status != "running":
        nodes.start(box)
    box.reload()
    published = host_port(box)
    if published is None:
        raise EseError(f"{name} publishes no port on 127.0.0.1", spec.AGAIN)
    wait_ready(published, timeout, box)
    return published


def wait_ready(port: int, timeout: float, box: Any) -> None:
    """Until the registry answers its API root (GET /v2/ -> 200)."""
    url = f"http://127.0.0.1:{port}/v2/"

    def answers() -> bool:
        return requests.get(url, timeout=2).status_code == 200

    try:
        wait_until(answers, timeout, f"{url} answering", 0.3, retry=requests.RequestException)
    except TimedOut:
        raise EseError(
            f"the registry {box.name} did not answer {url} within {timeout:.0f}s; "
            f"its log: {nodes.engine_log(box) or '(empty)'}",
            spec.AGAIN,
        ) from None


def node_ref(topo: Topology, ref: str, pushed_to: str) -> str:
    """`ref` as the nodes pull it: `127.0.0.1:PORT/x` -> `<registry>:5000/x`; other refs (an
    official image the nodes pull from its own registry) unchanged."""
    prefix = f"{pushed_to}/"
    return (
        spec.registry_address(topo) + "/" + ref.removeprefix(prefix)
        if ref.startswith(prefix)
        else ref
    )


def push(
    cli: Any,
    topo: Topology,
    refs: Mapping[str, str],
    port: int,
    report: Callable[[str], None] = print,
) -> dict[str, str]:
    """Push the images the nodes cannot pull (built here, or offline stand-ins) to the
    registry; for each key, the ref a node pulls."""
    target = f"127.0.0.1:{port}"
    pushed = stack_images.push(cli, refs, target, report)
    for ref in pushed.values():
        if ref.startswith(f"{target}/"):
            untag(cli, ref)
    return {key: node_ref(topo, ref, target) for key, ref in pushed.items()}


def push_stack(cli: Any, topo: Topology, port: int, *, build: bool, mode: str) -> dict[str, str]:
    """Pick the stack's images as `invoke swarm.up` does (built with `build`), push them to
    the registry on `port`; for each ESE_*_IMAGE, the ref a node pulls."""
    return push(cli, topo, stack_images.resolve(cli, topo, build=build, mode=mode), port)


def untag(cli: Any, ref: str) -> None:
    """Remove one tag of this machine's engine (the image stays under its other names)."""
    with contextlib.suppress(EseError):  # gone already; `invoke cluster.down` sweeps the rest
        calls.call(
            f"docker rmi {ref}", lambda: cli.images.remove(ref, noprune=True), hint=spec.AGAIN
        )


def host_tags(cli: Any, port: int) -> list[str]:
    """This engine's tags under `127.0.0.1:PORT/` (a push that stopped half way leaves some)."""
    prefix = f"127.0.0.1:{port}/"
    return sorted(
        t for image in cli.images.list() for t in (image.tags or []) if t.startswith(prefix)
    )


def remove(cli: Any, topo: Topology) -> bool:
    """Remove the registry and the tags pushed through it; False when there was none."""
    box = find(cli, topo)
    if box is None:
        return False
    port = host_port(box)
    for tag in host_tags(cli, port) if port else []:
        untag(cli, tag)
    calls.call(f"docker rm --force {box.name}", lambda: box.remove(force=True), hint=spec.AGAIN)
    return True
