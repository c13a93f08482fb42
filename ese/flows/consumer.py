"""`invoke consumer`: the ese-consumer Streamlit container (not part of a compose project)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from ese.engine import standalone_containers
from ese.errors import EseError
from ese.flows import endpoints, shared
from ese.host import lan, ports, processes, secrets
from ese.topology import Topology
from ese.validate import check_url


def consumer_url(
    topo: Topology, remote: bool, server_url: str | None, find: Callable[[], str] | None = None
) -> str:
    """The live-events URL the consumer polls."""
    if server_url:
        return check_url(server_url, "--server-url")
    host = (find or lan.lan_ipv4)() if remote else lan.DOCKER_HOST_NAME
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
    if standalone_containers.holds_port(cli, name, port):
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
    images_mode: str,
    verbose: bool,
    find: Callable[[], str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Replace the consumer container with one polling the analytics shard; print its URLs."""
    topo = shared.topology()
    url = consumer_url(topo, remote, server_url, find)
    values = shared.ensure_env()
    token = environ.get(secrets.ANALYTICS_TOKEN) or values.get(secrets.ANALYTICS_TOKEN, "")
    cli = shared.docker()
    # DOCKER_HOST names another engine (another machine, or a cluster node): the port is
    # published there, so this machine's ports say nothing; that engine refuses a busy one.
    elsewhere = environ.get("DOCKER_HOST", "")
    if not elsewhere:
        check_consumer_port(topo, cli, port)  # before anything replaces a working consumer
    only = ("python_base", "ese_consumer")
    plan = shared.image_plan(topo, images_mode, cli, only=only, verbose=verbose)
    image = plan.ref("ese_consumer")
    base = plan.ref("python_base")
    standalone_containers.ensure_image(cli, image, base, build, verbose=verbose)
    container = standalone_containers.run(
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
    local = f"http://{endpoints.local_host(topo.consumer.bind)}:{port}"
    if elsewhere:
        wait_answering(local, READY_SECONDS, lambda: answers_inside(container, topo.consumer.port))
        print(f"Consumer dashboard: {local} on the machine of DOCKER_HOST={elsewhere}")
    else:
        wait_answering(local, READY_SECONDS, lambda: answers(local))
        print(f"Consumer dashboard: {local}")
    print(f"Data source URL:    {url}")


READY_SECONDS = 90.0  # Streamlit starts in a few seconds; a slow first start takes longer


def answers(url: str) -> bool:
    """True when the dashboard's health endpoint says ok."""
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=3) as resp:
        return bool(resp.status == 200)


# Asked inside the container, where Streamlit listens, with the image's own Python.
INSIDE_PROBE = (
    "import sys, urllib.request; "
    "r = urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/_stcore/health', timeout=3); "
    "sys.exit(0 if r.status == 200 else 1)"
)


def answers_inside(container: Any, port: int) -> bool:
    """True when the dashboard answers inside its container: for an engine on another machine,
    whose published port this machine may not reach."""
    code, _ = container.exec_run(["python", "-c", INSIDE_PROBE, str(port)])
    return bool(code == 0)


def wait_answering(url: str, timeout: float, ready: Callable[[], bool]) -> None:
    """Return once `ready()` says the dashboard at `url` answers, so the printed URL works
    when the task ends."""
    what = f"the consumer dashboard answers ({url})"
    try:
        processes.wait_until(ready, timeout, what, retry=OSError)
    except processes.TimedOut as exc:
        raise EseError(str(exc), "see `invoke logs -s ese-consumer`") from None
