"""The Swarm stack renderers: docker/ese.stack.yml, haproxy/swarm/, prometheus/swarm/."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from typing import Any

import pytest
import yaml

from ese import render
from ese.paths import TOPOLOGY_FILE
from ese.render import (
    alert_rules,
    alertmanager,
    compose_files,
    prometheus_yml,
    swarm_haproxy,
    swarm_prometheus,
    swarm_stack,
)
from ese.swarm import stack_images as images
from ese.topology import Topology, TopologyError, load, parse
from ese_server.config import DRAIN_SECONDS
from fake_grafana.server import grafana_env
from tests.tooling import missing

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PUBLISHED = {8100, 2003, 3000}


def topology(**swarm: Any) -> Topology:
    doc = tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))
    doc["swarm"].update(swarm)
    return parse(doc)


def stack_doc(topo: Topology) -> dict[str, Any]:
    return dict(yaml.safe_load(swarm_stack.stack(topo)))


@pytest.mark.parametrize("replicas", [1, 3])
def test_ingest_is_one_replicated_service_with_the_topology_count(replicas: int) -> None:
    topo = topology(ingest_replicas=replicas)
    services = stack_doc(topo)["services"]
    ingest = services["ese-ingest"]
    assert ingest["deploy"]["replicas"] == f"${{ESE_INGEST_REPLICAS:-{replicas}}}"
    assert ingest["deploy"]["update_config"]["order"] == "start-first"
    assert ingest["environment"]["ESE_ROLE"] == "ingest"
    # No per-shard ingest services: the compose shards ese-server1/2 become the replicas.
    assert not {"ese-server1", "ese-server2"} & set(services)
    assert set(services) == {
        "redis-1",
        "redis-2",
        "redis-3",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "sentinel-exporter",
        "ese-ingest",
        "ese-server-analytics",
        "elb",
        "prometheus-server",
        "grafana-server",
        "alertmanager",
        "redis-exporter",
        "node-exporter",
    }
    # HAProxy's slots and Prometheus' discovery do not depend on the count.
    assert swarm_haproxy.config(topo) == swarm_haproxy.config(topology())
    assert swarm_prometheus.config(topo) == swarm_prometheus.config(topology())


def test_version_3_and_nothing_docker_stack_deploy_ignores_or_rejects() -> None:
    text = swarm_stack.stack(load())
    doc = yaml.safe_load(text)
    assert re.fullmatch(r"3\.\d+", doc["version"])
    for name, svc in doc["services"].items():
        for key in ("build", "container_name", "restart", "depends_on", "extra_hosts", "links"):
            assert key not in svc, (name, key)
        assert svc["deploy"]["restart_policy"]["condition"] == "any", name
        assert svc["deploy"]["endpoint_mode"] == "dnsrr", name
        assert svc["networks"] == ["backend"], name
        assert "healthcheck" in svc, name
    assert "host-gateway" not in text


def test_only_the_lb_analytics_grafana_and_prometheus_are_published_in_host_mode() -> None:
    doc = stack_doc(load())
    published = {}
    for name, svc in doc["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, dict), f"{name}: short port syntax cannot say mode: host"
            assert port["mode"] == "host", name
            assert port["target"] == port["published"], name
            published[port["published"]] = name
    assert published == {
        8100: "elb",
        2003: "ese-server-analytics",
        3000: "grafana-server",
        9090: "prometheus-server",
    }


def test_published_services_run_on_the_edge_node_redis_on_their_own_and_ingest_anywhere() -> None:
    doc = stack_doc(load())
    edge = ["node.labels.ese.edge == true"]
    for name, svc in doc["services"].items():
        placement = svc["deploy"].get("placement", {}).get("constraints")
        if svc.get("ports"):
            assert placement == edge, name
    services = doc["services"]
    for n in (1, 2, 3):
        assert services[f"redis-{n}"]["deploy"]["placement"]["constraints"] == [
            f"node.labels.ese.redis-{n} == true"
        ]
        assert services[f"sentinel-{n}"]["deploy"]["placement"]["constraints"] == [
            f"node.labels.ese.sentinel-{n} == true"
        ]
    assert "placement" not in services["ese-ingest"]["deploy"]
    # `invoke status` reaches these with docker exec through the edge node's engine.
    for name in ("prometheus-server", "alertmanager", "redis-exporter", "sentinel-exporter"):
        assert services[name]["deploy"]["placement"]["constraints"] == edge, name


def test_node_exporter_runs_on_every_node_named_after_it() -> None:
    topo = load()
    svc = stack_doc(topo)["services"]["node-exporter"]
    assert svc["deploy"]["mode"] == "global"
    assert "replicas" not in svc["deploy"] and "placement" not in svc["deploy"]
    assert svc["hostname"] == "{{.Node.Hostname}}"
    assert "/proc:/host/proc:ro" in svc["volumes"] and "/sys:/host/sys:ro" in svc["volumes"]
    assert "--path.procfs=/host/proc" in svc["command"]
    assert "ports" not in svc
    jobs = {
        j["job_name"]: j for j in yaml.safe_load(swarm_prometheus.config(topo))["scrape_configs"]
    }
    assert jobs["node"]["dns_sd_configs"][0]["names"] == ["tasks.node-exporter"]
    assert jobs["node"]["dns_sd_configs"][0]["port"] == 9100


def test_secrets_are_external_files_named_by_the_deploy_environment() -> None:
    doc = stack_doc(load())
    for secret in swarm_stack.SECRETS:
        spec = doc["secrets"][secret.key]
        assert spec["external"] is True
        assert spec["name"].startswith(f"${{{secret.name_var}:?")
    services = doc["services"]
    text = swarm_stack.stack(load())
    # No credential travels in an environment variable; the services read files.
    assert "REDIS_PASSWORD}" not in text and "TOKEN}" not in text
    assert "GF_SECURITY_ADMIN_PASSWORD" not in services["grafana-server"]["environment"]
    assert services["grafana-server"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/run/secrets/grafana_admin_password"
    )
    for name in ("ese-ingest", "ese-server-analytics"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis-1:6379/0", "no password in the URL"
        assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
        assert env["ESE_INGEST_TOKEN_FILE"] == "/run/secrets/ingest_token"
        assert env["ESE_ANALYTICS_TOKEN_FILE"] == "/run/secrets/analytics_token"
        assert set(services[name]["secrets"]) == {
            "redis_password",
            "ingest_token",
            "analytics_token",
        }
    for name in ("redis-1", "redis-2", "redis-3", "sentinel-1"):
        assert '"$$(cat /run/secrets/redis_password)"' in services[name]["command"][-1], name
    assert "$$(cat /run/secrets/redis_password)" in services["redis-1"]["healthcheck"]["test"][-1]


def test_secret_names_carry_a_hash_of_the_value() -> None:
    values = {s.env_key: f"value-of-{s.key}" for s in swarm_stack.SECRETS}
    names = swarm_stack.secret_names("ese", values)
    sha = hashlib.sha256(b"value-of-redis_password").hexdigest()[:12]
    assert names["ESE_SECRET_REDIS_PASSWORD"] == f"ese_redis_password_{sha}"
    assert len(set(names.values())) == len(swarm_stack.SECRETS)
    changed = swarm_stack.secret_names("ese", {**values, "REDIS_PASSWORD": "rotated"})
    assert changed["ESE_SECRET_REDIS_PASSWORD"] != names["ESE_SECRET_REDIS_PASSWORD"]
    assert changed["ESE_SECRET_INGEST_TOKEN"] == names["ESE_SECRET_INGEST_TOKEN"]


def test_configs_are_named_by_content_so_a_change_rolls_the_service() -> None:
    topo = load()
    doc = stack_doc(topo)
    haproxy_name = doc["configs"]["haproxy_cfg"]["name"]
    digest = hashlib.sha256(swarm_haproxy.config(topo).encode()).hexdigest()[:12]
    assert haproxy_name == f"ese_haproxy_cfg_{digest}"
    assert doc["configs"]["haproxy_cfg"]["file"] == "../haproxy/swarm/haproxy.cfg"
    other = stack_doc(topology(max_ingest_replicas=4))
    assert other["configs"]["haproxy_cfg"]["name"] != haproxy_name
    assert other["configs"]["prometheus_yml"] == doc["configs"]["prometheus_yml"]


def test_haproxy_finds_replicas_through_docker_dns_with_short_holds() -> None:
    cfg = swarm_haproxy.config(topology(max_ingest_replicas=5))
    assert "nameserver dns1 127.0.0.11:53" in cfg
    assert "accepted_payload_size 8192" in cfg
    assert "server-template ingest 5 tasks.ese-ingest:2001" in cfg
    assert "init-addr none" in cfg
    assert "balance leastconn" in cfg
    assert "stats uri /stats" in cfg
    assert "shutdown-sessions" not in cfg, "would cut requests a stopping replica drains"
    holds = dict(re.findall(r"hold (\w+) (\d+)s", cfg))
    grace = int(stack_doc(load())["services"]["ese-ingest"]["stop_grace_period"].rstrip("s"))
    # A stopping replica leaves HAProxy's rotation (DNS hold + health-check fall) and drains
    # before Docker's grace period ends.
    assert max(int(v) for v in holds.values()) + 2 + DRAIN_SECONDS < grace


def test_prometheus_discovers_every_replica_with_shard_and_role_labels() -> None:
    doc = yaml.safe_load(swarm_prometheus.config(load()))
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    shards = jobs["ese-server"]
    assert [(c["names"], c["type"], c["port"]) for c in shards["dns_sd_configs"]] == [
        (["tasks.ese-ingest"], "A", 2001),
        (["tasks.ese-server-analytics"], "A", 2003),
    ]
    relabel = shards["relabel_configs"]
    targets = {r["target_label"] for r in relabel}
    assert targets == {"shard", "role"}  # the labels the dashboard groups and filters by
    assert jobs["haproxy"]["dns_sd_configs"][0]["names"] == ["tasks.elb"]
    # The dashboard's queries use job="ese-server" and the shard label, as in compose.
    dashboard = render.render_all(load())["grafana/dashboard.json"]
    assert 'job=\\"ese-server\\"' in dashboard and "{{shard}}" in dashboard


def test_relabel_regexes_give_each_replica_its_own_shard_label() -> None:
    doc = yaml.safe_load(swarm_prometheus.config(load()))
    relabel = doc["scrape_configs"][0]["relabel_configs"]
    shard = relabel[0]
    # Prometheus anchors the regex and joins source labels with ";".
    joined = "tasks.ese-ingest;10.0.1.7:2001"
    match = re.fullmatch(shard["regex"], joined)
    assert match is not None
    assert shard["replacement"].replace("$1", match[1]).replace("$2", match[2]) == (
        "ese-ingest@10.0.1.7:2001"
    )
    roles = {r["replacement"]: r["regex"] for r in relabel[1:]}
    assert re.fullmatch(roles["ingest"], "tasks.ese-ingest")
    assert not re.fullmatch(roles["ingest"], "tasks.ese-server-analytics")
    assert re.fullmatch(roles["analytics"], "tasks.ese-server-analytics")


def test_alertmanager_and_redis_exporter_run_unpublished_on_the_edge() -> None:
    topo = load()
    services = stack_doc(topo)["services"]
    compose = yaml.safe_load(compose_files.backend(topo))["services"]
    for name, image in (("alertmanager", "alertmanager"), ("redis-exporter", "redis_exporter")):
        svc = services[name]
        # The compose stack's image, with the same override variable.
        assert svc["image"] == compose[name]["image"] == topo.images[image].ref
        assert "ports" not in svc, f"{name}: Swarm cannot publish on 127.0.0.1"
        assert svc["deploy"]["placement"]["constraints"] == ["node.labels.ese.edge == true"]
        assert svc["deploy"]["endpoint_mode"] == "dnsrr"
        assert svc["healthcheck"]["test"] == compose[name]["healthcheck"]["test"]
        # `invoke swarm.up` resolves and passes every image of the stack.
        assert image in images.STACK_IMAGES
    am = services["alertmanager"]
    assert am["configs"] == [
        {"source": "alertmanager_yml", "target": "/etc/alertmanager/alertmanager.yml"}
    ]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    assert "alertmanager-data:/alertmanager" in am["volumes"]
    assert "alertmanager-data" in stack_doc(topo)["volumes"]


def test_every_image_variable_of_the_stack_is_resolved_by_swarm_up() -> None:
    text = swarm_stack.stack(load())
    used = set(re.findall(r"image: \$\{(ESE_[A-Z_]+_IMAGE):-", text))
    assert used == {load().images[k].env for k in images.STACK_IMAGES}


def test_redis_exporter_reads_the_password_from_the_secret_file_not_the_environment() -> None:
    topo = load()
    exporter = stack_doc(topo)["services"]["redis-exporter"]
    compose = yaml.safe_load(compose_files.backend(topo))["services"]["redis-exporter"]
    assert exporter["secrets"] == ["redis_password"]
    assert "REDIS_PASSWORD" not in exporter["environment"]
    # As in compose (port, the event stream) but in multi-target mode: no Redis of its own,
    # Prometheus names each Redis (swarm_redis.py).
    assert exporter["environment"] == {
        **{k: v for k, v in compose["environment"].items() if k != "REDIS_PASSWORD"},
        "REDIS_ADDR": "",
    }
    sh, flag, script = exporter["entrypoint"]
    assert (sh, flag) == ("sh", "-c")
    # `$$` is the stack file's escape of `$`: the shell, not stack deploy, reads the file.
    assert 'REDIS_PASSWORD="$$(cat /run/secrets/redis_password)" || exit 1' in script
    assert script.endswith("export REDIS_PASSWORD; exec /redis_exporter")


def test_redis_exporter_entrypoint_exports_the_secret_and_execs(tmp_path) -> None:
    """The entrypoint script itself, run by sh with the secret path and binary swapped for
    temporary files: the exporter gets the file's content in REDIS_PASSWORD."""
    if shutil.which("sh") is None:
        missing("sh", "a POSIX shell")
    import subprocess

    script = stack_doc(load())["services"]["redis-exporter"]["entrypoint"][2]
    secret = tmp_path / "redis_password"
    secret.write_text("s3 cr$t", encoding="utf-8")
    fake = tmp_path / "redis_exporter"
    fake.write_text('#!/bin/sh\nprintf "%s|%s" "$REDIS_PASSWORD" "$REDIS_ADDR"\n')
    fake.chmod(0o755)
    script = (
        script.replace("$$", "$")
        .replace("/run/secrets/redis_password", str(secret))
        .replace("/redis_exporter", str(fake))
    )
    env = {"PATH": "/usr/bin:/bin", "REDIS_ADDR": "redis://r:6379"}
    out = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=10
    )
    assert out.stdout == "s3 cr$t|redis://r:6379"
    secret.unlink()
    failed = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=False, timeout=10
    )
    assert failed.returncode != 0 and failed.stdout == "", "no exporter without its password"


def test_alert_configs_are_the_compose_files_named_by_content() -> None:
    topo = load()
    doc = stack_doc(topo)
    rendered = render.render_all(topo)
    rules_file = f"prometheus/{prometheus_yml.RULES_FILE}"
    for key, rel, text in (
        ("alert_rules", rules_file, alert_rules.rules_file(topo)),
        ("alertmanager_yml", "alertmanager/alertmanager.yml", alertmanager.config(topo)),
    ):
        assert doc["configs"][key]["file"] == f"../{rel}"
        assert rendered[rel] == text, "the compose stack's file, from the same renderer"
        sha = hashlib.sha256(text.encode()).hexdigest()[:12]
        assert doc["configs"][key]["name"] == f"ese_{key}_{sha}"
    prom = doc["services"]["prometheus-server"]
    # Mounted where prometheus.yml's relative rule_files entry resolves (beside it).
    assert {"source": "alert_rules", "target": "/etc/prometheus/rules/ese.rules.yml"} in (
        prom["configs"]
    )
    other = dict(yaml.safe_load(swarm_stack.stack(topology(max_ingest_replicas=4))))
    assert other["configs"]["alert_rules"] == doc["configs"]["alert_rules"]


def test_swarm_prometheus_loads_the_rules_alerts_alertmanager_and_scrapes_the_exporter() -> None:
    topo = load()
    doc = yaml.safe_load(swarm_prometheus.config(topo))
    compose = yaml.safe_load(prometheus_yml.config(topo))
    assert doc["rule_files"] == compose["rule_files"] == ["rules/ese.rules.yml"]
    assert doc["alerting"] == compose["alerting"]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    compose_jobs = {j["job_name"]: j for j in compose["scrape_configs"]}
    # The job names the rules select on, as in compose: the rules and the dashboard work
    # unchanged. Plus two Swarm-only jobs: node-exporter on every node, and the Sentinels.
    assert set(jobs) == set(compose_jobs) | {"node", "redis-sentinel"}
    rules_text = alert_rules.rules_file(topo)
    for job in ("ese-server", "haproxy", "redis"):
        assert f'job="{job}"' in rules_text


def test_optional_services_hook_adds_services_and_scrapes(monkeypatch) -> None:
    extra = {"mailhog": {"image": "mailhog", "deploy": {"replicas": 1}}}
    monkeypatch.setattr(swarm_stack, "EXTRA_SERVICES", [lambda topo: extra])
    job = {"job_name": "alertmanager", "static_configs": [{"targets": ["alertmanager:9093"]}]}
    monkeypatch.setattr(swarm_prometheus, "EXTRA_SCRAPES", [lambda topo: [job]])
    assert "mailhog" in stack_doc(load())["services"]
    jobs = yaml.safe_load(swarm_prometheus.config(load()))["scrape_configs"]
    assert jobs[-1] == job


def test_swarm_settings_are_validated() -> None:
    with pytest.raises(TopologyError, match="ingest_replicas must be between 1 and"):
        topology(ingest_replicas=0)
    with pytest.raises(TopologyError, match="ingest_replicas must be between 1 and"):
        topology(ingest_replicas=9, max_ingest_replicas=8)
    with pytest.raises(TopologyError, match="taken"):
        topology(ingest_service="elb")
    with pytest.raises(TopologyError, match=r"\[swarm\]"):
        topology(replicas=2)


def test_a_topology_without_swarm_table_gets_the_defaults() -> None:
    doc = tomllib.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))
    del doc["swarm"]
    assert parse(doc).swarm.ingest_replicas == 2


def test_fake_grafana_reads_settings_from_file_like_grafana(tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    env = grafana_env({"GF_SECURITY_ADMIN_PASSWORD__FILE": str(secret), "OTHER__FILE": "x"})
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
    assert "OTHER" not in env


def test_the_page_origins_reach_every_shard_and_haproxy_at_deploy_time() -> None:
    services = stack_doc(load())["services"]
    env = {name: svc.get("environment") or {} for name, svc in services.items()}
    takers = sorted(name for name in services if "ESE_CORS_ORIGINS" in env[name])
    assert takers == ["elb", "ese-ingest", "ese-server-analytics"]
    assert {env[n]["ESE_CORS_ORIGINS"] for n in takers} == {"${ESE_CORS_ORIGINS:-}"}
