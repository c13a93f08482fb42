"""The Swarm stack's replicated Redis and Sentinels as rendered (swarm_redis.py, swarm_nodes.py)
and the topology settings behind them; test_swarm_redis_live.py runs the scripts for real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ese.paths import TOPOLOGY_FILE
from ese.render import (
    compose_files,
    grafana_json,
    haproxy_cfg,
    prometheus_yml,
    swarm_nodes,
    swarm_prometheus,
    swarm_redis,
    swarm_stack,
)
from ese.topology import Topology, TopologyError, load, parse
from tests.tooling import need_binary

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def topology(
    swarm: dict[str, Any] | None = None, sentinel: dict[str, Any] | None = None
) -> Topology:
    doc = tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))
    doc["swarm"].update(swarm or {})
    doc.setdefault("sentinel", {}).update(sentinel or {})
    return parse(doc)


def services(topo: Topology) -> dict[str, Any]:
    return dict(yaml.safe_load(swarm_stack.stack(topo))["services"])


def script(service: dict[str, Any]) -> str:
    """A service's start script as the shell gets it (the stack file's `$$` is one `$`)."""
    sh, flag, text = service["command"]
    assert (sh, flag) == ("sh", "-c")
    return str(text).replace("$$", "$")


def test_a_master_and_two_replicas_each_with_its_own_volume_and_node_label() -> None:
    topo = load()
    doc = yaml.safe_load(swarm_stack.stack(topo))
    assert topo.swarm.redis_services == ("redis-1", "redis-2", "redis-3")
    for n in (1, 2, 3):
        svc = doc["services"][f"redis-{n}"]
        assert svc["volumes"] == [f"redis-{n}-data:/data"]
        assert f"redis-{n}-data" in doc["volumes"]
        assert svc["deploy"]["placement"]["constraints"] == [f"node.labels.ese.redis-{n} == true"]
        assert svc["deploy"]["replicas"] == 1
        assert svc["deploy"]["update_config"]["order"] == "stop-first", "one task per volume"
        assert svc["image"] == topo.images["redis"].ref
    assert "redis-data" not in doc["volumes"]


def test_every_redis_can_be_master_or_replica_and_announces_its_name() -> None:
    stack = services(load())
    for n in (1, 2, 3):
        text = script(stack[f"redis-{n}"])
        server = text.splitlines()[-1]
        assert server.startswith("exec docker-entrypoint.sh redis-server --port 6379 ")
        for option in (
            '--requirepass "$pw"',
            '--masterauth "$pw"',
            f"--replica-announce-ip redis-{n}",
            "--min-replicas-to-write 1 --min-replicas-max-lag 5",
            "--appendonly yes",
            "--maxmemory 512mb --maxmemory-policy noeviction",
        ):
            assert option in server, (n, option)
        assert server.endswith(" $role")
        # It asks every Sentinel, bounded, and falls back to the rendered role: redis-1.
        assert "for s in sentinel-1 sentinel-2 sentinel-3; do" in text
        assert "timeout 2 redis-cli" in text and "get-master-addr-by-name ese" in text
        assert "  master=redis-1\n" in text
        assert f'if [ "$master" = redis-{n} ]; then role=""' in text
        assert 'role="--replicaof $master 6379"' in text


def test_sentinels_monitor_by_name_with_the_topology_settings_and_fixed_ids() -> None:
    topo = load()
    stack = services(topo)
    ids = set()
    for n in (1, 2, 3):
        name = f"sentinel-{n}"
        svc = stack[name]
        text = script(svc)
        assert text.rstrip().endswith(
            "exec docker-entrypoint.sh redis-server /data/sentinel.conf --sentinel"
        )
        conf = re.findall(r'^  "(.*)" \\$', text, re.MULTILINE)
        assert conf[:4] == [
            "port 26379",
            "protected-mode no",
            # Before `monitor`, which names the master by its host name.
            "sentinel resolve-hostnames yes",
            "sentinel announce-hostnames yes",
        ]
        assert f"sentinel announce-ip {name}" in conf
        assert "sentinel monitor ese $master 6379 2" in conf
        assert "sentinel auth-pass ese $pw" in conf
        assert "sentinel down-after-milliseconds ese 3000" in conf
        assert "sentinel failover-timeout ese 10000" in conf
        myid = next(line.split()[-1] for line in conf if line.startswith("sentinel myid"))
        assert re.fullmatch(r"[0-9a-f]{40}", myid)
        ids.add(myid)
        # It asks its peers, not itself, then falls back to redis-1.
        peers = " ".join(f"sentinel-{m}" for m in (1, 2, 3) if m != n)
        assert f"for s in {peers}; do" in text
        assert "umask 077" in text, "the config holds the password"
        assert svc["secrets"] == ["redis_password"]
        assert svc["deploy"]["placement"]["constraints"] == [
            f"node.labels.ese.sentinel-{n} == true"
        ]
    assert len(ids) == 3
    assert ids == {swarm_redis.sentinel_id(topo, f"sentinel-{n}") for n in (1, 2, 3)}


def test_the_shards_find_the_master_through_the_sentinels_and_wait_for_one_replica() -> None:
    stack = services(load())
    for name in ("ese-ingest", "ese-server-analytics"):
        env = stack[name]["environment"]
        assert env["ESE_REDIS_SENTINELS"] == "sentinel-1:26379 sentinel-2:26379 sentinel-3:26379"
        assert env["ESE_REDIS_MASTER_NAME"] == "ese"
        assert env["ESE_ACK_REPLICAS"] == "1"
        assert env["REDIS_URL"] == "redis://redis-1:6379/0"


@pytest.mark.parametrize(("replicas", "acks"), [(2, "1"), (1, "1"), (0, "0")])
def test_ack_replicas_defaults_to_one_with_replicas_and_zero_without(
    replicas: int, acks: str
) -> None:
    doc = tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))
    doc["swarm"]["redis_replicas"] = replicas
    del doc["swarm"]["ack_replicas"]
    env = services(parse(doc))["ese-ingest"]["environment"]
    assert env["ESE_ACK_REPLICAS"] == acks


def test_no_replicas_means_one_plain_redis_and_no_sentinels() -> None:
    topo = topology({"redis_replicas": 0, "ack_replicas": 0})
    stack = services(topo)
    assert [n for n in stack if n.startswith(("redis-", "sentinel"))] == [
        "redis-1",
        "redis-exporter",
    ]
    text = script(stack["redis-1"])
    assert "sentinel" not in text.lower() and "min-replicas" not in text, "writes would stop"
    assert "ESE_REDIS_SENTINELS" not in stack["ese-ingest"]["environment"]
    jobs = [j["job_name"] for j in yaml.safe_load(swarm_prometheus.config(topo))["scrape_configs"]]
    assert "redis-sentinel" not in jobs
    assert swarm_nodes.node_labels(topo, 1) == [["ese.edge", "ese.redis-1"]]


def test_more_replicas_more_redis_services_and_scrape_targets() -> None:
    topo = topology({"redis_replicas": 4})
    stack = services(topo)
    assert [f"redis-{n}" for n in range(1, 6)] == [n for n in stack if re.fullmatch(r"redis-\d", n)]
    job = next(
        j
        for j in yaml.safe_load(swarm_prometheus.config(topo))["scrape_configs"]
        if j["job_name"] == "redis"
    )
    assert [c["labels"]["redis"] for c in job["static_configs"]] == [
        f"redis-{n}" for n in range(1, 6)
    ]


def test_node_labels_one_node_takes_all_a_cluster_keeps_the_master_off_the_edge() -> None:
    topo = load()
    every = ["ese.edge", *(f"ese.redis-{n}" for n in (1, 2, 3))]
    every += [f"ese.sentinel-{n}" for n in (1, 2, 3)]
    assert swarm_nodes.node_labels(topo, 1) == [every]
    three = swarm_nodes.node_labels(topo, 3)
    assert three == [
        ["ese.edge", "ese.redis-3", "ese.sentinel-3"],
        ["ese.redis-1", "ese.sentinel-1"],
        ["ese.redis-2", "ese.sentinel-2"],
    ]
    # Every constraint of the stack names a label exactly one node carries, at any size.
    constraints = {
        c.split()[0].removeprefix("node.labels.")
        for svc in services(topo).values()
        for c in svc["deploy"].get("placement", {}).get("constraints", [])
    }
    for nodes in range(1, 6):
        labels = [label for node in swarm_nodes.node_labels(topo, nodes) for label in node]
        assert sorted(labels) == sorted(set(labels)), nodes
        assert constraints == set(labels), nodes
    with pytest.raises(ValueError, match="at least one node"):
        swarm_nodes.node_labels(topo, 0)


def test_prometheus_scrapes_every_redis_and_sentinel_through_the_exporters_by_name() -> None:
    doc = yaml.safe_load(swarm_prometheus.config(load()))
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    for job, label, names, exporter in (
        ("redis", "redis", ("redis-1", "redis-2", "redis-3"), "redis-exporter:9121"),
        (
            "redis-sentinel",
            "sentinel",
            ("sentinel-1", "sentinel-2", "sentinel-3"),
            "sentinel-exporter:9121",
        ),
    ):
        spec = jobs[job]
        assert spec["metrics_path"] == "/scrape"
        port = 6379 if job == "redis" else 26379
        assert spec["static_configs"] == [
            {"targets": [f"redis://{n}:{port}"], "labels": {label: n}} for n in names
        ]
        # Prometheus' relabelling: the address becomes ?target=, the name the instance, and
        # the exporter the address actually scraped.
        assert spec["relabel_configs"] == [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": [label], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ]
    sentinel_exporter = services(load())["sentinel-exporter"]
    assert "secrets" not in sentinel_exporter and "entrypoint" not in sentinel_exporter
    assert sentinel_exporter["environment"]["REDIS_ADDR"] == ""


def test_compose_renders_the_same_whatever_the_swarm_replication() -> None:
    def compose(topo: Topology) -> list[str]:
        return [
            compose_files.backend(topo),
            compose_files.frontend(topo),
            haproxy_cfg.config(topo),
            prometheus_yml.config(topo),
        ]

    base = compose(load())
    for swarm, sentinel in (
        ({"redis_replicas": 0, "ack_replicas": 0}, {}),
        ({"redis_replicas": 4, "ack_replicas": 3, "min_replicas_max_lag": 9}, {"quorum": 3}),
    ):
        assert compose(topology(swarm, sentinel)) == base
    backend = yaml.safe_load(base[0])["services"]
    assert "redis-server" in backend and not {"redis-1", "sentinel-1"} & set(backend)
    for text in base:
        assert "SENTINEL" not in text.upper() and "ACK_REPLICAS" not in text


@pytest.mark.parametrize(
    ("swarm", "sentinel", "message"),
    [
        ({"ack_replicas": 3}, {}, "[swarm] ack_replicas must be a whole number from 0 to 2"),
        (
            {"redis_replicas": 0, "ack_replicas": 1},
            {},
            "ack_replicas must be a whole number from 0 to 0",
        ),
        ({"redis_replicas": -1}, {}, "[swarm] redis_replicas must be a whole number from 0 to 6"),
        ({"redis_replicas": "2"}, {}, "got '2'"),
        ({"min_replicas_max_lag": 0}, {}, "min_replicas_max_lag must be a whole number from 1"),
        ({}, {"quorum": 4}, "[sentinel] quorum must be a whole number from 1 to 3"),
        ({}, {"down_after_ms": 10}, "[sentinel] down_after_ms"),
        ({}, {"master_name": "e se"}, "[sentinel] master_name 'e se' may hold only"),
        ({}, {"service": "Sentinel"}, "[sentinel] service 'Sentinel'"),
        ({"redis_label": "ese redis"}, {}, "[swarm] redis_label"),
        ({}, {"exporter": "redis-exporter"}, "service names used twice: redis-exporter"),
        ({"redis_service": "sentinel"}, {"service": "sentinel"}, "used twice: sentinel-1"),
        ({}, {"colour": "red"}, "[sentinel]"),
    ],
)
def test_bad_replication_settings_get_one_clear_line(
    swarm: dict[str, Any], sentinel: dict[str, Any], message: str
) -> None:
    with pytest.raises(TopologyError) as err:
        topology(swarm, sentinel)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _panel(title: str) -> list[str]:
    return [q.expr for p in grafana_json.panels(load()) if p.title == title for q in p.queries]


def test_replication_panels_compute_roles_replicas_and_lag(tmp_path: Path) -> None:
    """The new panels' queries on synthetic series through `promtool test rules`: the join
    and aggregation labels are right, and compose's Redis (no `redis` label) is left out."""
    promtool = need_binary("promtool", "apt-get install prometheus")

    def redis(name: str, **more: str) -> str:
        return ",".join(
            f'{k}="{v}"'
            for k, v in {"job": "redis", "instance": name, "redis": name, **more}.items()
        )

    compose = 'job="redis",instance="redis-exporter:9121"'
    series = {
        f"redis_instance_info{{{redis('redis-1', role='master')}}}": "1x4",
        f"redis_instance_info{{{redis('redis-2', role='slave')}}}": "1x4",
        f"redis_instance_info{{{redis('redis-3', role='slave')}}}": "1x4",
        f'redis_instance_info{{{compose},role="master"}}': "1x4",
        f"redis_connected_slaves{{{redis('redis-1')}}}": "2x4",
        f"redis_connected_slaves{{{redis('redis-2')}}}": "0x4",
        f"redis_connected_slaves{{{compose}}}": "0x4",
        'redis_sentinel_master_ok_slaves{job="redis-sentinel",instance="sentinel-1",'
        'sentinel="sentinel-1",master_name="ese",master_address="redis-1:6379"}': "2x4",
        f"redis_master_repl_offset{{{redis('redis-1')}}}": "1000x4",
        f"redis_master_repl_offset{{{redis('redis-2')}}}": "900x4",
        f"redis_connected_slave_offset_bytes{{{redis('redis-1', slave_ip='redis-2')}}}": "900x4",
        f"redis_connected_slave_offset_bytes{{{redis('redis-1', slave_ip='redis-3')}}}": "1000x4",
    }
    (role,) = _panel("Redis master (1) and replicas (0)")
    connected, healthy = _panel("Redis replicas connected to the master")
    (behind,) = _panel("Replication lag in bytes")
    sentinel = 'instance="sentinel-1",job="redis-sentinel",master_address="redis-1:6379",'
    sentinel += 'master_name="ese",sentinel="sentinel-1"'
    expected = [
        (
            role,
            [('{instance="redis-1"}', 1), ('{instance="redis-2"}', 0), ('{instance="redis-3"}', 0)],
        ),
        (connected, [(f"redis_connected_slaves{{{redis('redis-1')}}}", 2)]),
        (healthy, [(f"redis_sentinel_master_ok_slaves{{{sentinel}}}", 2)]),
        (
            behind,
            [
                (f"{{{redis('redis-1', slave_ip='redis-2')}}}", 100),
                (f"{{{redis('redis-1', slave_ip='redis-3')}}}", 0),
            ],
        ),
    ]
    doc = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "30s",
                        "exp_samples": [
                            {"labels": labels, "value": value} for labels, value in samples
                        ],
                    }
                    for expr, samples in expected
                ],
            }
        ],
    }
    path = tmp_path / "panels.test.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_dollar_of_the_scripts_reaches_the_shell() -> None:
    """`docker stack deploy` fills ${VAR} and $VAR from its environment; a script's `$master`
    left single would silently become empty. Only the deploy-time variables stay single."""
    text = swarm_stack.stack(load()).replace("$$", "")
    assert re.findall(r"\$(?!\{[A-Z_]+(?::[-?][^}]*)?\})", text) == []
    assert "$$master" in swarm_stack.stack(load())
