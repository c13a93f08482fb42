"""The Swarm drill: scale the ingest service up and down and roll it while clients send through
the load balancer; every acknowledged event is stored exactly once and no client gives up."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ese.topology import load
from tests.e2e import containers, harness, outside
from tests.e2e_swarm.conftest import STACK
from tests.tooling import free_port, missing

INGEST = f"{STACK}_ese-ingest"
CLIENTS, DELAY_MS, LIMIT = 3, 200, 6000  # about 50 events/s per client: two minutes of load
SCALES = (4, 1, 3)  # then a rolling update, then back to 2


def inside(cli: Any, service: str, port: int, path: str) -> Any:
    """JSON from `path` of a stack service's unpublished port, asked inside its container."""
    label = f"com.docker.swarm.service.name={STACK}_{service}"
    (container,) = cli.containers.list(filters={"label": label, "status": "running"})
    code, out = container.exec_run(["wget", "-qO-", f"http://127.0.0.1:{port}{path}"])
    assert code == 0, out
    return json.loads(out)


def prometheus(cli: Any, path: str) -> Any:
    return inside(cli, "prometheus-server", 9090, path)


def prometheus_ingest(cli: Any) -> dict[str, str]:
    """shard -> health of the ingest targets, asked inside the Prometheus container."""
    targets = prometheus(cli, "/api/v1/targets")["data"]["activeTargets"]
    ingest = [t for t in targets if t["labels"].get("job") == "ese-server"]
    return {t["labels"]["shard"]: t["health"] for t in ingest if t["labels"]["role"] == "ingest"}


def check_replicas_seen(cli: Any, n: int) -> None:
    """HAProxy routes to exactly n replicas and Prometheus scrapes exactly n (no waiting:
    `invoke swarm.scale` returned, so both must hold now)."""
    servers = outside.haproxy_servers()
    up = [s for s, row in servers.items() if row["status"] == "UP"]
    assert len(up) == n, {s: row["status"] for s, row in servers.items()}
    targets = prometheus_ingest(cli)
    assert len(targets) == n and set(targets.values()) == {"up"}, targets
    assert all(s.startswith("ese-ingest@") for s in targets), targets


def service_replicas(cli: Any) -> tuple[int, list[str]]:
    (svc,) = cli.api.services(filters={"name": INGEST})
    tasks = cli.api.tasks(filters={"service": INGEST, "desired-state": "running"})
    return svc["Spec"]["Mode"]["Replicated"]["Replicas"], [t["Status"]["State"] for t in tasks]


def test_scale_and_roll_the_ingest_service_under_load(swarm: harness.Stack) -> None:
    steps: list[str] = []

    def drill(watcher: containers.IpWatcher) -> None:
        outside.wait_until(lambda: watcher.running_now() == CLIENTS, 60, "all clients running")
        time.sleep(2)
        for n in SCALES:
            started = time.monotonic()
            harness.invoke("swarm.scale", "--ingest", str(n), timeout=300)
            check_replicas_seen(swarm.cli, n)
            steps.append(f"scale {n}: {time.monotonic() - started:.1f}s")
            assert watcher.running_now() == CLIENTS, f"clients ended during the drill: {steps}"
        started = time.monotonic()
        subprocess.run(
            ["docker", "service", "update", "--force", "--detach", INGEST],
            check=True,
            timeout=60,
            capture_output=True,
        )

        def rolled() -> bool:
            svc = swarm.cli.api.services(filters={"name": INGEST})[0]
            state = (svc.get("UpdateStatus") or {}).get("State", "")
            assert not state.startswith("rollback"), svc["UpdateStatus"]
            return state == "completed"

        outside.wait_until(rolled, 240, "rolling update of the ingest service completed", 1)
        steps.append(f"roll 3: {time.monotonic() - started:.1f}s")
        assert watcher.running_now() == CLIENTS, f"clients ended during the roll: {steps}"
        harness.invoke("swarm.scale", "--ingest", "2", timeout=300)
        check_replicas_seen(swarm.cli, 2)
        assert watcher.running_now() > 0, f"clients ended before the last scale: {steps}"

    phase = harness.run_clients(
        swarm, clients=CLIENTS, delay_ms=DELAY_MS, limit=LIMIT, during=drill, timeout=600
    )
    print(
        f"drill steps: {steps}; client phase {phase.seconds:.0f}s; "
        f"retries {sum(r.count('retries') for r in phase.runs)}"
    )
    harness.record("swarm drill: client phase", phase.seconds)
    # Every acknowledged event stored once, per client; no client gave up on an event.
    harness.check_phase(phase, CLIENTS, LIMIT)
    assert service_replicas(swarm.cli) == (2, ["running", "running"])


def test_alertmanager_exporter_and_rules_run_in_the_stack(swarm: harness.Stack) -> None:
    """Alertmanager and redis_exporter converged; Prometheus scrapes the exporter, has the rule
    group loaded, sends to Alertmanager; `invoke status` lists the alerts from the stack."""
    cli = swarm.cli
    for short in ("alertmanager", "redis-exporter"):
        name = f"{STACK}_{short}"
        (svc,) = cli.api.services(filters={"name": name})
        assert not svc["Endpoint"].get("Ports"), f"{name} publishes a port"

        def converged(name: str = name) -> bool:
            tasks = cli.api.tasks(filters={"service": name, "desired-state": "running"})
            return [t["Status"]["State"] for t in tasks] == ["running"]

        outside.wait_until(converged, 60, f"{name} has its one task running", 1)

    topo = load()
    stores = set(topo.swarm.redis_services)  # redis-1 (the first master) and its replicas

    def exporter_up(job: str = "redis", count: int = len(stores)) -> list[str] | None:
        targets = prometheus(cli, "/api/v1/targets")["data"]["activeTargets"]
        found = [t for t in targets if t["labels"]["job"] == job]
        up = [t["labels"]["instance"] for t in found if t["health"] == "up"]
        return sorted(up) if len(found) == len(up) == count else None

    # One target per Redis through the one exporter (multi-target), named after its Redis.
    instances = outside.wait_until(exporter_up, 60, "Prometheus scrapes every Redis", 1)
    assert set(instances) == stores, instances
    sentinels = outside.wait_until(
        lambda: exporter_up("redis-sentinel", topo.sentinel.instances),
        60,
        "Prometheus scrapes every Sentinel",
        1,
    )
    assert len(sentinels) == topo.sentinel.instances, sentinels
    # The exporter logged in with the password from the secret file: each Redis' own numbers.
    query = "/api/v1/query?query=redis_memory_max_bytes"
    found = prometheus(cli, query)["data"]["result"]
    assert {s["metric"]["instance"] for s in found} == stores, found
    assert all(float(s["value"][1]) == 512 * 1024**2 for s in found), found

    def replicated() -> bool:
        # The master has every replica connected (the replication the acks rely on).
        query = '/api/v1/query?query=redis_connected_slaves{job="redis"}'
        result = prometheus(cli, query)["data"]["result"]
        return max((float(s["value"][1]) for s in result), default=0) == len(stores) - 1

    outside.wait_until(replicated, 60, "the master has every replica connected", 1)

    groups = prometheus(cli, "/api/v1/rules")["data"]["groups"]
    assert [g["name"] for g in groups] == ["ese"], groups
    names = {r["name"] for r in groups[0]["rules"]}
    assert {"EseShardDown", "EseStoreNearlyFull", "EseRedisDown"} <= names, names
    assert all(r["health"] == "ok" for r in groups[0]["rules"]), groups[0]["rules"]

    def alertmanager_found() -> bool:
        found = prometheus(cli, "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        return [a["url"] for a in found] == ["http://alertmanager:9093/api/v2/alerts"]

    outside.wait_until(alertmanager_found, 30, "Prometheus sends alerts to alertmanager", 1)
    # EseShardDown selects up{job="ese-server"} and names the shard and role: every replica's
    # target has both, the shard label its own.
    targets = prometheus(cli, "/api/v1/targets")["data"]["activeTargets"]
    shards = [t["labels"] for t in targets if t["labels"]["job"] == "ese-server"]
    assert {s["role"] for s in shards} == {"ingest", "analytics"}, shards
    assert len({s["shard"] for s in shards}) == len(shards), shards
    firing = prometheus(cli, "/api/v1/alerts")["data"]["alerts"]
    print("Prometheus alerts:", [(a["labels"], a["state"]) for a in firing])
    held = inside(cli, "alertmanager", 9093, "/api/v2/alerts")
    print("Alertmanager alerts:", [a["labels"] for a in held])

    status = harness.invoke("status", timeout=120).stdout
    section = status.split("Alerts (docker exec ese_alertmanager", 1)[1].split("\n")[1:]
    assert section and "unreachable" not in section[0], status
    assert "maxmemory" in status.split("Redis memory", 1)[1], status
    # The replicated store: which Redis is master, its replicas' lag, what the Sentinels say.
    store = status.split("Replicated store", 1)[1]
    assert "  master: redis-1" in store, status
    assert store.count("  replica redis-") == len(stores) - 1, status
    assert "last acknowledged" in store and "names redis-1:6379 the master" in store, status


def test_the_pages_origin_gets_through_the_swarm_load_balancer(swarm: harness.Stack) -> None:
    """`invoke webclient` serves the page on localhost:3006: its preflight through HAProxy gets a
    replica's grant, and another origin gets none."""
    ask = {"Access-Control-Request-Method": "POST"}
    for origin, granted in (("http://localhost:3006", True), ("http://elsewhere:1", False)):
        req = urllib.request.Request(
            f"{outside.LB}/event", method="OPTIONS", headers={"Origin": origin, **ask}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 204
            allowed = resp.headers.get("Access-Control-Allow-Origin")
        assert allowed == (origin if granted else None), (origin, allowed)


def test_redeploy_through_a_registry_keeps_the_scale(swarm: harness.Stack) -> None:
    binary = "/usr/bin/docker-registry"
    if not Path(binary).exists():
        missing("docker-registry", "apt-get install docker-registry")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n",
            encoding="utf-8",
        )
        registry = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        try:
            outside.wait_until(
                lambda: outside.request("GET", f"http://127.0.0.1:{port}/v2/", timeout=2)[0] == 200,
                30,
                "registry answers",
            )
            harness.invoke("swarm.scale", "--ingest", "3", timeout=300)
            harness.invoke("swarm.up", "--registry", f"127.0.0.1:{port}", timeout=900)
            images = {
                s["Spec"]["Name"]: s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
                for s in swarm.cli.api.services(
                    filters={"label": f"com.docker.stack.namespace={STACK}"}
                )
            }
            assert all(i.startswith(f"127.0.0.1:{port}/") for i in images.values()), images
            assert service_replicas(swarm.cli) == (3, ["running"] * 3)
            check_replicas_seen(swarm.cli, 3)
        finally:
            registry.terminate()
            registry.wait(20)
            untag(swarm.cli, f"127.0.0.1:{port}/")


def untag(cli: Any, prefix: str) -> None:
    """Drop the tags a push under `prefix` added; the images keep their own names."""
    for image in cli.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                cli.images.remove(tag)


GWBRIDGE = "docker_gwbridge"


def bridge_lines(output: str) -> list[str]:
    """What `swarm.down --leave` said about docker_gwbridge (not its progress lines): that it
    removed it, found it gone, left it with the engine's reason, or kept it."""
    return [
        line
        for line in output.splitlines()
        if f"network {GWBRIDGE}" in line and not line.startswith("[")
    ]


def test_swarm_down_leaves_nothing(swarm: harness.Stack) -> None:
    cli = swarm.cli
    created = (harness.REPO_ROOT / "docker" / ".swarm-created").exists()
    harness.invoke("down", "--volumes", timeout=300)
    done = harness.invoke("swarm.down", "--volumes", "--leave", timeout=300)
    label = {"label": f"com.docker.stack.namespace={STACK}"}
    assert not cli.volumes.list(filters=label)
    assert not cli.containers.list(all=True, filters=label)
    assert not containers.project_containers(cli, containers.FRONTEND)
    state = (cli.info().get("Swarm") or {}).get("LocalNodeState")
    if created:
        assert state == "inactive"
        # The bridge swarm init made is gone, unless the task said in one line that it left
        # it and why (an engine that still counts an endpoint on it frees it only when dockerd
        # restarts), or that it kept one that was there before the swarm.
        there = [n for n in cli.networks.list(names=[GWBRIDGE]) if n.name == GWBRIDGE]
        (said,) = bridge_lines(done.stdout)
        if there:
            assert said.startswith((f"left network {GWBRIDGE}: ", f"kept network {GWBRIDGE}: "))
            assert said.split(": ", 1)[1].strip(), said
        else:
            assert said in (f"removed network {GWBRIDGE}", f"network {GWBRIDGE} is gone"), said
    else:  # a swarm the user made stays; the stack's objects are gone from it
        assert not bridge_lines(done.stdout)
        assert not cli.api.services(filters=label)
        assert not cli.networks.list(filters=label)
        assert not cli.secrets.list(filters=label)
        assert not cli.configs.list(filters=label)
