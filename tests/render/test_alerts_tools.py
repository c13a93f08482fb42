"""The alerting configs through the real tools: promtool, amtool, Alertmanager, redis_exporter."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from ese import render
from ese.checks import metrics_catalog
from ese.checks import prometheus_config as configcheck
from ese.checks.dashboard import rule_problems
from ese.topology import load
from tests.render.test_alerts import _with_webhook
from tests.render.test_render import three_ingest_shards
from tests.tooling import free_port, missing, need_binary, stop_process

RULES = "prometheus/rules/ese.rules.yml"
TESTS = "prometheus/rules/ese.rules.test.yml"


def _rendered(tmp_path: Path, topo: Any = None) -> Path:
    render.write(topo or load(), tmp_path)
    return tmp_path


def test_rule_tests_pass_for_three_ingest_shards(tmp_path: Path) -> None:
    need_binary("promtool", "apt-get install prometheus")
    topo = three_ingest_shards()
    outcome = configcheck.check_rules(topo, _rendered(tmp_path, topo))
    assert outcome.status == "ok", outcome.detail
    assert "test rules: SUCCESS" in outcome.detail


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("> 0.8", "> 0.9"),  # a threshold
        ("for: 30s", "for: 1m"),  # a duration
        ('state="UP"}), "shard"', 'state="DOWN"}), "shard"'),  # the wrong HAProxy state
        (' / (redis_memory_max_bytes{job="redis"} > 0)', ' / redis_memory_max_bytes{job="redis"}'),
        (',route!="/metrics"', ""),  # scrapes counted as requests
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


def _alertmanager_binary() -> str:
    for name in ("alertmanager", "prometheus-alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    missing("alertmanager", "apt-get install prometheus-alertmanager")
    raise AssertionError("unreachable")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A webhook receiver on loopback; what it got is in `_Hook.received`."""
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        thread.join(5)


def _api(port: int, path: str, alerts: list[dict[str, Any]] | None = None) -> Any:
    data = json.dumps(alerts).encode() if alerts is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _wait(probe: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f}s")


def test_real_alertmanager_groups_inhibits_and_calls_the_webhook(
    tmp_path: Path, webhook: str
) -> None:
    binary = _alertmanager_binary()
    topo = _with_webhook(load(), webhook)
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(render.render_all(topo)["alertmanager/alertmanager.yml"])
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _api(port, "/api/v2/status"), 20, "Alertmanager up")

        def alert(name: str, shard: str, severity: str) -> dict[str, Any]:
            labels = {"alertname": name, "shard": shard, "severity": severity}
            return {"labels": labels, "annotations": {"summary": f"{name} {shard}"}}

        _api(
            port,
            "/api/v2/alerts",
            [
                alert("EseShardDown", "ese-server1", "critical"),
                alert("EseLoadBalancerServerDown", "ese-server1", "warning"),  # inhibited
                alert("EseLoadBalancerServerDown", "ese-server2", "warning"),  # not inhibited
            ],
        )
        listed = _api(port, "/api/v2/alerts")
        states = {
            (a["labels"]["alertname"], a["labels"]["shard"]): a["status"]["state"] for a in listed
        }
        assert states == {
            ("EseShardDown", "ese-server1"): "active",
            ("EseLoadBalancerServerDown", "ese-server1"): "suppressed",
            ("EseLoadBalancerServerDown", "ese-server2"): "active",
        }
        groups = _api(port, "/api/v2/alerts/groups")
        assert sorted(tuple(sorted(g["labels"].items())) for g in groups) == [
            (("alertname", "EseLoadBalancerServerDown"), ("shard", "ese-server1")),
            (("alertname", "EseLoadBalancerServerDown"), ("shard", "ese-server2")),
            (("alertname", "EseShardDown"), ("shard", "ese-server1")),
        ]
        # group_wait is 10 s; each active group is sent once, the inhibited one never.
        _wait(lambda: len(_Hook.received) >= 2, 30, "two webhook notifications")
        time.sleep(1)
        sent = sorted(
            (m["groupLabels"]["alertname"], m["groupLabels"]["shard"]) for m in _Hook.received
        )
        assert sent == [
            ("EseLoadBalancerServerDown", "ese-server2"),
            ("EseShardDown", "ese-server1"),
        ]
    finally:
        stop_process(proc)


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
    } <= names
