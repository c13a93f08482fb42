"""`nox -s configs` checks: each one must be able to fail on a broken file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ese import render
from ese.checks.compose_config import check_compose, check_swarm_stack
from ese.checks.dashboard import dashboard_problems
from ese.checks.haproxy_config import check_haproxy
from ese.checks.prometheus_config import check_promtool
from ese.checks.promql import bare_counters, exposed_names, metric_names
from ese.checks.regenerate import check_regenerated
from ese.checks.run import CHECKS
from ese.checks.tools import compose_command
from ese.render import swarm_stack
from ese.render.common import SHARD_STOP_GRACE
from ese.topology import load
from tests.render.test_render import three_ingest_shards
from tests.tooling import missing, need_binary


def _copy_repo_configs(tmp_path: Path) -> Path:
    topo = load()
    render.write(topo, tmp_path)
    shutil.copy(topo.source, tmp_path / "topology.toml")
    return tmp_path


def test_regenerate_flags_a_hand_edit(tmp_path: Path) -> None:
    root = _copy_repo_configs(tmp_path)
    assert check_regenerated(load(), root).status == "ok"
    cfg = root / "haproxy/haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("leastconn", "roundrobin"))
    outcome = check_regenerated(load(), root)
    assert outcome.status == "fail"
    assert "roundrobin" in outcome.detail and "invoke render" in outcome.detail


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("balance leastconn", "balance fastest", "Fatal errors"),
        # A server name that does not resolve even inside the compose network only warns.
        ("server ese-server2 ese-server2:", "server x nowhere:", "nowhere"),
    ],
    ids=["error", "warning"],
)
def test_haproxy_check_passes_clean_config_and_fails_a_broken_one(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    need_binary("haproxy")
    root = _copy_repo_configs(tmp_path)
    assert check_haproxy(load(), root).status == "ok"
    cfg = root / "haproxy/haproxy.cfg"
    text = cfg.read_text()
    assert old in text
    cfg.write_text(text.replace(old, new))
    outcome = check_haproxy(load(), root)
    assert outcome.status == "fail"
    assert said in outcome.detail


def test_promtool_check_fails_a_broken_config(tmp_path: Path) -> None:
    need_binary("promtool", "apt-get install prometheus")
    root = _copy_repo_configs(tmp_path)
    assert check_promtool(load(), root).status == "ok"
    (root / "prometheus/prometheus.yml").write_text("global:\n  scrape_interval: soon\n")
    assert check_promtool(load(), root).status == "fail"


def test_compose_check_fails_a_broken_file(tmp_path: Path) -> None:
    if compose_command() is None:
        missing("docker compose", "install docker-compose or the compose plugin")
    root = _copy_repo_configs(tmp_path)
    assert check_compose(root).status == "ok"
    path = root / "docker/ese-server.compose.yml"
    path.write_text(path.read_text().replace("condition: service_healthy", "condition: soon"))
    assert check_compose(root).status == "fail"


def test_stack_check_rejects_what_docker_stack_deploy_rejects(tmp_path: Path) -> None:
    if shutil.which("docker") is None and shutil.which("docker-compose") is None:
        missing("docker or docker-compose", "install the Docker CLI")
    topo = load()
    good = swarm_stack.stack(topo)
    (tmp_path / "docker").mkdir()
    path = tmp_path / swarm_stack.STACK_FILE
    for rel in swarm_stack.CONFIG_FILES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(render.render_all(topo)[rel], encoding="utf-8")
    path.write_text(good, encoding="utf-8")
    assert check_swarm_stack(topo, tmp_path).status == "ok"
    bad = good.replace(
        f"    stop_grace_period: {SHARD_STOP_GRACE}\n",
        "    depends_on:\n      redis-server:\n        condition: service_healthy\n"
        f"    stop_grace_period: {SHARD_STOP_GRACE}\n",
        1,
    )
    path.write_text(bad, encoding="utf-8")
    outcome = check_swarm_stack(topo, tmp_path)
    assert outcome.status == "fail" and "depends_on" in outcome.detail


def test_dashboard_problems_name_what_is_wrong() -> None:
    known = {"a_total", "b_bucket"}
    dashboard = {
        "uid": "d",
        "title": "D",
        "panels": [
            {
                "id": 1,
                "title": "ok",
                "datasource": {"uid": "ds"},
                "targets": [{"datasource": {"uid": "ds"}, "expr": "rate(a_total[1m])"}],
            },
            {
                "id": 2,
                "title": "bad",
                "datasource": {"uid": "other"},
                "targets": [
                    {"datasource": {"uid": "ds"}, "expr": "changes(a_total[1m]) + missing_metric"}
                ],
            },
        ],
    }
    problems = dashboard_problems(dashboard, "ds", known)
    assert any("'other'" in p for p in problems)
    assert any("missing_metric" in p for p in problems)
    assert any("a_total graphed without rate()" in p for p in problems)
    assert not any(p.startswith("ok:") for p in problems)


def test_promql_metric_names() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{route=~"/e.*"}[5m])))'
        ' / ignoring(job) up{job="a"} and on(shard) y offset 5m'
    )
    assert metric_names(expr) == {"x_bucket", "up", "y"}
    joined = "a - on (i) group_right b * on (i) group_left (n) c - on (i) group_left() d"
    assert metric_names(joined) == {"a", "b", "c", "d"}


def test_exposed_names_expand_types() -> None:
    text = (
        "# TYPE h histogram\n"
        "# TYPE c_total counter\n"
        "# TYPE health_ping_count counter\n"
        "health_ping_count 3\n"
        'g{a="b"} 1\n'
    )
    names = exposed_names(text)
    assert {"h_bucket", "h_count", "h_sum", "c_total", "health_ping_count", "g"} <= names


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_every_check_is_listed(check: str) -> None:
    assert callable(CHECKS[check])


@pytest.mark.parametrize(
    ("expr", "bare"),
    [
        ("sum by (route) (rate(x_count[1m]))", set()),
        ("increase(health_ping_count[5m])", set()),
        ('histogram_quantile(0.9, sum by (le) (rate(h_bucket{a="b"}[1m])))', set()),
        ("changes(add_event_ping_count[1m])", {"add_event_ping_count"}),
        ("x_total", {"x_total"}),
        ("sum(y_total) + rate(z_total[1m])", {"y_total"}),
        ("process_open_fds", set()),
    ],
)
def test_counters_must_go_through_rate(expr: str, bare: set[str]) -> None:
    assert bare_counters(expr) == bare


def test_a_three_shard_render_passes_every_tool(tmp_path: Path) -> None:
    """A changed topology renders files that still pass haproxy -c, promtool and compose."""
    need_binary("haproxy")
    need_binary("promtool", "apt-get install prometheus")
    if compose_command() is None:
        missing("docker compose", "install docker-compose or the compose plugin")
    topo = three_ingest_shards()
    render.write(topo, tmp_path)
    for check in (check_haproxy, check_promtool):
        outcome = check(topo, tmp_path)
        assert outcome.status == "ok", outcome.detail
    assert check_compose(tmp_path).status == "ok"
    assert "server ese-server3 ese-server3:2004" in (tmp_path / "haproxy/haproxy.cfg").read_text()
