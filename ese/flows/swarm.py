"""The flows behind `invoke swarm.up`, `swarm.scale`, `swarm.down` and the swarm part of status."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from ese.engine import commands, readings, waits
from ese.engine.readings import Fetch
from ese.errors import EseError
from ese.flows import backend as backend_flow
from ese.flows import endpoints, provisioning, shared
from ese.flows import status as status_report
from ese.host import ports, sdk, secrets
from ese.paths import DOCKER_DIR, REPO_ROOT
from ese.render import swarm_stack
from ese.render.haproxy_cfg import CORS_VAR
from ese.swarm import stack_images, state
from ese.topology import Topology

STACK_FILE = REPO_ROOT / swarm_stack.STACK_FILE
# Written when swarm.up initialised the swarm: `swarm.down --leave` leaves only that swarm.
MARKER = DOCKER_DIR / ".swarm-created"
SECRET_LABEL = "org.ese.secret"
GWBRIDGE = "docker_gwbridge"


def docker(argv: list[str], env: Mapping[str, str] | None = None, check: bool = True) -> bool:
    """Print one docker command, run it; False on failure (an EseError when `check`)."""
    result = commands.run(argv, env=env, check=False)
    if check and result.returncode != 0:
        hint = "see its output above"
        raise EseError(f"`{' '.join(argv[:3])}` failed (exit {result.returncode})", hint)
    return result.returncode == 0


def engine(shown: str, call: Callable[[], Any], hint: str = "run `invoke doctor`") -> Any:
    """Print the docker command this SDK `call` stands for, then make it; EseError on failure."""
    print(f"> {shown}", flush=True)
    try:
        return call()
    except Exception as exc:  # docker.errors.APIError, requests' connection errors
        said = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
        why = said[0] if said else type(exc).__name__
        raise EseError(f"`{shown}` failed: {why}", hint) from None


def check_count(raw: Any, flag: str, topo: Topology) -> int:
    """A replica count from a flag: a whole number between 1 and max_ingest_replicas."""
    top = topo.swarm.max_ingest_replicas
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= top or str(raw).strip().lstrip("+") != str(value):
        raise EseError(
            f"{flag} must be a whole number between 1 and {top}, got {raw!r}",
            f"e.g. {flag} 3 (raise [swarm] max_ingest_replicas in topology.toml for more)",
        )
    return value


def _service(topo: Topology, short: str) -> str:
    return f"{topo.swarm.stack}_{short}"


def expected_services(topo: Topology) -> list[str]:
    """The stack file's services (the optional ones too)."""
    return sorted(swarm_stack.services(topo))


# --- the swarm itself ------------------------------------------------------------------


def ensure_swarm(cli: Any, advertise: Callable[[], str | None] | None = None) -> bool:
    """Make this engine a swarm manager; True when this call created the swarm."""
    node = state.node_state(cli)
    if node.state == "active":
        if not node.manager:
            raise EseError(
                "this engine is a swarm worker, not a manager",
                "run `invoke swarm.up` on a manager node",
            )
        return False
    if node.state != "inactive":
        hint = "fix it (`docker info`, `docker swarm unlock`) or `docker swarm leave`"
        raise EseError(f"this engine's swarm state is {node.state!r}", hint)
    address = (advertise or shared.lan_or_none)() or "127.0.0.1"
    engine(
        f"docker swarm init --advertise-addr {address}",
        lambda: cli.swarm.init(advertise_addr=address),
    )
    MARKER.parent.mkdir(parents=True, exist_ok=True)
    MARKER.write_text(state.node_state(cli).node_id + "\n", encoding="utf-8")
    print(
        f"initialised a single-node swarm advertised on {address} "
        f"(`invoke swarm.down --leave` leaves it again)"
    )
    return True


def created_here(cli: Any) -> bool:
    """True when swarm.up created the swarm this engine is in (marker holds its node id)."""
    if not MARKER.exists():
        return False
    return MARKER.read_text(encoding="utf-8").strip() == state.node_state(cli).node_id


# --- secrets ---------------------------------------------------------------------------


def ensure_secrets(cli: Any, topo: Topology, values: Mapping[str, str]) -> dict[str, str]:
    """Create the missing Docker secrets from docker/.env; name variable -> secret name."""
    stack_name = topo.swarm.stack
    names = swarm_stack.secret_names(stack_name, values)
    existing = {
        s.name for s in cli.secrets.list(filters={"label": f"{state.STACK_LABEL}={stack_name}"})
    }
    for secret in swarm_stack.SECRETS:
        name = names[secret.name_var]
        if name in existing:
            continue
        source = f"{secret.env_key} from {endpoints.show_path(secrets.ENV_FILE)} on stdin"
        print(
            f"> docker secret create --label {state.STACK_LABEL}={stack_name} {name} - ({source})"
        )
        labels = {state.STACK_LABEL: stack_name, SECRET_LABEL: secret.key}
        cli.secrets.create(name=name, data=values[secret.env_key].encode("utf-8"), labels=labels)
    return names


def prune_secrets(cli: Any, topo: Topology, keep: set[str]) -> None:
    """Remove this stack's secrets of earlier values (best effort: one in use stays)."""
    for secret in cli.secrets.list(filters={"label": f"{state.STACK_LABEL}={topo.swarm.stack}"}):
        if secret.name not in keep:
            try:
                secret.remove()
                print(f"removed secret {secret.name} (an earlier value)")
            except Exception:  # still referenced by a task that is stopping; down removes it
                pass


# --- up --------------------------------------------------------------------------------


def published(topo: Topology) -> dict[int, str]:
    """Host port -> service, for the stack's published ports."""
    return {
        p["published"]: name
        for name, svc in swarm_stack.services(topo).items()
        for p in svc.get("ports", [])
    }


def check_ports(
    topo: Topology,
    is_free: Callable[[int, str], bool] | None = None,
    holder: Callable[[int], str] | None = None,
) -> None:
    """Before a first deploy: a busy published port would fail its task over and over."""
    is_free, holder = is_free or ports.is_free, holder or ports.holder
    for port, name in sorted(published(topo).items()):
        if not is_free(port, "0.0.0.0"):
            raise EseError(
                ports.busy_message(name, port, holder(port)),
                "stop it (a compose stack: `invoke down`) and run `invoke swarm.up` again",
            )


def deploy_env(
    values: Mapping[str, str],
    names: Mapping[str, str],
    image_refs: Mapping[str, str],
    replicas: int,
) -> dict[str, str]:
    """What `docker stack deploy` interpolates: images, secret names, replicas, Grafana user."""
    return {
        **image_refs,
        **names,
        swarm_stack.REPLICAS_VAR: str(replicas),
        secrets.GRAFANA_USER: values.get(secrets.GRAFANA_USER, "admin"),
    }


def show_failures(topo: Topology, failing: list[str], log_lines: int) -> None:
    """The failing services' tasks (with errors) and last log lines."""
    for short in failing[:3]:
        name = _service(topo, short)
        docker(["docker", "service", "ps", "--no-trunc", name], check=False)
        docker(
            ["docker", "service", "logs", "--no-task-ids", "--tail", str(log_lines), name],
            check=False,
        )


def wait_stack(
    cli: Any, topo: Topology, timeout: float, log_lines: int, only: Sequence[str] = ()
) -> float:
    """Wait until the stack's services (`only` these) run all their replicas; on a failure,
    show their tasks and logs first."""
    expected = list(only) or expected_services(topo)

    def found() -> list[state.ServiceState]:
        return state.services(cli, topo.swarm.stack)

    try:
        return state.wait_converged(found, expected, timeout)
    except state.NotConverged as exc:
        show_failures(topo, exc.services, log_lines)
        raise


def endpoint_rows(topo: Topology, lan_ip: str | None) -> list[endpoints.Row]:
    """The endpoint table of the Swarm stack (only LB, analytics and Grafana are published)."""
    lb, graf, shard = topo.balancer, topo.grafana, topo.analytics_shard
    env = endpoints.show_path(secrets.ENV_FILE)
    host = lan_ip or "localhost"
    return [
        ("Load balancer", f"http://{host}:{lb.port}", "ingest: POST /event, POST /events"),
        ("HAProxy stats", f"http://{host}:{lb.port}{lb.stats_path}", "one row per ingest replica"),
        ("Analytics", f"http://{host}:{shard.port}/events", f"token: ESE_ANALYTICS_TOKEN in {env}"),
        (
            "Grafana",
            f"http://{host}:{graf.port}/d/{graf.dashboard_uid}",
            f"login: GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD in {env}",
        ),
        (
            "Prometheus, Alertmanager",
            "(overlay network only)",
            "`invoke status` (targets, firing alerts) asks them with docker exec",
        ),
        (
            "Redis, redis_exporter, ingest",
            "(overlay network only)",
            "`invoke swarm.scale --ingest N`",
        ),
    ]


def up(
    *,
    build: bool,
    images_mode: str,
    replicas: Any,
    registry: str,
    timeout: float,
    grafana_timeout: float,
    log_lines: int,
    grafana_url_override: str = "",
    webclient_port: int = 3006,
    cli: Any = None,
) -> None:
    """Deploy (or update) the stack, wait until every replica runs, provision Grafana."""
    topo = shared.topology()
    count = None if replicas is None else check_count(replicas, "--replicas", topo)
    if registry:
        stack_images.check_registry(registry)
    shared.render_if_stale(topo)
    values = shared.ensure_env()
    cli = cli or shared.docker()
    active = state.node_state(cli).state == "active"
    current = state.ingest_replicas(cli, topo) if active else None
    if current is None:
        check_ports(topo)  # before anything changes: a busy port fails its task over and over
    lan_ip = shared.lan_or_none()  # once: the swarm's address, the page's origins, the table
    ensure_swarm(cli, lambda: lan_ip)
    refs = stack_images.resolve(cli, topo, build=build, mode=images_mode)
    if registry:
        refs = stack_images.push(cli, refs, registry)
    names = ensure_secrets(cli, topo, values)
    count = count or current or topo.swarm.ingest_replicas
    if current is not None and replicas is None:
        print(f"keeping {count} {topo.swarm.ingest_service} replicas (set by swarm.scale)")
    argv = ["docker", "stack", "deploy", "-c", str(STACK_FILE), "--prune"]
    # Without a registry the local images are the only copies: asking a registry for their
    # digest only warns. With one, the digest pins the same image on every node.
    argv += ["--resolve-image", "always" if registry else "never", topo.swarm.stack]
    env = deploy_env(values, names, refs, count)
    env[CORS_VAR] = backend_flow.page_origins(webclient_port, lan_ip)
    docker(argv, env=env)
    wait_stack(cli, topo, timeout, log_lines)
    prune_secrets(cli, topo, set(names.values()))
    provisioning.provision_after_up(topo, values, grafana_url_override, grafana_timeout)
    print()
    print(endpoints.table(endpoint_rows(topo, lan_ip)))


# --- scale -----------------------------------------------------------------------------


def balanced(
    cli: Any, topo: Topology, n: int, get: Fetch = readings.fetch
) -> tuple[Callable[[], tuple[bool, str]], Callable[[], tuple[bool, str]]]:
    """Probes: HAProxy routes to exactly n replicas; Prometheus scrapes exactly n."""

    def lb() -> tuple[bool, str]:
        return state.lb_view(state.lb_servers(get(state.lb_stats_url(topo), {})), n)

    def prom() -> tuple[bool, str]:
        text = state.prometheus_get(cli, topo, "/api/v1/targets?state=active")
        return state.prometheus_view(state.ingest_targets(text), n)

    return lb, prom


def scale(
    *,
    ingest: Any,
    timeout: float,
    log_lines: int,
    cli: Any = None,
    get: Fetch | None = None,
) -> dict[str, float]:
    """Scale the ingest service; wait until its replicas run, HAProxy and Prometheus see them."""
    topo = shared.topology()
    if ingest is None:
        raise EseError("--ingest is required", "e.g. invoke swarm.scale --ingest 3")
    n = check_count(ingest, "--ingest", topo)
    cli = cli or shared.docker()
    if state.ingest_replicas(cli, topo) is None:
        raise EseError(f"stack {topo.swarm.stack} is not deployed", "run `invoke swarm.up` first")
    service = _service(topo, topo.swarm.ingest_service)
    started = time.monotonic()
    shown = f"docker service scale --detach {service}={n}"
    engine(shown, lambda: cli.services.get(service).scale(n))
    wait_stack(cli, topo, timeout, log_lines, only=[topo.swarm.ingest_service])
    lb, prom = balanced(cli, topo, n, get or readings.fetch)
    again = "run `invoke status` and `invoke swarm.scale` again"
    waits.wait_reached(lb, f"HAProxy routes to {n} replicas", timeout, again)
    seconds_lb = time.monotonic() - started
    waits.wait_reached(prom, f"Prometheus scrapes {n} replicas", timeout, again)
    seconds_prom = time.monotonic() - started
    print(
        f"{service}: {n} replicas, in HAProxy after {seconds_lb:.1f}s, "
        f"in Prometheus after {seconds_prom:.1f}s"
    )
    return {"haproxy": seconds_lb, "prometheus": seconds_prom}


# --- down ------------------------------------------------------------------------------


def _leftovers(cli: Any, stack_name: str, kinds: tuple[str, ...]) -> list[str]:
    label = {"label": f"{state.STACK_LABEL}={stack_name}"}
    found: list[str] = []
    if "services" in kinds:
        found += [f"service {s['Spec']['Name']}" for s in cli.api.services(filters=label)]
    if "networks" in kinds:
        found += [f"network {n.name}" for n in cli.networks.list(filters=label)]
    if "containers" in kinds:
        found += [f"container {x.name}" for x in sdk.list_containers(cli, label)]
    return found


def wait_gone(
    cli: Any,
    stack_name: str,
    kinds: tuple[str, ...],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until nothing of `kinds` of the stack is left (stack rm returns before that)."""
    start, last = clock(), ""
    while True:
        left = _leftovers(cli, stack_name, kinds)
        if not left:
            return
        line = f"waiting for {len(left)} to go: {', '.join(left[:4])}"
        if line != last:
            print(f"[{clock() - start:4.0f}s] {line}")
            last = line
        if clock() - start >= timeout:
            raise EseError(
                f"still there after {timeout:.0f}s: {', '.join(left)}",
                "run `invoke swarm.down` again, or remove them with docker",
            )
        sleep(1.0)


def down(*, volumes: bool, leave: bool, timeout: float, cli: Any = None) -> None:
    """Remove the stack (services, network, secrets, configs), its volumes, and the swarm."""
    topo = shared.topology()
    cli = cli or shared.docker()
    name = topo.swarm.stack
    node = state.node_state(cli)
    if node.state != "active":
        print("this engine is in no swarm: no stack to remove")
        MARKER.unlink(missing_ok=True)
        return
    label = {"label": f"{state.STACK_LABEL}={name}"}
    if cli.api.services(filters=label) or cli.networks.list(filters=label):
        docker(["docker", "stack", "rm", name])
    wait_gone(cli, name, ("services", "networks"), timeout)
    for kind, items in (
        ("secret", cli.secrets.list(filters=label)),
        ("config", cli.configs.list(filters=label)),
    ):
        for item in items:  # stack rm removes its own; these are the ones swarm.up created
            print(f"> docker {kind} rm {item.name}")
            item.remove()
    if volumes:
        wait_gone(cli, name, ("containers",), timeout)  # a volume in use cannot be removed
        for volume in cli.volumes.list(filters=label):
            print(f"> docker volume rm {volume.name}")
            volume.remove()
    if leave:
        if created_here(cli):
            engine("docker swarm leave --force", lambda: cli.swarm.leave(force=True))
            MARKER.unlink(missing_ok=True)
            # `swarm init` made this bridge for the published ports; leaving keeps it.
            for bridge in cli.networks.list(names=[GWBRIDGE]):
                print(f"removing network {GWBRIDGE}")
                with suppress(Exception):  # docker.errors.APIError: still in use; harmless
                    bridge.remove()
        else:
            print("not leaving the swarm: `invoke swarm.up` did not create it")
    print(f"stack {name} removed" + (" with its volumes" if volumes else ""))


# --- status ----------------------------------------------------------------------------


def status_lines(get: Fetch = readings.fetch, cli: Any = None) -> list[str] | None:
    """`invoke status` for the Swarm stack; None when it is not deployed here."""
    topo = shared.topology()
    cli = cli or shared.docker()
    if state.node_state(cli).state != "active":
        return None
    found = state.services(cli, topo.swarm.stack)
    if not found:
        return None
    width = max(len(s.short) for s in found)
    lines = [f"Services (swarm stack {topo.swarm.stack})"]
    lines += [f"  {s.short:<{width}}  {s.state}" for s in found]
    prom, am = topo.prometheus, topo.alertmanager
    # Prometheus and Alertmanager are not published in the Swarm stack: the URLs the compose
    # report uses are asked inside their containers instead.
    inside = {
        readings.local_url(prom.bind, prom.port, ""): (prom.name, prom.port),
        readings.local_url(am.bind, am.port, ""): (am.name, am.port),
    }

    def routed(url: str, headers: Mapping[str, str]) -> str:
        for base, (short, port) in inside.items():
            if url.startswith(base + "/"):
                return state.service_get(cli, topo, short, port, url.removeprefix(base))
        return get(url, headers)

    env = secrets.read() if Path(secrets.ENV_FILE).exists() else {}
    report = status_report.report(topo, {}, env, get=routed)
    for base, (short, _) in inside.items():
        shown = f"docker exec {_service(topo, short)}.* wget {base}"
        report = [line if line.startswith(" ") else line.replace(base, shown) for line in report]
    return lines + report
