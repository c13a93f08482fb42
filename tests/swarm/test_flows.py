"""The Swarm flows with a fake engine: commands printed and run in order, waits, validation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from invoke import Exit, MockContext

import tasks
from ese import task_defaults
from ese.errors import EseError
from ese.flows import swarm as flows
from ese.host import ports, sdk, secrets
from ese.render import swarm_stack
from ese.swarm import calls, converge, deploy, scaling
from ese.swarm import stack_images as images
from ese.topology import load
from tests.swarm.fakes import FakeSwarm, Refused, ctx, up


def test_up_inits_a_swarm_creates_hashed_secrets_and_deploys(wired, monkeypatch, capsys) -> None:
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    up(c, fake)
    assert fake.lines == ["docker swarm init --advertise-addr 192.168.1.23"]
    assert wired.marker.read_text().splitlines() == ["node1"]
    deployed = [line for line in c.lines if line.startswith("docker stack deploy")]
    assert deployed == [
        f"docker stack deploy -c {deploy.STACK_FILE} --prune --resolve-image never ese"
    ]
    env = c.envs[c.lines.index(deployed[0])]
    values = secrets.read(wired.env_file)
    assert {
        k: v for k, v in env.items() if k.startswith("ESE_SECRET_")
    } == swarm_stack.secret_names("ese", values)
    assert env["ESE_INGEST_REPLICAS"] == "2"  # topology.toml's count on a first deploy
    # The click-through page's origins reach the shards and HAProxy, as with `invoke backend`.
    assert env["ESE_CORS_ORIGINS"].split() == [
        "http://localhost:3006",
        "http://127.0.0.1:3006",
        "http://192.168.1.23:3006",
    ]
    assert sorted(n for n, _ in fake.created) == sorted(
        swarm_stack.secret_names("ese", values).values()
    )
    assert (
        swarm_stack.secret_name("ese", swarm_stack.REDIS_SECRET, values["REDIS_PASSWORD"]),
        values["REDIS_PASSWORD"].encode(),
    ) in fake.created
    assert wired.grafana == ["http://127.0.0.1:3000"]
    out = capsys.readouterr().out
    assert f"> {deployed[0]}" in out and values["REDIS_PASSWORD"] not in out
    assert "> docker swarm init --advertise-addr 192.168.1.23" in out  # the SDK call, shown


def test_up_again_keeps_the_scale_and_the_secrets(wired, monkeypatch, capsys) -> None:
    fake = FakeSwarm()
    up(ctx(monkeypatch, fake), fake)
    fake.replicas["ese-ingest"] = 4  # invoke swarm.scale --ingest 4
    c = ctx(monkeypatch, fake)
    fake.lines.clear()
    up(c, fake)
    assert fake.lines == [], "the swarm exists: no init again"
    assert c.envs[-1]["ESE_INGEST_REPLICAS"] == "4"
    assert len(fake.created) == 4, "the secrets exist: none created again"
    assert "keeping 4 ese-ingest replicas" in capsys.readouterr().out
    up(c, fake, replicas="3")
    assert c.envs[-1]["ESE_INGEST_REPLICAS"] == "3"


def test_up_refuses_a_busy_published_port_before_changing_anything(wired, monkeypatch) -> None:
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": port != 8100)
    monkeypatch.setattr(ports, "holder", lambda port, ps=None: "haproxy (pid 7)")
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    with pytest.raises(EseError, match="8100"):
        up(c, fake)
    assert c.lines == fake.lines == [] and fake.state == "inactive"


def test_up_fails_with_one_line_when_replicas_do_not_come(wired, monkeypatch, capsys) -> None:
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    failed = {
        "Slot": 1,
        "NodeID": "node1",
        "DesiredState": "shutdown",
        "Spec": {"ContainerSpec": {"Image": "haproxy:3@sha256:ab"}},
        "Status": {
            "State": "failed",
            "Err": "No such image: x",
            "Timestamp": "2024-05-01T10:00:01",
        },
    }
    monkeypatch.setattr(fake.api, "tasks", lambda filters: [failed])
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(converge.NotConverged, match="No such image: x") as err:
        up(c, fake, timeout=0)
    assert "\n" not in str(err.value)
    # The tasks and logs of the first three failing services come through the SDK, each shown
    # as the docker command it stands for; only the deploy ran the docker CLI.
    assert [line.split()[:3] for line in c.lines] == [["docker", "stack", "deploy"]]
    out = capsys.readouterr().out.splitlines()
    start = out.index("> docker service ps --no-trunc ese_elb")
    assert cells(out[start + 1]) == [
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED STATE",
        "CURRENT STATE",
        "ERROR",
    ]
    assert cells(out[start + 2]) == [
        "ese_elb.1",
        "haproxy:3",
        "box",
        "shutdown",
        "failed 2024-05-01T10:00:01",
        "No such image: x",
    ]
    assert out[start + 3 : start + 6] == [
        "> docker service logs --raw --tail 5 ese_elb",
        "elb: first line",
        "elb: last line",
    ]
    assert [name for name, _ in fake.log_asks] == ["ese_alertmanager", "ese_elb", "ese_ese-ingest"]
    assert fake.log_asks[0][1] == {"stdout": True, "stderr": True, "tail": 5}


def cells(line: str) -> list[str]:
    """The columns of a table line (two spaces or more between them)."""
    return re.split(r" {2,}", line.strip())


def test_a_missing_service_shows_the_engines_answer_not_a_traceback(capsys) -> None:
    fake = FakeSwarm()
    converge.show_failures(fake, load(), ["elb"], 5)
    assert capsys.readouterr().out.splitlines() == [
        "> docker service ps --no-trunc ese_elb",
        "no tasks: service ese_elb not found",
        "> docker service logs --raw --tail 5 ese_elb",
        "no logs: service ese_elb not found",
    ]


def test_task_lines_put_each_slots_newest_task_first() -> None:
    def task(slot: int, state: str, when: str, err: str = "") -> dict[str, Any]:
        status = {"State": state, "Timestamp": when, "Err": err}
        return {"Slot": slot, "NodeID": "abcdef0123456789", "DesiredState": state, "Status": status}

    tasks = [
        task(2, "running", "2024-05-01T10:00:03"),
        task(1, "failed", "2024-05-01T10:00:01", "task: non-zero exit (1)"),
        task(1, "running", "2024-05-01T10:00:02"),
    ]
    lines = converge.task_lines("ese_x", tasks, {})
    assert [line.split()[:2] for line in lines[1:]] == [
        ["ese_x.1", "abcdef012345"],
        ["\\_", "ese_x.1"],
        ["ese_x.2", "abcdef012345"],
    ]
    assert cells(lines[2])[-2:] == ["failed 2024-05-01T10:00:01", "task: non-zero exit (1)"]


def lb_csv(states: dict[str, str]) -> str:
    head = "# pxname,svname,status,scur\n"
    return head + "".join(f"ingest,{s},{st},0\n" for s, st in states.items())


def targets(n: int) -> bytes:
    active = [
        {
            "labels": {"job": "ese-server", "role": "ingest", "shard": f"ese-ingest@10.0.0.{i}"},
            "health": "up",
        }
        for i in range(n)
    ]
    return json.dumps({"data": {"activeTargets": active}}).encode()


def test_scale_waits_for_haproxy_and_prometheus(wired, monkeypatch, capsys) -> None:
    fake = FakeSwarm(replicas=2)
    c = ctx(monkeypatch, fake)
    fake.exec_output = targets(3)
    slots = {f"ingest{i}": "UP" if i <= 3 else "MAINT (resolution)" for i in range(1, 9)}
    result = flows.scale(
        ingest="3", timeout=5, log_lines=5, cli=fake, get=lambda url, headers: lb_csv(slots)
    )
    assert fake.lines == ["docker service scale --detach ese_ese-ingest=3"] and c.lines == []
    assert set(result) == {"haproxy", "prometheus"}
    assert "ese_ese-ingest: 3 replicas, in HAProxy after" in capsys.readouterr().out


def test_scale_fails_when_haproxy_never_sees_them(wired, monkeypatch) -> None:
    fake = FakeSwarm(replicas=2)
    ctx(monkeypatch, fake)
    times = iter(range(100))
    monkeypatch.setattr(time, "monotonic", lambda: next(times))
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(
        EseError, match=r"HAProxy routes to 3 replicas: not reached after 5s \(now: 2 UP"
    ):
        two = lb_csv({"ingest1": "UP", "ingest2": "UP"})
        flows.scale(ingest="3", timeout=5, log_lines=5, cli=fake, get=lambda url, headers: two)


@pytest.mark.parametrize("value", ["0", "9", "x", "2.5", ""])
def test_scale_validates_the_count(wired, value) -> None:
    with pytest.raises(EseError, match="--ingest must be a whole number between 1 and 8"):
        flows.scale(ingest=value, timeout=5, log_lines=5, cli=FakeSwarm(replicas=2))


def test_scale_without_a_stack_says_how_to_deploy(wired) -> None:
    with pytest.raises(EseError, match=r"not deployed; run `invoke swarm\.up` first"):
        flows.scale(ingest="2", timeout=5, log_lines=5, cli=FakeSwarm("active"))


def test_registry_refs_and_what_is_pushed(monkeypatch) -> None:
    assert images.check_registry("127.0.0.1:5000") == "127.0.0.1:5000"
    for bad in ("127.0.0.1", "host:0", "host:99999", "http://h:5000", "h:5000/x"):
        with pytest.raises(EseError, match="is not HOST:PORT"):
            images.check_registry(bad)
    assert images.registry_ref("r:5000", "ese-offline/redis:7") == "r:5000/ese-offline/redis:7"
    assert (
        images.registry_ref("r:5000", "old.example:443/ese-server:local")
        == "r:5000/ese-server:local"
    )
    hub = SimpleNamespace(attrs={"RepoDigests": ["redis@sha256:1"]})
    local = SimpleNamespace(attrs={"RepoDigests": []})
    ours = SimpleNamespace(attrs={"RepoDigests": ["r:5000/ese-server@sha256:2"]})
    assert not images.needs_push(hub, "redis:7")
    assert images.needs_push(local, "ese-offline/redis:7")
    assert images.needs_push(ours, "ese-server:local"), "pushed to some registry before"
    assert images.repository("127.0.0.1:5000/a/b:1@sha256:f") == "127.0.0.1:5000/a/b"
    assert sdk.split_ref("127.0.0.1:5000/a/b") == ("127.0.0.1:5000/a/b", "latest")
    assert sdk.split_ref("127.0.0.1:5000/a/b:1") == ("127.0.0.1:5000/a/b", "1")
    assert sdk.split_ref("redis") == ("redis", "latest")
    did: list[tuple[str, ...] | str] = []  # the tag and push calls, and the lines reported
    local.tag = lambda repo, tag: did.append(("tag", repo, tag))

    def push(repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, str]]:
        did.append(("push", repo, tag))
        yield {"status": "Pushed"}
        if repo.startswith("bad:"):
            yield {"error": "connection refused\n"}

    cli = SimpleNamespace(
        images=SimpleNamespace(get=lambda ref: hub if ref == "redis:7" else local, push=push)
    )
    both = {"ESE_REDIS_IMAGE": "redis:7", "ESE_SERVER_IMAGE": "ese-server:local"}
    refs = images.push(cli, both, "r:5000", did.append)
    assert refs == {"ESE_REDIS_IMAGE": "redis:7", "ESE_SERVER_IMAGE": "r:5000/ese-server:local"}
    assert did == [
        "pushing ese-server:local as r:5000/ese-server:local",
        ("tag", "r:5000/ese-server", "local"),
        ("push", "r:5000/ese-server", "local"),
    ]
    # An error inside the push stream is a failure, in one line with a hint.
    with pytest.raises(EseError, match="pushing bad:1/ese-server:local failed: connection refused"):
        images.push(cli, {"ESE_SERVER_IMAGE": "ese-server:local"}, "bad:1", did.append)


def test_lb_and_prometheus_views_count_exactly() -> None:
    assert scaling.lb_view({"ingest1": "UP", "ingest2": "MAINT (resolution)"}, 1) == (True, "1 UP")
    assert scaling.lb_view({"ingest1": "UP", "ingest2": "DOWN"}, 1)[0] is False
    assert scaling.lb_view({"ingest1": "UP", "ingest2": "UP"}, 1)[0] is False
    found = scaling.ingest_targets(targets(2).decode())
    assert scaling.prometheus_view(found, 2) == (True, "2 ingest targets, 2 up")
    assert scaling.prometheus_view(found, 3)[0] is False


def test_tasks_turn_errors_into_one_line_exits(wired) -> None:
    c = MockContext()
    c.config.ese = task_defaults.defaults()
    with pytest.raises(Exit) as err:
        tasks.swarm_scale(c, ingest="0")
    assert err.value.code == 1 and "\n" not in str(err.value.message)
    with pytest.raises(Exit, match=r"e\.g\. --registry 127\.0\.0\.1:5000"):
        tasks.swarm_up(c, registry="localhost")
    assert load().swarm.stack == "ese"


def test_up_waits_for_alertmanager_and_the_exporter_too(wired, monkeypatch) -> None:
    assert {"alertmanager", "redis-exporter"} <= set(converge.expected_services(load()))
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    deploy = fake.deploy

    def without_alertmanager(ingest: int) -> None:
        deploy(ingest)
        del fake.replicas["alertmanager"]

    monkeypatch.setattr(fake, "deploy", without_alertmanager)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(converge.NotConverged) as err:
        up(c, fake, timeout=0)
    assert err.value.services == ["alertmanager"]


def test_status_lists_firing_alerts_and_memory_through_docker_exec(wired, capsys) -> None:
    fake = FakeSwarm(replicas=2)
    alert = {
        "labels": {
            "alertname": "EseShardDown",
            "severity": "critical",
            "shard": "ese-ingest@10.0.1.7:2001",
        },
        "annotations": {"summary": "Shard ese-ingest@10.0.1.7:2001 is down"},
        "status": {"state": "active"},
        "startsAt": "2024-05-01T10:00:00Z",
    }
    memory = {
        "status": "success",
        "data": {
            "result": [
                {
                    "metric": {"__name__": "redis_memory_used_bytes"},
                    "value": [0, str(64 * 1024**2)],
                },
                {
                    "metric": {"__name__": "redis_memory_max_bytes"},
                    "value": [0, str(512 * 1024**2)],
                },
            ]
        },
    }
    fake.exec_outputs["alertmanager"] = json.dumps([alert]).encode()
    prom_answers = {"/api/v1/targets": targets(2), "/api/v1/query": json.dumps(memory).encode()}

    fetched: list[str] = []

    def get(url: str, headers: Any) -> str:
        fetched.append(url)
        if "/stats" in url and "csv" in url:
            return lb_csv({"ingest1": "UP"})
        return json.dumps({"total": 3, "by_type": {}})

    real = fake._containers

    def containers(all: bool = False, filters: Any = None) -> list[Any]:
        found = real(all, filters)
        if found and filters["label"].endswith("_prometheus-server"):
            inner = found[0].exec_run

            def exec_run(argv: list[str]) -> tuple[int, bytes]:
                inner(argv)
                path = argv[-1].removeprefix("http://127.0.0.1:9090").partition("?")[0]
                return 0, prom_answers[path]

            return [SimpleNamespace(exec_run=exec_run)]
        return found

    fake.containers = SimpleNamespace(list=containers)
    lines = flows.status_lines(get=get, cli=fake)
    assert lines is not None
    text = "\n".join(lines)
    services = {line.split()[0]: line.split()[1] for line in lines[1 : 1 + len(fake.replicas)]}
    assert services["alertmanager"] == services["redis-exporter"] == "1/1"
    assert (
        "Alerts (docker exec ese_alertmanager.* wget http://127.0.0.1:9093/api/v2/alerts)" in text
    )
    assert (
        "critical EseShardDown ese-ingest@10.0.1.7:2001: Shard ese-ingest@10.0.1.7:2001 is down"
        in text
    )
    assert "64.0 MiB used of 512.0 MiB maxmemory (12.5%)" in text
    assert "unreachable" not in text, text
    # Prometheus and Alertmanager were asked inside their containers, never on a host port.
    assert {s for s, _ in fake.execs} == {"alertmanager", "prometheus-server"}
    assert not [u for u in fetched if ":9090" in u or ":9093" in u]


def test_an_engine_refusal_is_one_line_naming_the_command(capsys) -> None:
    def refuse() -> None:
        raise Refused("This node is not a swarm manager.\nUse docker swarm init.")

    with pytest.raises(EseError) as err:
        calls.call("docker swarm leave --force", refuse)
    assert str(err.value) == (
        "`docker swarm leave --force` failed: This node is not a swarm manager.; "
        "run `invoke doctor`"
    )
    assert capsys.readouterr().out == "> docker swarm leave --force\n"


def test_up_with_ready_made_images_picks_none_checks_no_port_and_resolves_no_digest(
    wired, monkeypatch
) -> None:
    """The seam `invoke cluster.up` deploys through: images already in the cluster's registry
    (a name this machine cannot resolve), ports held by the cluster's node 1 on this machine."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no image is picked, built or pushed with ready-made refs")

    monkeypatch.setattr(images, "resolve", refuse)
    monkeypatch.setattr(images, "push", refuse)
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": False)  # node 1 holds them
    topo = load()
    refs = {topo.images[k].env: f"ese-registry:5000/{k}:1" for k in images.STACK_IMAGES}
    fake = FakeSwarm()
    c = ctx(monkeypatch, fake)
    engine = {"DOCKER_HOST": "unix:///run/ese-cluster/ese-node-1/docker.sock"}
    up(c, fake, image_refs=refs, ports_checked=True, engine_env=engine)
    (deployed,) = [line for line in c.lines if line.startswith("docker stack deploy")]
    assert "--resolve-image never" in deployed
    env = c.envs[c.lines.index(deployed)]
    assert {k: env[k] for k in refs} == refs
    assert env["DOCKER_HOST"] == engine["DOCKER_HOST"]
