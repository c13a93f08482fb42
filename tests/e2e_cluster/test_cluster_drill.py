"""The cluster drill: a worker node lost while clients write through the load balancer, ingest
scaled up and down, the node brought back; nothing acknowledged is lost or stored twice, and
`invoke cluster.down --volumes` leaves nothing of the cluster."""

from __future__ import annotations

import os
import time
from typing import Any

from ese.cluster import nodes, registry, spec
from ese.topology import load
from tests.e2e import containers, harness, outside
from tests.e2e_cluster.conftest import NODES

TOPO = load()
STACK = TOPO.swarm.stack
INGEST = f"{STACK}_{TOPO.swarm.ingest_service}"
NAMES = spec.node_names(TOPO, NODES)
CLIENTS, DELAY_MS, LIMIT = 3, 200, 4000  # about 50 events/s per client
BOUND = 30  # seconds: HAProxy drops the lost replicas and the swarm replaces them


def on_cluster(*args: str, timeout: float = 600) -> None:
    """`invoke ARGS` with DOCKER_HOST pointing at node 1, as cluster.up says to set it."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = spec.docker_host(NAMES[0])
    try:
        harness.invoke(*args, timeout=timeout)
    finally:
        if before is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = before


def hostnames(manager: Any) -> dict[str, str]:
    return {n.id: n.attrs["Description"]["Hostname"] for n in manager.nodes.list()}


def tasks_of(manager: Any, service: str) -> list[dict[str, Any]]:
    """The service's tasks meant to run, with `node` (hostname) and `ip` (stack network)."""
    names = hostnames(manager)
    out = []
    for task in manager.api.tasks(filters={"service": service, "desired-state": "running"}):
        ips = [
            a.split("/")[0]
            for net in task.get("NetworksAttachments") or []
            if not net["Network"]["Spec"].get("Ingress")
            for a in net.get("Addresses") or []
        ]
        out.append(
            {
                "node": names.get(task.get("NodeID", ""), ""),
                "state": task["Status"]["State"],
                "ips": ips,
            }
        )
    return out


def redis_master_node(manager: Any) -> str:
    """The node of the Redis master, as a Sentinel reports it."""
    for name in NAMES:
        for box in nodes.client(name).containers.list():
            service = box.labels.get("com.docker.swarm.service.name", "")
            if not service.startswith(f"{STACK}_{TOPO.sentinel.service}-"):
                continue
            argv = ["redis-cli", "-p", str(TOPO.sentinel.port), "SENTINEL"]
            argv += ["get-master-addr-by-name", TOPO.sentinel.master_name]
            code, out = box.exec_run(argv)
            assert code == 0, out
            master = out.decode().split()[0]
            for redis in TOPO.swarm.redis_services:
                for task in tasks_of(manager, f"{STACK}_{redis}"):
                    if master == redis or master in task["ips"]:
                        return str(task["node"])
            raise AssertionError(f"the Sentinels' master {master} is no Redis task")
    raise AssertionError("no Sentinel container on any node")


def lb_addresses() -> set[str]:
    """The addresses HAProxy routes to now (servers UP)."""
    rows = outside.haproxy_servers().values()
    return {r["addr"].rsplit(":", 1)[0] for r in rows if r["status"] == "UP"}


def test_every_service_is_healthy_and_ingest_spreads(cluster: harness.Stack, manager: Any) -> None:
    ingest = tasks_of(manager, INGEST)
    assert {t["state"] for t in ingest} == {"running"}, ingest
    assert len({t["node"] for t in ingest}) >= 2, ingest
    for service in manager.services.list(filters={"label": f"com.docker.stack.namespace={STACK}"}):
        mode = service.attrs["Spec"]["Mode"]
        want = mode["Replicated"]["Replicas"] if "Replicated" in mode else NODES
        running = [t for t in service.tasks(filters={"desired-state": "running"})]
        states = [t["Status"]["State"] for t in running]
        assert states.count("running") == want, (service.name, states)
    status = harness.invoke("status", timeout=120).stdout
    for name in NAMES:
        assert f"{name} " in status and "Ready" in status, status
    assert "Replicas per node" in status, status


def test_a_worker_lost_under_load_loses_nothing(cluster: harness.Stack, manager: Any) -> None:
    master = redis_master_node(manager)
    workers = {n.attrs["Description"]["Hostname"] for n in manager.nodes.list()} - {NAMES[0]}
    workers = {w for w in workers if w != master}

    def victims() -> list[str]:
        return sorted({t["node"] for t in tasks_of(manager, INGEST)} & workers)

    if not victims():  # one replica a node, then one is on a worker without the master
        on_cluster("swarm.scale", "--ingest", str(NODES))
    (victim, *_) = victims()
    replicas = len(tasks_of(manager, INGEST))
    times: dict[str, float] = {}

    def drill(watcher: containers.IpWatcher) -> None:
        outside.wait_until(lambda: watcher.running_now() == CLIENTS, 60, "all clients running")
        time.sleep(3)
        lost = {ip for t in tasks_of(manager, INGEST) if t["node"] == victim for ip in t["ips"]}
        assert lost and lost <= lb_addresses(), (lost, lb_addresses())
        killed = time.monotonic()
        harness.invoke("cluster.kill", "--node", victim, timeout=60)

        def dropped() -> bool:
            return not (lost & lb_addresses())

        def replaced() -> bool:
            now = tasks_of(manager, INGEST)
            running = [t for t in now if t["state"] == "running" and t["node"] != victim]
            return len(running) == replicas

        outside.wait_until(dropped, 4 * BOUND, "HAProxy routes only to live replicas", 0.5)
        times["kill -> HAProxy routes only to live replicas"] = time.monotonic() - killed
        outside.wait_until(replaced, 4 * BOUND, "the lost replicas run on the survivors", 0.5)
        times["kill -> lost replicas running on the survivors"] = time.monotonic() - killed
        assert watcher.running_now() == CLIENTS, "a client ended during the kill"
        on_cluster("swarm.scale", "--ingest", str(replicas + 1))
        on_cluster("swarm.scale", "--ingest", str(replicas))
        started = time.monotonic()
        harness.invoke("cluster.start", "--node", victim, timeout=600)
        times["cluster.start -> node Ready"] = time.monotonic() - started
        print(f"cluster drill: killed {victim} (Redis master on {master}); {times}")

    phase = harness.run_clients(
        cluster, clients=CLIENTS, delay_ms=DELAY_MS, limit=LIMIT, during=drill, timeout=900
    )
    for what, seconds in times.items():
        harness.record(f"cluster drill: {what}", seconds)
    harness.record("cluster drill: client phase", phase.seconds)
    # Every acknowledged event stored once, per client; no client gave up on an event.
    harness.check_phase(phase, CLIENTS, LIMIT)
    for what, seconds in times.items():
        if what.startswith("kill"):
            assert seconds <= BOUND, f"{what}: {seconds:.1f}s, more than {BOUND}s"


PROBE = """
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
with urllib.request.urlopen("http://127.0.0.1:8501/_stcore/health", timeout=5) as r:
    assert r.read().strip() == b"ok"
ask = urllib.request.Request(url.replace("/events", "/stats"))
ask.add_header("Authorization", "Bearer " + token)
with urllib.request.urlopen(ask, timeout=5) as r:
    print(json.load(r)["total"])
"""


def test_the_consumer_runs_on_another_node_than_the_analytics_shard(
    cluster: harness.Stack, manager: Any, docker_cli: Any
) -> None:
    """The consumer's container on a node other than the analytics shard's, reading the
    shard through that node's address (as `invoke consumer --remote` reads a LAN address)."""
    (shard,) = tasks_of(manager, f"{STACK}_{TOPO.analytics_shard.name}")
    other = next(n for n in NAMES if n != shard["node"])
    box = docker_cli.containers.get(shard["node"])
    address = box.attrs["NetworkSettings"]["Networks"][TOPO.cluster.network]["IPAddress"]
    url = f"http://{address}:{TOPO.analytics_shard.port}/events"
    port = registry.host_port(registry.find(docker_cli, TOPO))
    assert port, "the registry publishes no port"
    local = TOPO.images["ese_consumer"].resolve(os.environ)
    ref = registry.push(docker_cli, TOPO, {"consumer": local}, port)["consumer"]
    engine = nodes.client(other, timeout=300)
    consumer = engine.containers.run(
        ref,
        name="ese-consumer-drill",
        detach=True,
        environment={
            "ESE_SERVER_URL": url,
            "ESE_ANALYTICS_TOKEN": cluster.analytics_token,
            "ESE_POLL_SECONDS": str(TOPO.consumer.poll_seconds),
        },
    )
    try:

        def serves() -> str | None:
            code, out = consumer.exec_run(["python", "-c", PROBE, url, cluster.analytics_token])
            return out.decode().strip() if code == 0 else None

        total = outside.wait_until(serves, 90, f"the consumer on {other} serves and reads {url}", 2)
        assert int(total) >= CLIENTS * LIMIT, total
        logs = consumer.logs().decode(errors="replace")
        assert "Traceback" not in logs, logs[-2000:]
        print(f"consumer on {other} reads the analytics shard on {shard['node']} ({url})")
    finally:
        consumer.remove(force=True)


def test_down_with_volumes_leaves_nothing(cluster: harness.Stack, docker_cli: Any) -> None:
    port = registry.host_port(registry.find(docker_cli, TOPO))
    assert port, "the registry publishes no port"
    harness.invoke("down", "--volumes", timeout=300)
    harness.invoke("cluster.down", "--volumes", timeout=600)
    mark = {"label": f"{spec.CLUSTER_LABEL}={TOPO.cluster.network}"}
    assert docker_cli.containers.list(all=True, filters=mark) == []
    assert nodes.find(docker_cli, TOPO) == [] and registry.find(docker_cli, TOPO) is None
    assert docker_cli.networks.list(names=[TOPO.cluster.network]) == []
    assert docker_cli.volumes.list(filters=mark) == []
    assert registry.host_tags(docker_cli, port) == []
