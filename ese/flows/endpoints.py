"""The endpoint table `invoke backend` prints: where everything is and how to log in."""

from __future__ import annotations

from pathlib import Path

from ese.paths import ENV_FILE, REPO_ROOT
from ese.topology import Topology

ANY = ("0.0.0.0", "::")


def local_host(bind: str) -> str:
    """Host to use from this machine for a port published on `bind`."""
    return "localhost" if bind in ANY else bind


def show_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def analytics_url(topo: Topology, host: str) -> str:
    shard = topo.analytics_shard
    return f"http://{host}:{shard.port}/events"


Row = tuple[str, str, str]


AUTH_OFF = (
    "!! AUTH OFF (--no-auth): ingest and analytics take requests WITHOUT a token. "
    "Run `invoke backend` to turn tokens back on."
)


def rows(
    topo: Topology, lan_ip: str | None, env_file: Path = ENV_FILE, auth: bool = True
) -> list[Row]:
    """(what, URL, note) for every endpoint of the backend."""
    env = show_path(env_file)
    lb = topo.balancer
    lb_url = f"http://{local_host(lb.bind)}:{lb.port}"
    out = [
        (
            "Load balancer",
            lb_url,
            "ingest: POST /event, POST /events (ese-client)"
            + ("" if auth else "; NO TOKEN (auth off)"),
        ),
        ("HAProxy stats", lb_url + lb.stats_path, "per-server state and sessions"),
    ]
    for shard in topo.shards:
        url = f"http://{local_host(shard.bind)}:{shard.port}"
        out.append((f"Shard {shard.name}", url, f"role {shard.role}; /metrics, /openapi.json"))
    prom, graf = topo.prometheus, topo.grafana
    out.append(("Prometheus", f"http://{local_host(prom.bind)}:{prom.port}", "targets: /targets"))
    out.append(
        (
            "Grafana",
            f"http://{local_host(graf.bind)}:{graf.port}/d/{graf.dashboard_uid}",
            f"login: GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD in {env}",
        )
    )
    shard = topo.analytics_shard
    token_note = f"token: ESE_ANALYTICS_TOKEN in {env}" if auth else "NO TOKEN (auth off)"
    if shard.bind not in ANY:
        remote = ("(not on the LAN)", f"{shard.name} is bound to {shard.bind} in topology.toml")
    elif lan_ip is None:
        remote = ("(no LAN address)", "no LAN interface found; run `invoke doctor`")
    else:
        remote = (analytics_url(topo, lan_ip), f"for `invoke consumer --remote`; {token_note}")
    out.append(("Analytics (LAN)", *remote))
    out.append(
        (
            "Consumer",
            f"http://{local_host(topo.consumer.bind)}:{topo.consumer.port}",
            "after `invoke consumer`",
        )
    )
    return out


def table(items: list[Row]) -> str:
    """Aligned plain-text columns (no box drawing: Windows consoles mangle it)."""
    w0 = max(len(r[0]) for r in items)
    w1 = max(len(r[1]) for r in items)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in items)
