"""Render every generated config from the topology.

`render_all` is pure (topology in, file texts out), so tests and `nox -s configs` can render
into memory or a temporary directory and compare with the committed files byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from ese.paths import REPO_ROOT
from ese.render import (
    alert_rules,
    alert_tests,
    alertmanager,
    compose_files,
    grafana_json,
    haproxy_cfg,
    prometheus_yml,
    swarm_haproxy,
    swarm_prometheus,
    swarm_stack,
)
from ese.render.common import HEADER_NOTE
from ese.topology import Topology

__all__ = ["HEADER_NOTE", "render_all", "stale", "write"]


def render_all(topo: Topology) -> dict[str, str]:
    """Every generated file, keyed by its path relative to the repository root."""
    return {
        "docker/ese-server.compose.yml": compose_files.backend(topo),
        "docker/ese-client.compose.yml": compose_files.frontend(topo),
        "haproxy/haproxy.cfg": haproxy_cfg.config(topo),
        "prometheus/prometheus.yml": prometheus_yml.config(topo),
        f"prometheus/{prometheus_yml.RULES_FILE}": alert_rules.rules_file(topo),
        f"prometheus/{alert_tests.TESTS_FILE}": alert_tests.tests_file(topo),
        "alertmanager/alertmanager.yml": alertmanager.config(topo),
        "grafana/datasource.json": grafana_json.datasource(topo),
        "grafana/dashboard.json": grafana_json.dashboard(topo),
        swarm_stack.STACK_FILE: swarm_stack.stack(topo),
        swarm_stack.HAPROXY_FILE: swarm_haproxy.config(topo),
        swarm_stack.PROMETHEUS_FILE: swarm_prometheus.config(topo),
    }


def stale(topo: Topology, root: Path = REPO_ROOT) -> list[str]:
    """Generated files under `root` that are missing or differ from a fresh render."""
    out = []
    for rel, text in render_all(topo).items():
        path = root / rel
        if not path.exists() or path.read_bytes() != text.encode("utf-8"):
            out.append(rel)
    return out


def write(topo: Topology, root: Path = REPO_ROOT) -> list[str]:
    """Write the files that changed; return their relative paths."""
    changed = stale(topo, root)
    rendered = render_all(topo)
    for rel in changed:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # newline="\n": the committed files are byte-compared, also on Windows.
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(rendered[rel])
    return changed
