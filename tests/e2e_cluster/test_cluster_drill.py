"""The cluster drill: a worker node lost while clients write through the load balancer, ingest
scaled up and down, the node brought back; nothing acknowledged is lost or stored twice, and
`invoke cluster.down --volumes` leaves nothing of the cluster."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Browser

from ese.cluster import nodes, registry, spec
from ese.engine import images
from tests.browsers import chromium, new_page, wait_for
from tests.consumer import dashboard
from tests.e2e import containers, harness, outside, page
from tests.e2e_cluster import view
from tests.e2e_cluster.conftest import NODES

__all__ = ["chromium"]  # the browser fixture, for the page's test

CLIENTS, DELAY_MS, LIMIT = 3, 200, 4000  # about 50 events/s per client
BOUND = 30  # seconds: HAProxy drops the lost replicas and the swarm replaces them
INGEST, NAMES = view.INGEST, view.NAMES
tasks_of, on_cluster, lb_addresses = view.tasks_of, view.on_cluster, view.lb_addresses


def test_every_service_is_healthy_and_ingest_spreads(cluster: harness.Stack, manager: Any) -> None:
    ingest = tasks_of(manager, INGEST)
    assert {t["state"] for t in ingest} == {"running"}, ingest
    assert len({t["node"] for t in ingest}) >= 2, ingest
    stack = {"label": f"com.docker.stack.namespace={view.STACK}"}
    for service in manager.services.list(filters=stack):
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
    master = view.node_of(manager, view.sentinel_master())
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
import json, os, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8501/_stcore/health", timeout=5) as r:
    assert r.read().strip() == b"ok"
url, token = os.environ["ESE_SERVER_URL"], os.environ["ESE_ANALYTICS_TOKEN"]
ask = urllib.request.Request(url.replace("/events", "/stats"))
ask.add_header("Authorization", "Bearer " + token)
with urllib.request.urlopen(ask, timeout=5) as r:
    print(url, json.load(r)["total"])
"""


def consumer_reads(box: Any, what: str) -> tuple[str, int]:
    """(the URL it polls, the shard's total there), asked inside the consumer's container."""

    def serves() -> str | None:
        code, out = box.exec_run(["python", "-c", PROBE])
        return out.decode().strip() if code == 0 else None

    url, total = outside.wait_until(serves, 90, what, 2).split()
    logs = box.logs().decode(errors="replace")
    assert "Traceback" not in logs, logs[-2000:]
    return url, int(total)


def load_images(docker_cli: Any, engine: Any, keys: tuple[str, ...]) -> None:
    """Give a node this machine's images, through the cluster's registry, under their local
    names: what another machine with this repository would have built for itself."""
    port = registry.host_port(registry.find(docker_cli, view.TOPO))
    assert port, "the registry publishes no port"
    # The refs `invoke consumer` picks on this machine (official, else the offline stand-ins).
    chosen = images.plan(view.TOPO, "auto", docker_cli, only=keys, dry=True, report=lambda _: None)
    local = {key: chosen.ref(key) for key in keys}
    for key, ref in registry.push(docker_cli, view.TOPO, local, port).items():
        engine.images.pull(ref).tag(local[key])


def shown_total(value: Any) -> int | None:
    """The dashboard's "Total events" metric (dashboard.PROBE's answer), once it shows one.

    Not `dashboard.ready`: that also waits for the charts, which show only events whose time
    is in the dashboard's window, and the drill's clients ended a while ago."""
    metrics = value.get("metrics") if isinstance(value, dict) else None
    if not metrics or "Total events" not in metrics:
        return None
    return int(str(metrics["Total events"]).replace(",", ""))


def shows_the_stored_total(browser: Any, token: str, timeout: float) -> Any:
    """Wait until the dashboard in `browser` shows the analytics shard's total; what it shows."""
    total = outside.stats(token)["total"]
    done, shown = wait_for(
        browser, dashboard.PROBE, lambda v: shown_total(v) == total, timeout=timeout
    )
    assert done, (total, shown)
    return shown


def test_invoke_consumer_remote_on_another_node_than_the_analytics_shard(
    cluster: harness.Stack, manager: Any, docker_cli: Any, chromium: Browser
) -> None:
    """`invoke consumer --remote` with DOCKER_HOST at a node other than the analytics shard's:
    its consumer reads the shard through this machine's LAN address, as one on another
    machine would, and its dashboard, opened in a browser on that node's address, shows the
    events stored, then new ones."""
    (shard,) = tasks_of(manager, f"{view.STACK}_{view.TOPO.analytics_shard.name}")
    other = next(n for n in NAMES if n != shard["node"])
    engine = nodes.client(other, timeout=300)
    load_images(docker_cli, engine, ("python_base", "ese_consumer"))
    out = view.on_node(other, "consumer", "--remote", timeout=300)
    assert f"on the machine of DOCKER_HOST={spec.docker_host(other)}" in out, out
    box = engine.containers.get(view.TOPO.consumer.name)
    try:
        url, total = consumer_reads(box, f"the consumer on {other} serves and reads the shard")
        assert "host.docker.internal" not in url and url.endswith(":2003/events"), url
        assert total >= CLIENTS * LIMIT, total
        networks = docker_cli.containers.get(other).attrs["NetworkSettings"]["Networks"]
        address = networks[view.TOPO.cluster.network]["IPAddress"]
        browser = new_page(chromium, (1400, 1800))
        try:
            browser.goto(f"http://{address}:{view.TOPO.consumer.port}/")
            shows_the_stored_total(browser, cluster.analytics_token, timeout=90)
            page.post_clicks(cluster.ingest_token, 3)  # new events, after the page was drawn
            shown = shows_the_stored_total(browser, cluster.analytics_token, timeout=60)
            assert shown["exceptions"] == 0, shown
        finally:
            browser.context.close()
        print(f"consumer on {other} reads the analytics shard on {shard['node']} via {url}")
    finally:
        box.remove(force=True)


def test_the_host_consumer_and_page_work_against_the_cluster(
    cluster: harness.Stack, docker_cli: Any, chromium: Browser
) -> None:
    """`invoke consumer` and `invoke webclient` on this machine, unchanged: the consumer reads
    the analytics shard, the page's clicks reach the store through the load balancer."""
    harness.invoke("consumer", timeout=300)
    box = docker_cli.containers.get(view.TOPO.consumer.name)
    url, total = consumer_reads(box, "this machine's consumer serves and reads the shard")
    assert "host.docker.internal" in url and total > 0, (url, total)
    since = cluster.stream_end()
    harness.invoke("webclient", timeout=300)  # removed by `invoke down` at the end
    page.click(chromium, 3)
    page.stored_clicks(cluster.analytics_token, since, 3)
