"""The renderers: the committed configs are current, and a changed topology changes them all."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ese import render
from ese.paths import REPO_ROOT, TOPOLOGY_FILE
from ese.render import compose_files
from ese.topology import Topology, TopologyError, load, parse
from tests.conftest import BACKEND_SERVICES

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _doc() -> dict:
    return tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))


def three_ingest_shards() -> Topology:
    """The default topology plus a third ingest shard on 2004 and a 5 s scrape interval."""
    doc = _doc()
    doc["shards"].insert(
        2, {"name": "ese-server3", "role": "ingest", "port": 2004, "bind": "127.0.0.1"}
    )
    doc["prometheus"]["scrape_interval"] = "5s"
    doc["clients"]["instances"] = 6
    return parse(doc)


def test_committed_files_match_a_fresh_render() -> None:
    assert render.stale(load()) == []


def test_render_is_deterministic() -> None:
    topo = load()
    assert render.render_all(topo) == render.render_all(load())


def test_third_ingest_shard_reaches_every_file(tmp_path: Path) -> None:
    topo = three_ingest_shards()
    changed = render.write(topo, tmp_path)
    assert sorted(changed) == sorted(render.render_all(topo))

    backend = yaml.safe_load((tmp_path / "docker/ese-server.compose.yml").read_text())
    shard3 = backend["services"]["ese-server3"]
    assert shard3["environment"]["SERVER_PORT"] == "2004"
    assert shard3["environment"]["ESE_ROLE"] == "ingest"
    assert shard3["ports"] == ["127.0.0.1:2004:2004"]
    assert shard3["depends_on"] == {"redis-server": {"condition": "service_healthy"}}

    cfg = (tmp_path / "haproxy/haproxy.cfg").read_text()
    backend_section = cfg[cfg.index("backend ingest") :]
    servers = [line.split()[1] for line in backend_section.splitlines() if "    server " in line]
    assert servers == ["ese-server1", "ese-server2", "ese-server3"]
    assert "ese-server-analytics" not in backend_section

    prom = yaml.safe_load((tmp_path / "prometheus/prometheus.yml").read_text())
    assert prom["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    targets = {cfg["targets"][0]: cfg["labels"] for cfg in jobs["ese-server"]["static_configs"]}
    assert targets["ese-server3:2004"] == {"shard": "ese-server3", "role": "ingest"}
    assert targets["ese-server-analytics:2003"]["role"] == "analytics"
    assert len(targets) == 4

    frontend = (tmp_path / "docker/ese-client.compose.yml").read_text()
    assert "--scale ese-client=6" in frontend


def test_every_service_has_a_healthcheck_with_start_period() -> None:
    backend = yaml.safe_load(render.render_all(load())["docker/ese-server.compose.yml"])
    assert set(backend["services"]) == set(BACKEND_SERVICES)
    for name, service in backend["services"].items():
        assert service["healthcheck"]["start_period"], name
        for dep in service.get("depends_on", {}).values():
            assert dep == {"condition": "service_healthy"}, name
    assert set(backend["volumes"]) == {
        "redis-data",
        "prometheus-data",
        "alertmanager-data",
        "grafana-data",
    }


def test_published_addresses_follow_the_topology() -> None:
    services = yaml.safe_load(render.render_all(load())["docker/ese-server.compose.yml"])[
        "services"
    ]
    assert services["redis-server"]["ports"] == ["127.0.0.1:6379:6379"]
    assert services["prometheus-server"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["elb"]["ports"] == ["0.0.0.0:8100:8100"]
    assert services["ese-server-analytics"]["ports"] == ["0.0.0.0:2003:2003"]
    assert services["grafana-server"]["ports"] == ["0.0.0.0:3000:3000"]

    doc = _doc()
    doc["grafana"]["bind"] = "127.0.0.1"
    moved = yaml.safe_load(render.render_all(parse(doc))["docker/ese-server.compose.yml"])
    assert moved["services"]["grafana-server"]["ports"] == ["127.0.0.1:3000:3000"]


def test_images_are_overridable_without_changing_the_files() -> None:
    text = render.render_all(load())["docker/ese-server.compose.yml"]
    assert "${ESE_REDIS_IMAGE:-redis:7.2.5-alpine}" in text
    assert "BASE_IMAGE: ${ESE_PYTHON_BASE_IMAGE:-python:3.11-slim-bookworm}" in text
    topo = load()
    assert topo.images["redis"].resolve({"ESE_REDIS_IMAGE": "mine:1"}) == "mine:1"
    assert topo.images["redis"].resolve({}) == "redis:7.2.5-alpine"


def test_haproxy_forwards_only_ingest_routes() -> None:
    cfg = render.render_all(load())["haproxy/haproxy.cfg"]
    assert "balance leastconn" in cfg
    assert "option httpchk GET /" in cfg
    assert "init-addr last,libc,none" in cfg
    assert "nameserver dns1 127.0.0.11:53" in cfg
    assert "stats uri /stats" in cfg and "stats refresh" in cfg
    assert "use-service prometheus-exporter" in cfg
    for timeout in ("timeout connect", "timeout client", "timeout server"):
        assert timeout in cfg
    deny = next(line for line in cfg.splitlines() if "http-request deny" in line)
    assert "deny_status 403" in deny
    assert "unless ingest_post ingest_path || root_get root_path" in deny
    assert "preflight ingest_path || preflight root_path || stats_page" in deny


def test_dashboard_refers_to_the_datasource_uid() -> None:
    files = render.render_all(load())
    datasource = json.loads(files["grafana/datasource.json"])
    dashboard = json.loads(files["grafana/dashboard.json"])
    assert datasource["url"] == "http://prometheus-server:9090"
    assert dashboard["title"] == "ESE Server"
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    uids |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert not any("changes(" in e for e in exprs)
    assert any("rate(ese_events_ingested_total" in e for e in exprs)


def test_panels_file_fills_every_placeholder_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from ese.render import grafana_json

    exprs = [q.expr for p in grafana_json.panels(load()) for q in p.queries]
    assert not any("$" in e for e in exprs)
    assert 'up{job="ese-server"}' in exprs and "[1m]" in exprs[0]
    bad = tmp_path / "panels.toml"
    bad.write_text(
        '[[panel]]\ntitle = "T"\nunit = "s"\nqueries = [{ expr = "x$shard", legend = "" }]\n'
    )
    with pytest.raises(ValueError, match=r"panel 'T' uses \$shard; the placeholders are"):
        grafana_json.panels(load(), bad)
    bad.write_text('[[panel]]\ntitle = "T"\nunit = "s"\nkind = "pie"\nqueries = []\n')
    with pytest.raises(ValueError, match="panel 'T' needs a kind"):
        grafana_json.panels(load(), bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["shards"][0].update(role="writer"), "role 'writer'"),
        (lambda d: d["shards"][1].update(port=2001), "ports used twice: 2001"),
        (lambda d: d["shards"][1].update(name="ese-server1"), "names used twice"),
        (lambda d: [s.update(role="analytics") for s in d["shards"]], "no shard has role ingest"),
        (lambda d: d["redis"].update(bind="localhost"), "is not an IP address"),
        (lambda d: d["balancer"].update(colour="red"), "[balancer]"),
        (lambda d: d["images"].pop("redis"), "lacks redis"),
    ],
)
def test_bad_topologies_get_one_clear_line(edit: Callable[[dict], object], message: str) -> None:
    doc = _doc()
    edit(doc)
    with pytest.raises(TopologyError) as err:
        parse(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_topology_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not found"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[projects\n")
    with pytest.raises(TopologyError, match="not valid TOML"):
        load(bad)


def test_repo_root_holds_the_topology() -> None:
    assert (REPO_ROOT / "topology.toml").is_file()


def test_backend_images_are_exactly_the_ones_its_compose_file_uses() -> None:
    topo = load()
    text = compose_files.backend(topo)
    used = {key for key, image in topo.images.items() if f"${{{image.env}:-" in text}
    assert used == set(compose_files.BACKEND_IMAGES)
    # The Swarm-only image is not among them: `invoke backend` neither pulls nor builds it.
    assert "node_exporter" not in used
