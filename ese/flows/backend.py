"""`invoke backend`: images, compose up, health wait, Grafana, the endpoint table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ese.engine import images, readings, server_image, waits
from ese.errors import EseError
from ese.flows import endpoints, provisioning, shared
from ese.host import ports, sdk, secrets
from ese.paths import BACKEND_COMPOSE
from ese.render.compose_files import BACKEND_IMAGES
from ese.render.haproxy_cfg import BACKEND, CORS_VAR
from ese.topology import Topology


def check_ports(
    topo: Topology,
    running: set[str],
    is_free: Callable[[int, str], bool] | None = None,
    holder: Callable[[int], str] | None = None,
) -> None:
    """Fail before `up` when a port the backend publishes is held by something else."""
    is_free, holder = is_free or ports.is_free, holder or ports.holder
    for svc in topo.published():
        if svc.name == topo.consumer.name or svc.name in running:
            continue  # the consumer has its own task; a running service holds its own port
        if not is_free(svc.port, svc.bind):
            raise EseError(
                ports.busy_message(svc.name, svc.port, holder(svc.port)),
                "stop that process or change the port in topology.toml (then `invoke render`)",
            )


def backend(
    *,
    build: bool,
    timeout: float,
    grafana_timeout: float,
    log_lines: int,
    images_mode: str,
    grafana_url_override: str = "",
    auth: bool = True,
    webclient_port: int,
    verbose: bool,
) -> images.Plan:
    """Bring up project ese-backend and provision Grafana; return the images it used.

    Without `auth` the shards take requests without tokens, as the original demo's clients
    (which send none) need. Builds and compose say a line each unless `verbose`.
    """
    topo = shared.topology()
    shared.render_if_stale(topo)
    values = shared.ensure_env()
    cli = shared.docker()
    project = topo.backend_project
    running = {i.service for i in sdk.project_containers(cli, project) if i.ok}
    check_ports(topo, running)
    plan = shared.image_plan(topo, images_mode, cli, only=BACKEND_IMAGES, verbose=verbose)
    server_image.build(topo, plan, cli, build, verbose)
    lan_ip = shared.lan_or_none()  # once: the page's origins and the endpoint table
    env = {**plan.env(), **shard_env(topo, auth, webclient_port, lan_ip)}
    up = ["up", "-d", "--remove-orphans"]
    shared.run_compose(project, BACKEND_COMPOSE, *up, env=env, show_output=verbose)
    wait_backend(topo, cli, plan, timeout, log_lines)
    wait_routed(topo, timeout)
    provisioning.provision_after_up(topo, values, grafana_url_override, grafana_timeout, cli)
    print()
    print(endpoints.table(endpoints.rows(topo, lan_ip, auth=auth)))
    if not auth:
        print(f"\n{endpoints.AUTH_OFF}")
    return plan


def page_origins(webclient_port: int, lan_ip: str | None) -> str:
    """Where `invoke webclient` serves the page: localhost, 127.0.0.1 and the LAN address.

    Space-separated: the shards take spaces or commas, HAProxy only spaces.
    """
    hosts = ["localhost", "127.0.0.1", *filter(None, [lan_ip])]
    return " ".join(f"http://{h}:{webclient_port}" for h in hosts)


def shard_env(
    topo: Topology, auth: bool, webclient_port: int, lan_ip: str | None
) -> dict[str, str]:
    """What the shards get from the task: the page's origins, and no tokens when `auth` is off.

    The variables given here win over docker/.env, so `--no-auth` needs no edit of the file
    and a later run without it brings the tokens back.
    """
    env = {CORS_VAR: page_origins(webclient_port, lan_ip)}
    if not auth:
        env.update({secrets.INGEST_TOKEN: "", secrets.ANALYTICS_TOKEN: ""})
    return env


def wait_backend(
    topo: Topology, cli: Any, plan: images.Plan, timeout: float, log_lines: int
) -> None:
    """Wait until every backend service is healthy; on failure show the culprits' logs."""
    project = topo.backend_project
    services = shared.backend_services(topo)
    try:
        waits.wait_healthy(lambda: sdk.project_containers(cli, project), services, timeout)
    except waits.NotHealthy as exc:
        for svc in exc.services[:3]:
            print(f"--- last {log_lines} log lines of {svc} ---")
            tail = ["logs", "--no-color", "--tail", str(log_lines), svc]
            shared.run_compose(project, BACKEND_COMPOSE, *tail, env=plan.env(), check=False)
        raise


ROUTED = waits.Wording(
    "ingest shards routed by the load balancer",
    "routed",
    "not routed by the load balancer",
    "`invoke status` shows HAProxy's view; `invoke logs -s elb` its log",
)


def wait_routed(topo: Topology, timeout: float, get: readings.Fetch | None = None) -> float:
    """Wait until HAProxy marks every ingest shard UP, so "ready" means events get through.

    Why: a shard that was just recreated (new address) is healthy before HAProxy has resolved
    it again; the first requests would meet a 503 from the load balancer.
    """
    lb = topo.balancer
    url = readings.local_url(lb.bind, lb.port, f"{lb.stats_path};csv")
    names = [s.name for s in topo.ingest_shards]
    fetch = get or readings.fetch

    def look() -> waits.Round:
        try:
            rows = readings.haproxy_servers(fetch(url, {}))
        except (OSError, ValueError) as exc:
            return waits.Round({lb.name: f"stats unreachable: {exc}"})
        seen = {server: state for backend, server, state, _ in rows if backend == BACKEND}
        return waits.Round({n: seen.get(n, "missing") for n in names if seen.get(n) != "UP"})

    return waits.wait_for(look, len(names), timeout, ROUTED, waits.NotHealthy, waits.QUICK_PACE)
