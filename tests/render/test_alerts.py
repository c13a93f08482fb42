"""Alert rules, their promtool tests, Alertmanager's config, redis_exporter and bounded memory."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ese import render
from ese.paths import TOPOLOGY_FILE
from ese.render import alert_rules, alert_tests, alertmanager, grafana_json
from ese.render.redis_exporter import STREAM_KEY
from ese.topology import Topology, TopologyError, load, parse
from tests.render.test_render import three_ingest_shards

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

# The issue "Alerts and bounded memory": every alert it asks for, with its severity, plus
# EseStoreFull on the shards' count of writes Redis refused for maxmemory; in the rules' order.
ISSUE_ALERTS = {
    "EseShardDown": "critical",
    "EseRedisDown": "critical",
    # The multi-node cluster's: a Swarm node stopped reporting (node-exporter).
    "EseNodeDown": "critical",
    "EseStoreNearlyFull": "warning",
    "EseStoreFull": "critical",
    "EseLoadBalancerServerDown": "warning",
    "EseErrorRateHigh": "warning",
    "EseLatencyHigh": "warning",
    "EseNoEventsIngested": "info",
    # Issue 19's, for the Swarm stack's replicated store (quiet on compose's one Redis).
    "EseNotReplicated": "critical",
    "EseRedisReplicaMissing": "warning",
    "EseRedisFailover": "warning",
    "EseRedisReplicationLag": "warning",
}
# Alerts about Swarm services: `invoke logs` reads the compose projects, so they name the
# docker service commands instead.
SWARM_ALERTS = (
    "EseNotReplicated",
    "EseRedisReplicaMissing",
    "EseRedisFailover",
    "EseRedisReplicationLag",
)
FOR = {
    "EseShardDown": "30s",
    "EseRedisDown": "30s",
    "EseNodeDown": "30s",
    "EseStoreNearlyFull": "1m",
    "EseStoreFull": "0s",
    "EseLoadBalancerServerDown": "30s",
    "EseErrorRateHigh": "2m",
    "EseLatencyHigh": "5m",
    "EseNoEventsIngested": "5m",
    "EseNotReplicated": "2m",
    "EseRedisReplicaMissing": "30s",
    "EseRedisFailover": "0s",
    "EseRedisReplicationLag": "30s",
}


def _doc() -> dict:
    return tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))


def _rules(files: dict[str, str]) -> list[dict]:
    doc = yaml.safe_load(files["prometheus/rules/ese.rules.yml"])
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_rules_are_the_issues_alerts_with_what_to_run() -> None:
    rules = _rules(render.render_all(load()))
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == ISSUE_ALERTS
    assert {r["alert"]: r["for"] for r in rules} == FOR
    for rule in rules:
        notes = rule["annotations"]
        assert notes["summary"] and "`invoke status`" in notes["description"], rule["alert"]
        # A lost machine has no service log to read: it says how to bring the node back.
        what = "`invoke cluster.start" if rule["alert"] == "EseNodeDown" else "`invoke logs -s "
        if rule["alert"] in SWARM_ALERTS:
            what = "`docker service logs ese_"
        assert what in notes["description"], rule["alert"]
    by_name = {r["alert"]: r for r in rules}
    assert by_name["EseShardDown"]["expr"] == 'up{job="ese-server"} == 0'
    assert by_name["EseRedisDown"]["expr"] == 'ese_redis_up{job="ese-server"} == 0'
    assert "> 0.8" in by_name["EseStoreNearlyFull"]["expr"]


def test_prometheus_loads_the_rules_and_sends_to_alertmanager() -> None:
    files = render.render_all(load())
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prom["rule_files"] == ["rules/ese.rules.yml"]
    assert f"prometheus/{prom['rule_files'][0]}" in files
    targets = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["redis"]["static_configs"][0]["targets"] == ["redis-exporter:9121"]
    # The shard and role labels the rules and their annotations rely on.
    for cfg in jobs["ese-server"]["static_configs"]:
        assert set(cfg["labels"]) == {"shard", "role"}


def test_three_ingest_shards_reach_the_rules_and_their_tests(tmp_path: Path) -> None:
    topo = three_ingest_shards()
    files = render.render_all(topo)
    no_events = {r["alert"]: r for r in _rules(files)}["EseNoEventsIngested"]
    for name in ("ese-server1", "ese-server2", "ese-server3"):
        assert f"`invoke logs -s {name}`" in no_events["annotations"]["description"]
    assert "ese-server-analytics`" not in no_events["annotations"]["description"]
    tests = yaml.safe_load(files["prometheus/rules/ese.rules.test.yml"])
    assert tests["rule_files"] == ["ese.rules.yml"]
    series = " ".join(s["series"] for t in tests["tests"] for s in t["input_series"])
    assert 'server="ese-server1"' in series and 'instance="ese-server1:2001"' in series


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    topo = load()
    rules, scenarios = alert_rules.rules(topo), alert_tests.scenarios(topo)
    assert alert_tests.uncovered(rules, scenarios) == []
    only_firing = [
        dataclasses.replace(s, checks=tuple(c for c in s.checks if c.fired)) for s in scenarios
    ]
    assert alert_tests.uncovered(rules, only_firing) == list(ISSUE_ALERTS)
    without_latency = [s for s in scenarios if "EseLatencyHigh" not in s.name]
    assert alert_tests.uncovered(rules, without_latency) == ["EseLatencyHigh"]


def test_rendering_refuses_a_rule_without_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    topo = load()
    extra = alert_rules.Rule("EseNew", "vector(1)", "1m", "info", "s", "d `invoke status`")
    monkeypatch.setattr(alert_tests, "rules", lambda t: [*alert_rules.rules(t), extra])
    with pytest.raises(ValueError, match="EseNew"):
        alert_tests.tests_file(topo)


def test_expected_annotations_fill_labels_and_the_value_text() -> None:
    text = "{{ $labels.shard }} at {{ $value | humanizePercentage }}"
    assert alert_tests.expand(text, {"shard": "s1"}, "87.5%") == "s1 at 87.5%"
    with pytest.raises(KeyError):
        alert_tests.expand("{{ $labels.shrad }}", {"shard": "s1"}, "")
    with pytest.raises(ValueError, match="value text"):
        alert_tests.expand(text, {"shard": "s1"}, "")
    with pytest.raises(ValueError, match="not covered"):
        alert_tests.expand("{{ $externalLabels.x }}", {}, "")


def test_redis_is_bounded_with_noeviction() -> None:
    compose = yaml.safe_load(render.render_all(load())["docker/ese-server.compose.yml"])
    command = compose["services"]["redis-server"]["command"]
    assert command[command.index("--maxmemory") + 1] == "512mb"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    doc = _doc()
    doc["redis"]["maxmemory"] = "1gb"
    bigger = yaml.safe_load(render.render_all(parse(doc))["docker/ese-server.compose.yml"])
    assert "1gb" in bigger["services"]["redis-server"]["command"]
    rules = {r["alert"]: r for r in _rules(render.render_all(parse(doc)))}
    assert "(1gb, [redis]" in rules["EseStoreNearlyFull"]["annotations"]["description"]


def test_default_maxmemory_holds_the_demo_window_many_times() -> None:
    topo = load()
    # BENCHMARKS (store_memory): up to 126 kB in Redis per event/s at the 300 s retention.
    demo = 160 * 126_000 * topo.server.retention_seconds / 300  # the demo's ~160 events/s
    assert topo.redis.maxmemory_bytes >= 20 * demo
    ceiling = 2_500 * 126_000 * topo.server.retention_seconds / 300  # the stack's measured max
    assert ceiling < 0.8 * topo.redis.maxmemory_bytes  # under EseStoreNearlyFull


@pytest.mark.parametrize(
    ("size", "expected"),
    [("256mb", 256 * 1024**2), ("1GB", 1024**3), ("100m", 100 * 1000**2), ("20000000", 20000000)],
)
def test_maxmemory_sizes_read_as_redis_reads_them(size: str, expected: int) -> None:
    doc = _doc()
    doc["redis"]["maxmemory"] = size
    assert parse(doc).redis.maxmemory_bytes == expected


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["redis"].update(maxmemory="lots"), "not a Redis size"),
        (lambda d: d["redis"].update(maxmemory="256 mb"), "not a Redis size"),
        (lambda d: d["redis"].update(maxmemory="256"), "below 16mb"),
        (lambda d: d["alertmanager"].update(webhook_url="slack"), "not an http(s) URL"),
        (lambda d: d["alertmanager"].update(port=9090), "ports used twice: 9090"),
        (lambda d: d["redis_exporter"].update(name="elb"), "names used twice: elb"),
        (lambda d: d["images"].pop("alertmanager"), "lacks alertmanager"),
        (lambda d: d.pop("redis_exporter"), "missing [redis_exporter]"),
    ],
)
def test_bad_alerting_topologies_get_one_clear_line(
    edit: Callable[[dict], object], message: str
) -> None:
    doc = _doc()
    edit(doc)
    with pytest.raises(TopologyError) as err:
        parse(doc)
    assert message in str(err.value)


def test_exporter_and_alertmanager_services() -> None:
    services = yaml.safe_load(render.render_all(load())["docker/ese-server.compose.yml"])[
        "services"
    ]
    exporter = services["redis-exporter"]
    image = "oliver006/redis_exporter:v1.62.0-alpine"
    assert exporter["image"] == f"${{ESE_REDIS_EXPORTER_IMAGE:-{image}}}"
    assert exporter["environment"]["REDIS_ADDR"] == "redis://redis-server:6379"
    assert exporter["environment"]["REDIS_PASSWORD"] == "${REDIS_PASSWORD}"
    assert exporter["environment"]["REDIS_EXPORTER_CHECK_SINGLE_STREAMS"] == STREAM_KEY
    assert "ports" not in exporter  # scraped inside the compose network only
    am = services["alertmanager"]
    assert am["image"] == "${ESE_ALERTMANAGER_IMAGE:-prom/alertmanager:v0.27.0}"
    assert am["ports"] == ["127.0.0.1:9093:9093"]
    assert "../alertmanager:/etc/alertmanager:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    assert "--cluster.listen-address=" in am["command"]


def test_stream_key_is_the_servers() -> None:
    from ese_server.store import Store

    assert Store("redis://127.0.0.1:1/0", 300).k_stream == STREAM_KEY


def _with_webhook(topo: Topology, url: str) -> Topology:
    return dataclasses.replace(
        topo, alertmanager=dataclasses.replace(topo.alertmanager, webhook_url=url)
    )


def test_alertmanager_sends_nowhere_until_a_webhook_is_set() -> None:
    topo = load()
    quiet = yaml.safe_load(alertmanager.config(topo))
    assert quiet["route"]["group_by"] == ["alertname", "shard"]
    assert quiet["receivers"] == [{"name": quiet["route"]["receiver"]}]
    loud = yaml.safe_load(alertmanager.config(_with_webhook(topo, "http://host:5001/hook")))
    assert loud["receivers"][0]["webhook_configs"] == [
        {"url": "http://host:5001/hook", "send_resolved": True}
    ]


def test_inhibit_rules_name_real_alerts() -> None:
    doc = yaml.safe_load(alertmanager.config(load()))
    names = set(ISSUE_ALERTS)
    for rule in doc["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            value = matcher.split("=", 1)[1].lstrip("~").strip('"')
            assert set(value.split("|")) <= names, matcher


def test_dashboard_has_redis_and_alert_panels() -> None:
    dashboard = json.loads(render.render_all(load())["grafana/dashboard.json"])
    exprs = {t["expr"] for p in dashboard["panels"] for t in p["targets"]}
    for expected in (
        'redis_memory_used_bytes{job="redis"}',
        'redis_memory_max_bytes{job="redis"}',
        'sum(rate(redis_commands_processed_total{job="redis"}[1m]))',
        'redis_connected_clients{job="redis"}',
        'redis_stream_length{job="redis"}',
        "ALERTS",
    ):
        assert expected in exprs
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_shows_not_replicated_refusals_beside_the_replication_panels() -> None:
    panels = grafana_json.panels(load())
    titles = [p.title for p in panels]
    at = titles.index('Appends refused as "not replicated" (503) per second')
    assert titles[at - 1] == "Replication lag in bytes"
    assert [q.expr for q in panels[at].queries] == [
        'sum by (shard) (rate(ese_not_replicated_total{job="ese-server"}[1m]))'
    ]
    assert "EseNotReplicated" in panels[at].description
    # Every alert a panel's description names is one the rules define.
    named = {n for p in panels for n in re.findall(r"\bEse[A-Z]\w+", p.description)}
    assert named and named <= set(ISSUE_ALERTS)
