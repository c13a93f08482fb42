"""The alert rules and the Alertmanager config through the real promtool and amtool, and the
metric names the rules may read."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from ese import render
from ese.checks import metrics_catalog
from ese.checks import prometheus_config as configcheck
from ese.checks.dashboard import rule_problems
from ese.topology import Topology, load
from tests.render.test_render import three_ingest_shards
from tests.tooling import missing, need_binary

RULES = "prometheus/rules/ese.rules.yml"
TESTS = "prometheus/rules/ese.rules.test.yml"


def _rendered(tmp_path: Path, topo: Topology | None = None) -> Path:
    render.write(topo or load(), tmp_path)
    return tmp_path


def _with_webhook(topo: Topology, url: str) -> Topology:
    return dataclasses.replace(
        topo, alertmanager=dataclasses.replace(topo.alertmanager, webhook_url=url)
    )


def test_rule_tests_pass_for_three_ingest_shards(tmp_path: Path) -> None:
    need_binary("promtool", "apt-get install prometheus")
    topo = three_ingest_shards()
    outcome = configcheck.check_rules(topo, _rendered(tmp_path, topo))
    assert outcome.status == "ok", outcome.detail
    assert "test rules: SUCCESS" in outcome.detail


def test_rule_tests_follow_the_replication_settings(tmp_path: Path) -> None:
    need_binary("promtool", "apt-get install prometheus")
    base = load()
    swarm = dataclasses.replace(base.swarm, redis_replicas=4, min_replicas_max_lag=9)
    topo = dataclasses.replace(base, swarm=swarm)
    outcome = configcheck.check_rules(topo, _rendered(tmp_path, topo))
    assert outcome.status == "ok", outcome.detail
    rules = (tmp_path / RULES).read_text()
    assert 'redis!=""} < 4' in rules and '"(.+)")) > 9' in rules


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("> 0.8", "> 0.9"),  # a threshold
        ("for: 30s", "for: 1m"),  # a duration
        ('state="UP"}), "shard"', 'state="DOWN"}), "shard"'),  # the wrong HAProxy state
        (' / (redis_memory_max_bytes{job="redis"} > 0)', ' / redis_memory_max_bytes{job="redis"}'),
        (',route!="/metrics"', ""),  # scrapes counted as requests
        # The replicated store's: compose's one Redis counted, a threshold, a window, the lag.
        (',redis!=""', ""),
        ('redis!=""} < 2', 'redis!=""} < 3'),
        ('role="slave"}[5m]', 'role="slave"}[10m]'),
        ('"(.+)")) > 5', '"(.+)")) > 10'),
        # EseNotReplicated's window and `for` (a failover's burst must not page).
        (
            'ese_not_replicated_total{job="ese-server"}[1m]',
            'ese_not_replicated_total{job="ese-server"}[2m]',
        ),
        (
            "for: 2m\n        labels:\n          severity: critical",
            "for: 1m\n        labels:\n          severity: critical",
        ),
    ],
)
def test_rule_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    need_binary("promtool", "apt-get install prometheus")
    root = _rendered(tmp_path)
    rules = root / RULES
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new))
    outcome = configcheck.check_rules(load(), root)
    assert outcome.status == "fail"
    assert "promtool test rules" in outcome.detail


def test_rules_check_fails_an_invalid_rule_file(tmp_path: Path) -> None:
    need_binary("promtool", "apt-get install prometheus")
    root = _rendered(tmp_path)
    rules = root / RULES
    rules.write_text(rules.read_text().replace("up{job=", "up{{job=", 1))
    outcome = configcheck.check_rules(load(), root)
    assert outcome.status == "fail" and "promtool check rules" in outcome.detail


def test_rules_check_fails_a_rule_file_that_is_not_yaml(tmp_path: Path) -> None:
    root = _rendered(tmp_path)
    (root / RULES).write_text("groups: [\n", encoding="utf-8")
    outcome = configcheck.check_rules(load(), root)
    assert outcome.status == "fail"
    assert outcome.detail.startswith("rule files unreadable: ese.rules.yml:")


def test_rules_check_wants_a_firing_and_a_quiet_case_per_alert(tmp_path: Path) -> None:
    root = _rendered(tmp_path)
    doc = yaml.safe_load((root / TESTS).read_text())
    for test in doc["tests"]:
        test["alert_rule_test"] = [
            c
            for c in test["alert_rule_test"]
            if not (c["alertname"] == "EseRedisDown" and not c["exp_alerts"])
        ]
    (root / TESTS).write_text(yaml.safe_dump(doc))
    outcome = configcheck.check_rules(load(), root)
    assert outcome.status == "fail"
    assert outcome.detail == "EseRedisDown: no test where it stays quiet"


def test_rule_problems_name_unknown_metrics_and_bare_counters() -> None:
    doc = {
        "groups": [
            {
                "rules": [
                    {"alert": "A", "expr": "rate(x_total[1m]) > 0"},
                    {"alert": "B", "expr": "nope_metric > 1 and x_total > 0"},
                ]
            }
        ]
    }
    problems = rule_problems(doc, {"x_total"})
    assert problems == [
        "rule B: nope_metric is not exported by any service",
        "rule B: counter x_total used without rate()",
    ]


def test_amtool_passes_both_receivers_and_fails_a_broken_config(tmp_path: Path) -> None:
    need_binary("amtool", "apt-get install prometheus-alertmanager")
    topo = _with_webhook(load(), "http://host.docker.internal:5001/hook")
    root = _rendered(tmp_path, topo)
    assert configcheck.check_alertmanager(topo, root).status == "ok"
    root = _rendered(tmp_path, load())
    assert configcheck.check_alertmanager(load(), root).status == "ok"
    cfg = root / "alertmanager/alertmanager.yml"
    cfg.write_text(cfg.read_text().replace("receiver: default", "receiver: nobody"))
    outcome = configcheck.check_alertmanager(load(), root)
    assert outcome.status == "fail" and "nobody" in outcome.detail


def test_redis_exporter_metrics_cover_the_dashboard_and_rules() -> None:
    exporter = next(
        (p for p in map(shutil.which, metrics_catalog.REDIS_EXPORTER_BINARIES) if p), None
    )
    if exporter is None:
        missing("prometheus-redis-exporter", "apt-get install prometheus-redis-exporter")
    assert exporter is not None
    redis_server = need_binary("redis-server")
    names = metrics_catalog.redis_exporter_metrics(exporter, redis_server)
    assert {
        "redis_up",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_commands_processed_total",
        "redis_connected_clients",
        "redis_stream_length",
        # Only a master with a replica, a replica, and a Sentinel export these.
        "redis_connected_slave_lag_seconds",
        "redis_connected_slave_offset_bytes",
        "redis_master_link_up",
        "redis_sentinel_master_ok_slaves",
    } <= names
