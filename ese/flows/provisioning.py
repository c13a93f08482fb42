"""Grafana provisioning for the tasks: find Grafana, read the generated JSON, call the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ese.errors import EseError
from ese.flows import endpoints, shared
from ese.grafana import api as grafana_api
from ese.host import sdk, secrets
from ese.paths import REPO_ROOT
from ese.topology import Topology
from ese.validate import check_url, load_json

GRAFANA_DIR = REPO_ROOT / "grafana"


def grafana_url(topo: Topology, configured: str = "", flag: str = "--url") -> str:
    """The configured Grafana URL (validated; `flag` names where it came from) or the default."""
    if configured:
        return check_url(configured, flag, "http://127.0.0.1:3000").rstrip("/")
    g = topo.grafana
    host = "127.0.0.1" if g.bind in endpoints.ANY else g.bind
    return f"http://{host}:{g.port}"


def grafana_container(topo: Topology, cli: Any = None) -> str:
    """Name of the running Grafana container for the password-reset hint (best effort)."""
    try:
        cli = cli or sdk.client()
        names = sdk.service_container_names(cli, topo.backend_project, topo.grafana.name)
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
    """Create or update the datasource and the dashboard; print what changed."""
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


def provision_after_up(
    topo: Topology, values: dict[str, str], url_override: str, timeout: float, cli: Any = None
) -> grafana_api.Report:
    """Provision the Grafana a task just started, with docker/.env's admin credentials."""
    return provision_grafana(
        topo,
        grafana_url(topo, url_override, "INVOKE_ESE_GRAFANA_URL"),
        values[secrets.GRAFANA_USER],
        values[secrets.GRAFANA_PASSWORD],
        timeout,
        container=grafana_container(topo, cli) if cli is not None else "",
    )


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
    topo = shared.topology()
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
