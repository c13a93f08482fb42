"""A real two-node cluster, without the stack: the node image is picked (or built), both nodes
are Ready, an image pushed through the registry runs on node 2, a killed node goes Down and
comes back Ready at the same address, and `down --volumes` leaves nothing.

Node 1 publishes one free loopback port here instead of the stack's, so this runs beside a
compose or Swarm stack; a container published on it inside node 1 answers on this machine.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.cluster import host_engine, network, nodes, registry, spec
from ese.flows import cluster as flows
from ese.topology import load
from tests.tooling import free_port, need_binary

pytestmark = pytest.mark.docker

TIMEOUT = 240  # seconds for a node engine, the registry and the swarm to answer
TINY = "ese-cluster-test/tiny:1"
PROBE_PORT = free_port("127.0.0.1")  # what node 1 publishes in place of the stack's ports


def node_ls(via: str = "ese-node-1") -> dict[str, str]:
    """`docker node ls` through a node's engine socket: hostname -> status."""
    env = {**os.environ, "DOCKER_HOST": spec.docker_host(via)}
    argv = ["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def wait_status(node: str, status: str, seconds: float) -> float:
    """Seconds until `docker node ls` shows `node` in `status`; fails at the deadline."""
    start = time.monotonic()
    seen: dict[str, str] = {}
    while time.monotonic() - start < seconds:
        seen = node_ls()
        if seen.get(node) == status:
            return time.monotonic() - start
        time.sleep(1)
    pytest.fail(f"{node} not {status} after {seconds:.0f}s: {seen}")


@pytest.fixture(scope="module")
def cluster(docker_cli: Any) -> Iterator[flows.Cluster]:
    need_binary("docker", "the docker CLI checks the swarm as a user would")
    topo = load()
    if nodes.find(docker_cli, topo) or network.find(docker_cli, topo):
        pytest.fail("a cluster is up on this engine; `invoke cluster.down` first", pytrace=False)
    try:
        yield flows.up(
            nodes_count=2,
            managers=1,
            images_mode="auto",
            build=False,
            timeout=TIMEOUT,
            publish=[spec.Published("probe", PROBE_PORT, "127.0.0.1")],
            push_stack=False,
        )
    finally:
        flows.down(volumes=True)
        with contextlib.suppress(Exception):  # ImageNotFound: the push test did not get there
            docker_cli.images.remove(TINY)


def test_both_nodes_are_ready_with_node_1_leading(cluster: flows.Cluster) -> None:
    assert node_ls() == {"ese-node-1": "Ready", "ese-node-2": "Ready"}
    roles = {
        n.attrs["Description"]["Hostname"]: n.attrs["Spec"]["Role"]
        for n in cluster.manager.nodes.list()
    }
    assert roles == {"ese-node-1": "manager", "ese-node-2": "worker"}


def address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: 32-bit words in the kernel's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    return ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))


def listening(box: Any) -> set[int]:
    """The TCP ports something listens on in the node beyond loopback (state 0A). Loopback
    leaves out 127.0.0.11: the outer engine's DNS resolver for the cluster network."""
    code, out = box.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    assert code == 0, out
    rows = [line.split() for line in out.decode().splitlines() if ":" in line.split()[0]]
    local = [row[1].rsplit(":", 1) for row in rows if row[3] == "0A"]
    return {int(port, 16) for where, port in local if not address(where).is_loopback}


def test_a_node_engine_is_a_unix_socket_for_its_engines_group_only(cluster, docker_cli) -> None:
    sock = Path(spec.socket_path("ese-node-1"))
    assert sock.stat().st_mode & 0o777 == 0o660
    assert sock.stat().st_gid == host_engine.socket_group()
    for box in nodes.find(docker_cli, cluster.topo):
        ports = box.attrs["NetworkSettings"]["Ports"].values()
        published = {(b["HostIp"], b["HostPort"]) for v in ports for b in v or []}
        expected = {("127.0.0.1", str(PROBE_PORT))} if box.name == "ese-node-1" else set()
        assert published == expected, box.name
        # Swarm's own ports only (manager 2377, gossip 7946): no engine API on TCP (2375/2376).
        assert listening(box) <= {spec.SWARM_PORT, 7946}, box.name


def test_an_image_pushed_to_the_registry_runs_on_node_2(cluster, docker_cli) -> None:
    topo = cluster.topo
    box = registry.find(docker_cli, topo)
    assert box is not None, "the cluster has no registry container"
    base = box.attrs["Config"]["Image"]
    dockerfile = f"FROM {base}\nLABEL org.ese.test=cluster\n".encode()
    docker_cli.images.build(fileobj=io.BytesIO(dockerfile), tag=TINY, rm=True)
    refs = registry.push(docker_cli, topo, {"TINY": TINY}, cluster.registry_port)
    assert refs == {"TINY": f"ese-registry:5000/{TINY}"}
    assert registry.host_tags(docker_cli, cluster.registry_port) == []
    node2 = nodes.client("ese-node-2")
    assert not [i for i in node2.images.list() if refs["TINY"] in i.tags]  # it must pull
    out = node2.containers.run(
        refs["TINY"], ["pulled from the registry"], entrypoint=["echo"], remove=True
    )
    assert out == b"pulled from the registry\n"


def test_a_port_published_inside_node_1_answers_on_this_machine(cluster, docker_cli) -> None:
    """What the stack's edge does: a container in node 1 publishes the port node 1 publishes."""
    topo = cluster.topo
    box = registry.find(docker_cli, topo)
    assert box is not None, "the cluster has no registry container"
    image = box.attrs["Config"]["Image"]
    ref = registry.push(docker_cli, topo, {"R": image}, cluster.registry_port)["R"]
    inner = cluster.manager.containers.run(ref, detach=True, ports={"5000/tcp": PROBE_PORT})
    url = f"http://127.0.0.1:{PROBE_PORT}/v2/"
    try:
        start = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:  # refused or reset while the registry in node 1 starts
                assert time.monotonic() - start < 30, f"{url} did not answer within 30s"
                time.sleep(0.5)
    finally:
        inner.remove(force=True)


def test_a_killed_node_goes_down_and_comes_back_ready(cluster, docker_cli) -> None:
    box = nodes.get(docker_cli, cluster.topo, "ese-node-2")
    address = box.attrs["NetworkSettings"]["Networks"]["ese-cluster"]["IPAddress"]
    flows.kill("ese-node-2")
    box.reload()
    assert box.status == "exited"
    down = wait_status("ese-node-2", "Down", 90)
    print(f"ese-node-2 Down {down:.1f}s after the kill")
    flows.start("ese-node-2", timeout=TIMEOUT)
    assert node_ls()["ese-node-2"] == "Ready"
    box.reload()
    assert box.attrs["NetworkSettings"]["Networks"]["ese-cluster"]["IPAddress"] == address


def test_down_with_volumes_leaves_nothing_of_the_cluster(cluster, docker_cli) -> None:
    topo, port = cluster.topo, cluster.registry_port
    flows.down(volumes=True)
    label = {"label": f"{spec.CLUSTER_LABEL}={topo.cluster.network}"}
    assert docker_cli.containers.list(all=True, filters=label) == []
    assert docker_cli.volumes.list(filters=label) == []
    assert network.find(docker_cli, topo) is None
    assert not Path(spec.SOCKET_ROOT).exists()
    tags = [
        t for i in docker_cli.images.list() for t in i.tags if t.startswith(f"127.0.0.1:{port}/")
    ]
    assert tags == []
