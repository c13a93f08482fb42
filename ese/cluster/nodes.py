"""The node containers: each runs a Docker engine (the cluster's node image) with its
/var/lib/docker on a volume of its own and its API on a unix socket in a directory of this
machine. Created, started, killed and removed here; reached through `client`."""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from ese.cluster import privileges, spec
from ese.errors import EseError
from ese.kit import IMAGES_DIR
from ese.swarm import calls
from ese.topology import Topology

# The entry point that readies cgroups for the nested engine: the kit's node image has it, and
# it is copied into every node so that an official docker:dind node runs it too.
ENTRYPOINT_FILE = IMAGES_DIR / "docker-node" / "ese-node-entrypoint"
ENGINE_LOG_LINES = 20
STOP_SECONDS = 30  # a node engine stopping its containers; then the engine kills it


def labels(topo: Topology, role: str) -> dict[str, str]:
    return {spec.CLUSTER_LABEL: topo.cluster.network, spec.ROLE_LABEL: role}


def find(cli: Any, topo: Topology, role: str = "node") -> list[Any]:
    """The cluster's containers of `role` (running or not), nodes in number order."""
    label = f"{spec.ROLE_LABEL}={role}"
    found = [
        c
        for c in cli.containers.list(all=True, filters={"label": label})
        if (c.labels or {}).get(spec.CLUSTER_LABEL) == topo.cluster.network
    ]
    return sorted(found, key=lambda c: (spec.node_number(topo, c.name) or 0, c.name))


def get(cli: Any, topo: Topology, name: str) -> Any:
    """Node `name`'s container, or an EseError listing the nodes there are."""
    nodes = find(cli, topo)
    for box in nodes:
        if box.name == name:
            return box
    there = ", ".join(b.name for b in nodes) or "none: run `invoke cluster.up`"
    raise EseError(f"{name!r} is not a node of the cluster", f"its nodes: {there}")


def entrypoint_archive(path: Path = ENTRYPOINT_FILE) -> bytes:
    """A tar holding the entry point as an executable, for `put_archive`."""
    data = path.read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(Path(spec.ENTRYPOINT).name)
        info.size, info.mode, info.mtime = len(data), 0o755, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def volume(cli: Any, topo: Topology, name: str, role: str, subnet: str = "") -> str:
    """The named volume, created with the cluster's labels when missing (so down finds it)."""
    errors = importlib.import_module("docker.errors")
    try:
        cli.volumes.get(name)
    except errors.NotFound:
        marks = labels(topo, role) | ({spec.SUBNET_LABEL: subnet} if subnet else {})
        shown = " ".join(f"--label {k}={v}" for k, v in marks.items())
        calls.call(
            f"docker volume create {shown} {name}",
            lambda: cli.volumes.create(name, labels=marks),
            hint=spec.AGAIN,
        )
    return name


def remembered_subnet(cli: Any, topo: Topology) -> str:
    """The subnet node 1 had when its volume was made ("" without that volume)."""
    errors = importlib.import_module("docker.errors")
    try:
        found = cli.volumes.get(spec.docker_volume(spec.node_name(topo, 1)))
    except errors.NotFound:
        return ""
    return str(((found.attrs or {}).get("Labels") or {}).get(spec.SUBNET_LABEL, ""))


def create(
    cli: Any,
    topo: Topology,
    number: int,
    image: str,
    rights: dict[str, Any],
    plan: spec.Addresses,
    publish: Sequence[spec.Published],
    group: int,
) -> Any:
    """Create node `number` (not started): its engine flags, volume, socket directory,
    address, published ports and the entry point copied in."""
    name = spec.node_name(topo, number)
    net = topo.cluster.network
    data = volume(cli, topo, spec.docker_volume(name), "node", plan.subnet)
    args = spec.dockerd_args(topo, name, group)
    address = plan.node(number)
    ports = spec.port_bindings(publish)
    shown = " ".join(
        [
            f"docker create --name {name} --hostname {name} --network {net} --ip {address}",
            "--cgroupns private",
            privileges.flags(rights),
            f"-v {data}:/var/lib/docker -v {spec.socket_dir(name)}:{spec.NODE_SOCKET_DIR}",
            "--tmpfs /run",
            *(f"-p {bind}:{port}:{port}" for bind, port in ports.values()),
            f"--entrypoint {spec.ENTRYPOINT} {image} {' '.join(args)}",
        ]
    )
    # The API's own calls: the SDK's containers.create has no field for systempaths.
    config = privileges.host_config(
        cli,
        rights,
        binds=[f"{data}:/var/lib/docker", f"{spec.socket_dir(name)}:{spec.NODE_SOCKET_DIR}"],
        tmpfs={"/run": ""},  # a clean /run at each start, as a machine's after a reboot
        cgroupns="private",
        port_bindings=dict(ports),
        network_mode=net,
    )
    endpoint = cli.api.create_endpoint_config(ipv4_address=address)

    def make() -> Any:
        made = cli.api.create_container(
            image,
            args,
            name=name,
            hostname=name,
            entrypoint=[spec.ENTRYPOINT],
            labels=labels(topo, "node"),
            ports=[(p.port, "tcp") for p in publish],
            host_config=config,
            networking_config=cli.api.create_networking_config({net: endpoint}),
        )
        return cli.containers.get(made["Id"])

    box = calls.call(shown, make, hint=spec.AGAIN)
    calls.call(
        f"docker cp {ENTRYPOINT_FILE.name} {name}:{spec.ENTRYPOINT}",
        lambda: box.put_archive(str(Path(spec.ENTRYPOINT).parent), entrypoint_archive()),
        hint=spec.AGAIN,
    )
    return box


def start(box: Any) -> None:
    calls.call(f"docker start {box.name}", box.start, hint=spec.AGAIN)


def kill(box: Any) -> None:
    """SIGKILL: the machine is lost, nothing shuts down cleanly."""
    calls.call(
        f"docker kill --signal KILL {box.name}", lambda: box.kill("SIGKILL"), hint=spec.AGAIN
    )


def remove(boxes: Sequence[Any], graceful: bool) -> None:
    """Stop the running ones (a clean engine shutdown, when the volumes stay; all at once, as
    each engine takes seconds to stop), then remove every container."""
    running = [b for b in boxes if graceful and b.status == "running"]
    if running:
        shown = f"docker stop --time {STOP_SECONDS} {' '.join(b.name for b in running)}"

        def stop_all() -> None:
            with ThreadPoolExecutor(max_workers=len(running)) as pool:
                for stopping in [pool.submit(b.stop, timeout=STOP_SECONDS) for b in running]:
                    stopping.result()

        calls.call(shown, stop_all, hint=spec.AGAIN)
    for box in boxes:
        calls.call(
            f"docker rm --force {box.name}", partial(box.remove, force=True), hint=spec.AGAIN
        )


def client(name: str, timeout: float = 30) -> Any:
    """An SDK client of node `name`'s engine (through its socket on this machine)."""
    docker = importlib.import_module("docker")
    return docker.DockerClient(base_url=spec.docker_host(name), timeout=int(timeout))


def engine_log(box: Any, lines: int = ENGINE_LOG_LINES) -> str:
    try:
        text = box.logs(tail=lines).decode("utf-8", "replace").strip()
    except Exception:  # the container is gone: nothing to show
        return ""
    return " | ".join(text.splitlines()[-lines:])


def wait_engine(
    box: Any,
    timeout: float,
    connect: Callable[[str], Any] = client,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Node `box`'s engine client once it answers; an EseError with the node's log when the
    container stops or the deadline passes."""
    deadline = clock() + timeout
    while True:
        try:
            cli = connect(box.name)
            cli.ping()
            return cli
        except Exception:  # no socket yet, or dockerd still starting
            pass
        box.reload()
        stopped = box.status not in ("running", "created")
        if stopped or clock() >= deadline:
            why = "stopped" if stopped else f"did not answer within {timeout:.0f}s"
            raise EseError(
                f"the engine in {box.name} {why} (socket {spec.socket_path(box.name)}); "
                f"its log: {engine_log(box) or '(empty)'}",
                "see `docker logs " + box.name + "`; on Docker Desktop the socket stays inside "
                "its VM: use `docker exec " + box.name + " docker ...`",
            )
        sleep(0.5)


def bring_up(
    cli: Any,
    topo: Topology,
    existing: Mapping[str, Any],
    names: Sequence[str],
    *,
    image: str,
    rights: dict[str, Any],
    addresses: spec.Addresses,
    published: Sequence[spec.Published],
    group: int,
    timeout: float,
) -> dict[str, Any]:
    """Create the nodes in `names` not in `existing` (node 1 publishes `published`), start the
    stopped ones; each node's engine client once it answers."""
    boxes = {}
    for number, name in enumerate(names, start=1):
        box = existing.get(name)
        if box is None:
            ports = published if number == 1 else []
            box = create(cli, topo, number, image, rights, addresses, ports, group)
        if box.status != "running":
            start(box)
        boxes[name] = box
    return {name: wait_engine(box, timeout) for name, box in boxes.items()}


def remove_socket_dirs(names: Sequence[str]) -> None:
    """The node socket directories on this machine, and their parent when it is empty."""
    root = Path(spec.SOCKET_ROOT)
    for name in names:
        folder = root / name
        if folder.exists():
            print(f"removing {folder}")
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                print(f"left {folder}: {exc.strerror} (made by the engine; remove it as root)")
    with contextlib.suppress(OSError):  # not empty (a directory left above), or not there
        root.rmdir()


def leftover_socket_dirs(topo: Topology) -> list[str]:
    """Node socket directories on this machine, also of nodes already gone."""
    return [p.name for p in Path(spec.SOCKET_ROOT).glob(f"{topo.cluster.node_prefix}*")]


def remove_volumes(cli: Any, topo: Topology) -> list[str]:
    """Every volume of the cluster (the nodes' engines' and the registry's); their names."""
    removed = []
    label = f"{spec.CLUSTER_LABEL}={topo.cluster.network}"
    for vol in cli.volumes.list(filters={"label": label}):
        calls.call(f"docker volume rm {vol.name}", partial(vol.remove, force=True), hint=spec.AGAIN)
        removed.append(vol.name)
    return removed
