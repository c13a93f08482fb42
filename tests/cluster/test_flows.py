"""The cluster flows with a fake engine: what is refused before anything is made, kill,
down, the socket group and the line that points the CLI at the cluster."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

import pytest

from ese.cluster import host_engine, spec, summary
from ese.errors import EseError
from ese.flows import cluster as flows
from ese.host import ports, shells
from tests.cluster.conftest import Box, Engine, Host, World

LABELS = {spec.CLUSTER_LABEL: "ese-cluster", spec.ROLE_LABEL: "node"}


def node(number: int, status: str = "running", **kwargs) -> Box:
    return Box(f"ese-node-{number}", status=status, labels=dict(LABELS), **kwargs)


def up(host: Host, **kwargs):
    args = dict(nodes_count=2, managers=1, images_mode="auto", build=False, timeout=5, cli=host)
    return flows.up(**{**args, **kwargs})


def test_a_busy_port_is_refused_before_anything_is_made(monkeypatch):
    elb = Box(
        "ese-backend_elb_1",
        labels={"com.docker.compose.project": "ese-backend"},
        bindings={"8100/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8100"}]},
    )
    host = Host([elb])
    monkeypatch.setattr(ports, "is_free", lambda port, bind: port != 8100)
    with pytest.raises(
        EseError,
        match="^" + re.escape("port 8100 for elb is busy: held by container ese-backend_elb_1"),
    ):
        up(host)
    assert host.made == []


def test_more_managers_than_nodes_is_refused_before_anything_is_made():
    host = Host()
    with pytest.raises(EseError, match=r"^--managers 3 is more than --nodes 2; e\.g\. --nodes 3"):
        up(host, managers=3)
    assert host.made == []


def test_fewer_nodes_than_the_cluster_has_is_refused():
    host = Host([node(1), node(2), node(3)])
    with pytest.raises(
        EseError,
        match="^" + re.escape("the cluster has 3 nodes; --nodes 2 would leave out ese-node-3;"),
    ):
        up(host)


def test_node_1_made_with_other_ports_is_refused(topo):
    bindings = {"8100/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8100"}]}
    host = Host([node(1, bindings=bindings)])
    with pytest.raises(
        EseError, match="^" + re.escape("ese-node-1 publishes 0.0.0.0:8100, not none;")
    ):
        up(host, publish=[])
    assert host.made == []


def test_kill_sends_sigkill_to_a_running_node_only(capsys):
    n2, n3 = node(2), node(3, status="exited")
    host = Host([node(1), n2, n3])
    flows.kill("ese-node-2", cli=host)
    flows.kill("ese-node-3", cli=host)
    assert n2.log == ["kill SIGKILL"] and n3.log == []
    out = capsys.readouterr().out
    assert "> docker kill --signal KILL ese-node-2" in out
    assert "ese-node-3 is not running (exited)" in out


def test_an_unknown_node_is_one_line_listing_the_nodes():
    with pytest.raises(EseError) as err:
        flows.kill("ese-registry", cli=Host([node(1), node(2)]))
    assert str(err.value) == (
        "'ese-registry' is not a node of the cluster; its nodes: ese-node-1, ese-node-2"
    )
    with pytest.raises(EseError, match=re.escape("its nodes: none: run `invoke cluster.up`")):
        flows.start("ese-node-1", timeout=1, cli=Host())


def test_down_removes_nodes_registry_sockets_and_only_with_volumes_the_volumes(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(spec, "SOCKET_ROOT", PurePosixPath(tmp_path / "sockets"))
    for name in ("ese-node-1", "ese-node-2"):
        os.makedirs(spec.socket_dir(name))
    volumes = {
        "ese-node-1-docker": dict(LABELS),
        "ese-registry-data": {spec.CLUSTER_LABEL: "ese-cluster"},
        "someone-else": {},
    }
    reg = Box(
        "ese-registry", labels={spec.CLUSTER_LABEL: "ese-cluster", spec.ROLE_LABEL: "registry"}
    )
    boxes = [node(1), node(2, status="exited"), reg]
    host = Host(list(boxes), volumes)
    flows.down(volumes=False, cli=host)
    assert boxes[0].log == ["stop", "rm"] and boxes[1].log == ["rm"] and reg.log == ["rm"]
    assert not (tmp_path / "sockets").exists()
    assert host.removed == []
    assert "its volumes stay" in capsys.readouterr().out
    flows.down(volumes=True, cli=host)
    assert sorted(host.removed) == ["ese-node-1-docker", "ese-registry-data"]


def test_down_without_a_cluster_says_so(monkeypatch, tmp_path, capsys):
    # Not this machine's /run/ese-cluster: a cluster up here must not change the answer.
    monkeypatch.setattr(spec, "SOCKET_ROOT", PurePosixPath(tmp_path / "sockets"))
    flows.down(volumes=True, cli=Host())
    assert capsys.readouterr().out.strip() == "no cluster here: nothing to remove"


def test_node_sockets_get_the_group_of_this_engines_socket(tmp_path):
    sock = tmp_path / "docker.sock"
    sock.write_text("")
    gid = os.stat(sock).st_gid
    assert host_engine.socket_group({"DOCKER_HOST": f"unix://{sock}"}) == gid
    assert host_engine.socket_group({"DOCKER_HOST": "tcp://10.0.0.1:2376"}) == 0  # root only
    assert host_engine.socket_group({"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"}) == 0


def test_a_docker_host_pointing_into_the_cluster_is_not_this_machines_engine(monkeypatch, tmp_path):
    sock = tmp_path / "docker.sock"
    sock.write_text("")
    monkeypatch.setattr(host_engine, "DEFAULT_SOCKET", str(sock))
    into = {"DOCKER_HOST": spec.docker_host("ese-node-1")}
    assert host_engine.socket_group(into) == os.stat(sock).st_gid


@pytest.mark.parametrize("shell", shells.SHELLS)
def test_the_summary_points_every_known_shell_at_node_1(topo, shell):
    world = World()
    manager = Engine(world, "ese-node-1")
    manager.swarm.init("172.30.0.11", "0.0.0.0:2377")
    cluster = summary.Cluster(topo, ["ese-node-1"], manager, spec.docker_host("ese-node-1"), 41000)
    lines = summary.lines(cluster, shell)
    assert lines[1].split()[:3] == ["ese-node-1", "Ready", "manager"]
    assert lines[-1].strip() == shells.set_line(shell, cluster.docker_host, var="DOCKER_HOST")
    assert "unix:///run/ese-cluster/ese-node-1/docker.sock" in lines[-1]
