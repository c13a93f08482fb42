"""The flows behind the Invoke tasks: render, bring up, wait, provision, tear down, inspect."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ese import (
    consumer_container,
    dockerenv,
    endpoints,
    grafana_api,
    health,
    lan,
    ports,
    render,
    secrets,
)
from ese import status as status_report
from ese.compose import Compose, docker_compose, join
from ese.errors import EseError
from ese.paths import BACKEND_COMPOSE, ENV_FILE, FRONTEND_COMPOSE, REPO_ROOT
from ese.topology import Topology, TopologyError, load

GRAFANA_DIR = REPO_ROOT / "grafana"


def run_compose(c: Any, project: str, file: Path, *args: str, **kwargs: Any) -> Any:
    """docker_compose() with this install's env file (looked up at call time, for tests)."""
    return docker_compose(c, project, file, *args, env_file=ENV_FILE, **kwargs)


def topology() -> Topology:
    try:
        return load()
    except TopologyError as exc:
        raise EseError(str(exc), "fix topology.toml, then run `invoke render`") from None


def render_if_stale(topo: Topology, root: Path = REPO_ROOT) -> list[str]:
    """Regenerate the configs when the topology changed; report what was written."""
    changed = render.write(topo, root)
    for rel in changed:
        print(f"rendered {rel}")
    return changed


def ensure_env(path: Path | None = None) -> dict[str, str]:
    path = path or ENV_FILE  # looked up at call time so tests can point it elsewhere
    values, written = secrets.ensure(path)
    if written:
        print(f"wrote {', '.join(written)} to {endpoints.show_path(path)} (keep it private)")
    return values


def backend_services(topo: Topology) -> list[str]:
    return [
        topo.redis.name,
        *(s.name for s in topo.shards),
        topo.balancer.name,
        topo.prometheus.name,
        topo.grafana.name,
    ]


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


def frontend_env(be_server: str, delay_ms: int, limit: int) -> dict[str, str]:
    """Environment of the client containers, handed to compose via env= (works on every OS)."""
    return {
        "REACT_APP_BE_SERVER": be_server,
        "ESE_EVENT_DELAY_MS": str(delay_ms),
        "ESE_EVENT_LIMIT": str(limit),
    }


def check_url(url: str, flag: str, example: str = "http://host:8100") -> str:
    """`url` when it is http(s)://host[:port] with a port in 1..65535, else an EseError."""
    if flag.startswith("--"):
        hint = f"e.g. {flag} {example}"
    else:
        hint = f"e.g. {flag}={example}" if flag.startswith("INVOKE_") else f"e.g. {example}"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise EseError(f"{flag} {url!r} is not a valid URL ({exc})", hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EseError(f"{flag} {url!r} is not an http(s) URL", hint)
    if port == 0:
        raise EseError(f"{flag} {url!r} has port 0 (must be 1-65535)", hint)
    return url


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EseError(f"{what} {path} not found", "run `invoke render`") from None
    except ValueError as exc:
        raise EseError(f"{what} {path} is not valid JSON: {exc}", "fix or re-render it") from None
    if not isinstance(data, dict):
        raise EseError(f"{what} {path} is not a JSON object", "fix or re-render it")
    return data


def grafana_container(topo: Topology, cli: Any = None) -> str:
    """Name of the running Grafana container for the password-reset hint (best effort)."""
    try:
        cli = cli or dockerenv.client()
        names = dockerenv.service_container_names(cli, topo.backend_project, topo.grafana.name)
        return names[0] if names else ""
    except EseError:
        return ""


def provision_grafana(
    topo: Topology,
    url: str,
    user: str,
    password: str,
    timeout: float,
    dashboard_file: Path | None = None,
    container: str = "",
) -> grafana_api.Report:
    datasource = grafana_api.datasource_spec(
        load_json(GRAFANA_DIR / "datasource.json", "datasource file")
    )
    dashboard = load_json(dashboard_file or GRAFANA_DIR / "dashboard.json", "dashboard file")
    client = grafana_api.GrafanaClient(url, user, password, container=container)
    print(f"provisioning Grafana at {url} (waiting up to {timeout:.0f}s for /api/health)")
    report = grafana_api.provision(client, datasource, dashboard, timeout)
    for line in report.lines():
        print(line)
    return report


def reprovision_grafana(
    *,
    url: str,
    url_source: str,
    user: str | None,
    password: str | None,
    dashboard: Path | None,
    timeout: float,
) -> grafana_api.Report:
    """`invoke grafana`: the URL checked first; credentials from docker/.env unless given."""
    topo = topology()
    base = grafana_url(topo, url, url_source)  # a bad --url is one line, not a long wait
    env = secrets.read() if user is None or password is None else {}
    return provision_grafana(
        topo,
        base,
        user or env.get(secrets.GRAFANA_USER, "admin"),
        password or env.get(secrets.GRAFANA_PASSWORD, ""),
        timeout,
        dashboard,
        grafana_container(topo),
    )


def grafana_url(topo: Topology, configured: str = "", flag: str = "--url") -> str:
    """The configured Grafana URL (validated; `flag` names where it came from) or the default."""
    if configured:
        return check_url(configured, flag, "http://127.0.0.1:3000").rstrip("/")
    g = topo.grafana
    host = "127.0.0.1" if g.bind in endpoints.ANY else g.bind
    return f"http://{host}:{g.port}"


def lan_or_none(find: Callable[[], str] | None = None) -> str | None:
    try:
        return (find or lan.lan_ipv4)()
    except EseError:
        return None


def backend(
    c: Any,
    *,
    build: bool,
    timeout: float,
    grafana_timeout: float,
    log_lines: int,
    grafana_url_override: str = "",
    compose: Compose | None = None,
    cli: Any = None,
) -> None:
    topo = topology()
    render_if_stale(topo)
    values = ensure_env()
    cli = cli or dockerenv.client()
    project = topo.backend_project
    running = {i.service for i in dockerenv.project_containers(cli, project) if i.ok}
    check_ports(topo, running)
    up = ["up", "-d", "--remove-orphans", *(["--build"] if build else [])]
    run_compose(c, project, BACKEND_COMPOSE, *up, compose=compose)
    services = backend_services(topo)
    try:
        health.wait_healthy(
            lambda: dockerenv.project_containers(cli, project), services, timeout, print
        )
    except health.NotHealthy as exc:
        for svc in exc.services[:3]:
            print(f"--- last {log_lines} log lines of {svc} ---")
            tail = ["logs", "--no-color", "--tail", str(log_lines), svc]
            run_compose(c, project, BACKEND_COMPOSE, *tail, compose=compose, check=False)
        raise
    provision_grafana(
        topo,
        grafana_url(topo, grafana_url_override, "INVOKE_ESE_GRAFANA_URL"),
        values[secrets.GRAFANA_USER],
        values[secrets.GRAFANA_PASSWORD],
        grafana_timeout,
        container=grafana_container(topo, cli),
    )
    print()
    print(endpoints.table(endpoints.rows(topo, lan_or_none())))


def frontend(
    c: Any,
    *,
    clients: int,
    be_server: str,
    delay_ms: int,
    limit: int,
    build: bool = False,
    compose: Compose | None = None,
    cli: Any = None,
    be_server_flag: str = "--be-server",
) -> None:
    topo = topology()
    check_url(be_server, be_server_flag)
    if urlsplit(be_server).hostname in ("localhost", "127.0.0.1", "::1"):
        print("note: inside a container localhost is the container itself; the host is "
              "host.docker.internal")  # fmt: skip
    render_if_stale(topo)
    ensure_env()
    cli = cli or dockerenv.client()  # a clear "Docker is not running" before compose runs
    args = [
        "up",
        "-d",
        *(["--build"] if build else []),
        "--scale",
        f"{topo.clients.service}={clients}",
    ]
    env = frontend_env(be_server, delay_ms, limit)
    run_compose(c, topo.frontend_project, FRONTEND_COMPOSE, *args, env=env, compose=compose)
    print(f"{clients} x {topo.clients.service} sending to {be_server} (`invoke status` to watch)")


def consumer_url(
    topo: Topology, remote: bool, server_url: str | None, find: Callable[[], str] | None = None
) -> str:
    """The live-events URL the consumer polls."""
    if server_url:
        return check_url(server_url, "--server-url")
    host = (find or lan.lan_ipv4)() if remote else "host.docker.internal"
    return endpoints.analytics_url(topo, host)


def check_consumer_port(
    topo: Topology,
    cli: Any,
    port: int,
    is_free: Callable[[int, str], bool] | None = None,
    holder: Callable[[int], str] | None = None,
) -> None:
    """Fail when `port` is out of range or held by anything but our own consumer container."""
    name = topo.consumer.name
    if not 1 <= port <= 65535:
        raise EseError(f"--port must be between 1 and 65535, got {port}", "e.g. --port 8501")
    if consumer_container.holds_port(cli, name, port):
        return  # the running consumer holds it; `run` replaces that container
    is_free, holder = is_free or ports.is_free, holder or ports.holder
    if not is_free(port, topo.consumer.bind):
        raise EseError(
            ports.busy_message(name, port, holder(port)),
            f"pass a free one, e.g. --port {port + 1 if port < 65535 else 8501} "
            f"(a running {name} container was left as it is)",
        )


def consumer(
    *,
    remote: bool,
    server_url: str | None,
    port: int,
    build: bool = False,
    cli: Any = None,
    find: Callable[[], str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    topo = topology()
    url = consumer_url(topo, remote, server_url, find)
    values = ensure_env()
    token = environ.get(secrets.ANALYTICS_TOKEN) or values.get(secrets.ANALYTICS_TOKEN, "")
    cli = cli or dockerenv.client()
    check_consumer_port(topo, cli, port)  # before anything replaces a working consumer
    image = topo.images["ese_consumer"].resolve(environ)
    base = topo.images["python_base"].resolve(environ)
    consumer_container.ensure_image(cli, image, base, build)
    consumer_container.run(
        cli,
        image=image,
        name=topo.consumer.name,
        host_port=port,
        container_port=topo.consumer.port,
        bind=topo.consumer.bind,
        environment={
            "ESE_SERVER_URL": url,
            "ESE_ANALYTICS_TOKEN": token,
            "ESE_POLL_SECONDS": str(topo.consumer.poll_seconds),
        },
    )
    print(f"Consumer dashboard: http://{endpoints.local_host(topo.consumer.bind)}:{port}")
    print(f"Data source URL:    {url}")


def down(c: Any, *, volumes: bool, compose: Compose | None = None, cli: Any = None) -> None:
    topo = topology()
    ensure_env()  # compose interpolates the file even for `down`
    cli = cli or dockerenv.client()
    args = ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]
    env = frontend_env(defaults_be_server(topo), topo.clients.delay_ms, topo.clients.limit)
    run_compose(c, topo.frontend_project, FRONTEND_COMPOSE, *args, env=env, compose=compose)
    run_compose(c, topo.backend_project, BACKEND_COMPOSE, *args, compose=compose)
    if consumer_container.remove(cli, topo.consumer.name):
        print(f"removed container {topo.consumer.name}")


def defaults_be_server(topo: Topology) -> str:
    return f"http://host.docker.internal:{topo.balancer.port}"


def logs(
    c: Any,
    *,
    service: str | None,
    follow: bool,
    tail: int,
    compose: Compose | None = None,
    cli: Any = None,
) -> None:
    topo = topology()
    known = [*backend_services(topo), topo.clients.service, topo.consumer.name]
    if service is not None and service not in known:
        raise EseError(f"unknown service {service!r}", f"use one of: {', '.join(known)}")
    ensure_env()
    cli = cli or dockerenv.client()  # "how to start Docker" instead of a compose/daemon error
    opts = ["logs", "--tail", str(tail), *(["--follow"] if follow else [])]
    if service is None or service in backend_services(topo):
        svc = [service] if service else []
        run_compose(c, topo.backend_project, BACKEND_COMPOSE, *opts, *svc, compose=compose)
    elif service == topo.clients.service:
        env = frontend_env(defaults_be_server(topo), topo.clients.delay_ms, topo.clients.limit)
        run_compose(
            c, topo.frontend_project, FRONTEND_COMPOSE, *opts, service, env=env, compose=compose
        )
    else:  # the consumer is a plain container, not part of a compose project
        if not consumer_container.exists(cli, service):
            raise EseError(f"no container {service!r}", "start it with `invoke consumer`")
        line = join(["docker", *opts, service], compose.windows if compose else None)
        print(f"> {line}", flush=True)
        result = c.run(line, pty=False, warn=True)
        if result is None or result.failed:
            code = "?" if result is None else result.exited
            raise EseError(f"docker logs {service} failed (exit {code})", "see the output above")


def status_containers(topo: Topology, cli: Any) -> dict[str, list[dockerenv.ContainerInfo]]:
    out = {
        topo.backend_project: dockerenv.project_containers(cli, topo.backend_project),
        topo.frontend_project: dockerenv.project_containers(cli, topo.frontend_project),
    }
    found = cli.containers.list(all=True, filters={"name": topo.consumer.name})
    out[topo.consumer.name] = [dockerenv.info(x) for x in found if x.name == topo.consumer.name]
    return out


def status_lines() -> list[str]:
    """`invoke status`: containers, HAProxy servers, Prometheus targets, events stored."""
    topo = topology()
    cli = dockerenv.client()
    env = secrets.read() if secrets.ENV_FILE.exists() else {}
    return status_report.report(topo, status_containers(topo, cli), env)
