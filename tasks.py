"""Invoke tasks for the ESE demo. Thin on purpose: the logic lives in `ese/` (tested there).

Defaults live in the `ese` config namespace (see ese/task_defaults.py); override them in
invoke.yaml or with INVOKE_ESE_<NAME> environment variables, e.g. INVOKE_ESE_CLIENTS=8.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from ese import task_defaults
from ese.errors import EseError
from ese.flows import backend as backend_flow
from ese.flows import cluster as cluster_flow
from ese.flows import consumer as consumer_flow
from ese.flows import doctor as doctor_flow
from ese.flows import frontend as frontend_flow
from ese.flows import logs as logs_flow
from ese.flows import provisioning, shared, teardown
from ese.flows import status as status_flow
from ese.flows import swarm as swarm_flow
from ese.flows import webclient as webclient_flow
from ese.host import shells
from ese.task_defaults import helps, option
from ese.validate import check_url


@contextmanager
def as_exit() -> Iterator[None]:
    """Turn an EseError into Invoke's Exit: one line on stderr, exit code 1, no traceback."""
    try:
        yield
    except EseError as exc:
        raise Exit(str(exc), code=1) from None


def source(value: str | None, key: str) -> str:
    """How the user set `key` (flag or env var), for error messages."""
    return task_defaults.source(key, value is not None)


@task
def render(c: Context) -> None:
    """Regenerate compose, HAProxy, Prometheus, Alertmanager, Grafana files from topology.toml."""
    with as_exit():
        changed = shared.render_if_stale(shared.topology())
        print(
            "generated files are up to date" if not changed else f"{len(changed)} file(s) written"
        )


def verbose_option(c: Context, flag: bool) -> bool:
    """--verbose, else ese.verbose (invoke.yaml or INVOKE_ESE_VERBOSE)."""
    return flag or bool(option(c, None, "verbose"))


@task(
    help={
        "build": "rebuild the ese-server image before starting",
        **helps("images", "auth", "verbose"),
    }
)
def backend(
    c: Context,
    build: bool = False,
    images: str | None = None,
    auth: bool = True,
    verbose: bool = False,
) -> None:
    """Start the backend, wait until healthy, provision Grafana, print the endpoints."""
    with as_exit():
        backend_flow.backend(
            build=build,
            verbose=verbose_option(c, verbose),
            images_mode=option(c, images, "images"),
            auth=auth and option(c, None, "auth"),
            webclient_port=option(c, None, "webclient_port"),
            timeout=option(c, None, "health_timeout"),
            grafana_timeout=option(c, None, "grafana_timeout"),
            log_lines=option(c, None, "log_lines"),
            grafana_url_override=option(c, None, "grafana_url"),
        )


@task(
    help={
        **helps("clients", "be_server", "delay_ms", "limit"),
        "build": "rebuild the ese-client image first",
        **helps("images", "verbose"),
    }
)
def frontend(
    c: Context,
    clients: str | None = None,
    be_server: str | None = None,
    delay_ms: str | None = None,
    limit: str | None = None,
    build: bool = False,
    images: str | None = None,
    verbose: bool = False,
) -> None:
    """Start N simulator containers (project ese-frontend) against the load balancer."""
    with as_exit():
        frontend_flow.frontend(
            clients=option(c, clients, "clients"),
            be_server=option(c, be_server, "be_server"),
            delay_ms=option(c, delay_ms, "delay_ms"),
            limit=option(c, limit, "limit"),
            build=build,
            images_mode=option(c, images, "images"),
            be_server_flag=source(be_server, "be_server"),
            verbose=verbose_option(c, verbose),
        )


@task(
    help={
        "remote": "read from this machine's LAN IPv4 (for consumers on other machines)",
        "server-url": "live-events URL to poll, used as given",
        **helps("consumer_port"),
        "build": "rebuild the ese-consumer image first",
        **helps("images", "verbose"),
    }
)
def consumer(
    c: Context,
    remote: bool = False,
    server_url: str | None = None,
    port: str | None = None,
    build: bool = False,
    images: str | None = None,
    verbose: bool = False,
) -> None:
    """Run the ese-consumer Streamlit container and print its URLs."""
    with as_exit():
        consumer_flow.consumer(
            remote=remote,
            server_url=server_url,
            port=option(c, port, "consumer_port"),
            build=build,
            images_mode=option(c, images, "images"),
            verbose=verbose_option(c, verbose),
        )


@task(help={"build": "rebuild every image before starting", **helps("images", "auth", "verbose")})
def up(
    c: Context,
    build: bool = False,
    images: str | None = None,
    auth: bool = True,
    verbose: bool = False,
) -> None:
    """Bring up everything: backend, frontend and consumer."""
    backend(c, build=build, images=images, auth=auth, verbose=verbose)
    frontend(c, build=build, images=images, verbose=verbose)
    consumer(c, build=build, images=images, verbose=verbose)


@task(
    help={
        **helps("webclient_port"),
        "be-server": "where the browser posts (default: the load balancer on localhost)",
        "build": "rebuild the ese-client image first",
        **helps("images", "verbose"),
    }
)
def webclient(
    c: Context,
    port: str | None = None,
    be_server: str | None = None,
    build: bool = False,
    images: str | None = None,
    verbose: bool = False,
) -> None:
    """Serve the click-through page that posts events from your browser."""
    with as_exit():
        url = check_url(be_server or shared.browser_be_server(shared.topology()), "--be-server")
        webclient_flow.webclient(
            port=option(c, port, "webclient_port"),
            allowed_port=option(c, None, "webclient_port"),
            be_server=url,
            build=build,
            images_mode=option(c, images, "images"),
            verbose=verbose_option(c, verbose),
        )


@task(help={"volumes": "also delete the Redis, Prometheus and Grafana data volumes"})
def down(c: Context, volumes: bool = False) -> None:
    """Remove both compose projects, the consumer and the click-through page."""
    with as_exit():
        teardown.down(volumes=volumes)


@task
def status(c: Context) -> None:
    """Show containers, HAProxy servers, Prometheus targets, alerts, Redis memory, events."""
    with as_exit():
        # A local cluster when one is up (`invoke cluster.up`), else the Swarm stack when it is
        # deployed here (`invoke swarm.up`), else the compose projects.
        lines = cluster_flow.status_lines() or swarm_flow.status_lines()
        print("\n".join(lines or status_flow.status_lines()))


# SERVICE is a flag, not a positional argument: Invoke makes every positional argument
# required, so `positional=["service"]` broke the plain `invoke logs`.
@task(
    help={
        "service": "only this service (e.g. grafana-server, ese-client, ese-consumer); "
        "default: every backend service",
        "follow": "keep streaming new lines",
        **helps("log_tail"),
    },
)
def logs(
    c: Context, service: str | None = None, follow: bool = False, tail: str | None = None
) -> None:
    """Show the logs of the backend or of one service."""
    with as_exit():
        logs_flow.logs(service=service, follow=follow, tail=option(c, tail, "log_tail"))


@task(
    help={
        **helps("grafana_url"),
        "user": "admin user (default: GRAFANA_ADMIN_USER in docker/.env)",
        "password": "admin password (default: GRAFANA_ADMIN_PASSWORD in docker/.env)",
        "dashboard": "dashboard JSON file to provision (default grafana/dashboard.json)",
    }
)
def grafana(
    c: Context,
    url: str | None = None,
    user: str | None = None,
    password: str | None = None,
    dashboard: str | None = None,
) -> None:
    """Provision Grafana's datasource and dashboard again (idempotent)."""
    with as_exit():
        provisioning.reprovision_grafana(
            url=option(c, url, "grafana_url"),
            url_source=source(url, "grafana_url"),
            user=user,
            password=password,
            dashboard=Path(dashboard) if dashboard else None,
            timeout=option(c, None, "grafana_timeout"),
        )


@task(
    help={
        "shell": "powershell, cmd, bash, zsh or fish (default: the shell you run invoke from)",
        **helps("be_server"),
    }
)
def env(c: Context, shell: str | None = None, be_server: str | None = None) -> None:
    """Print the line that sets REACT_APP_BE_SERVER in your shell (for hand-run compose)."""
    with as_exit():
        value = check_url(option(c, be_server, "be_server"), source(be_server, "be_server"))
        print(shells.set_line(shell or shells.detect(), value))


@task(help=helps("images"))
def doctor(c: Context, images: str | None = None) -> None:
    """Check Docker, compose, the image registry, free ports, the LAN IP and free disk."""
    with as_exit():
        checks = doctor_flow.run_checks(shared.topology(), images=option(c, images, "images"))
        print("\n".join(check.line() for check in checks))
        doctor_flow.verdict(checks)


ns = Collection(
    render, backend, frontend, consumer, webclient, up, down, status, logs, grafana, env, doctor
)


@task(
    name="up",
    help={
        "build": "rebuild the ese-server image first (as `invoke backend --build`)",
        "replicas": "ingest replicas (default: the running count, else topology.toml)",
        "registry": "HOST:PORT of a registry every node reaches: push local images there",
        **helps("images"),
    },
)
def swarm_up(
    c: Context,
    build: bool = False,
    replicas: str | None = None,
    registry: str = "",
    images: str | None = None,
) -> None:
    """Deploy the stack on Docker Swarm (initialising one here if needed) and wait for it."""
    with as_exit():
        swarm_flow.up(
            build=build,
            images_mode=option(c, images, "images"),
            replicas=replicas,
            registry=registry,
            **stack_settings(c),
        )


def stack_settings(c: Context) -> dict[str, Any]:
    """What deploying the Swarm stack takes from the config, for swarm.up and cluster.up."""
    return {
        "timeout": option(c, None, "health_timeout"),
        "grafana_timeout": option(c, None, "grafana_timeout"),
        "log_lines": option(c, None, "log_lines"),
        "grafana_url_override": option(c, None, "grafana_url"),
        "webclient_port": option(c, None, "webclient_port"),
    }


@task(name="scale", help={"ingest": "number of ingest replicas (1 to [swarm] max_ingest_replicas)"})
def swarm_scale(c: Context, ingest: str | None = None) -> None:
    """Scale the ingest service; wait until HAProxy and Prometheus see every replica."""
    with as_exit():
        timeout, lines = option(c, None, "health_timeout"), option(c, None, "log_lines")
        swarm_flow.scale(ingest=ingest, timeout=timeout, log_lines=lines)


@task(
    name="down",
    help={
        "volumes": "also delete the Redis, Prometheus and Grafana volumes",
        "leave": "leave the swarm too, if `invoke swarm.up` created it",
    },
)
def swarm_down(c: Context, volumes: bool = False, leave: bool = False) -> None:
    """Remove the stack with its secrets and configs; optionally volumes and the swarm."""
    with as_exit():
        swarm_flow.down(volumes=volumes, leave=leave, timeout=option(c, None, "health_timeout"))


ns.add_collection(Collection("swarm", swarm_up, swarm_scale, swarm_down))


@task(
    name="up",
    help={
        "build": "rebuild the ese-server image before pushing it to the cluster's registry",
        **helps("cluster_nodes", "cluster_managers", "images"),
    },
)
def cluster_up(
    c: Context,
    nodes: str | None = None,
    managers: str | None = None,
    build: bool = False,
    images: str | None = None,
) -> None:
    """Start a local multi-node cluster: node containers, a registry, a swarm across them."""
    with as_exit():
        settings = stack_settings(c)
        cluster_flow.up(
            nodes_count=option(c, nodes, "cluster_nodes"),
            managers=option(c, managers, "cluster_managers"),
            images_mode=option(c, images, "images"),
            build=build,
            timeout=settings["timeout"],
            stack=cluster_flow.StackOptions(**settings),
        )


@task(name="kill", help={"node": "the node container to kill, e.g. ese-node-2"})
def cluster_kill(c: Context, node: str | None = None) -> None:
    """SIGKILL a node container, as if the machine were lost."""
    with as_exit():
        cluster_flow.kill(node)


@task(name="start", help={"node": "the node container to start again, e.g. ese-node-2"})
def cluster_start(c: Context, node: str | None = None) -> None:
    """Start a node container again and wait until it is Ready in its swarm."""
    with as_exit():
        cluster_flow.start(node, timeout=option(c, None, "health_timeout"))


@task(name="down", help={"volumes": "also delete every volume of the cluster (the nodes' data)"})
def cluster_down(c: Context, volumes: bool = False) -> None:
    """Remove the nodes, the registry, the network; with --volumes the nodes' data too."""
    with as_exit():
        cluster_flow.down(volumes=volumes)


ns.add_collection(Collection("cluster", cluster_up, cluster_kill, cluster_start, cluster_down))
ns.configure({"ese": task_defaults.defaults()})
