"""Which image a run uses: override, local, pulled, offline stand-in, or a clear error."""

from __future__ import annotations

import pytest

from ese.engine import images
from ese.engine.waits import NotHealthy, Pace, restart_loops, wait_healthy
from ese.errors import EseError
from ese.host.sdk import ContainerInfo
from ese.render import compose_files
from tests.tasks.conftest import FakeDocker

INFRA = (
    "redis",
    "haproxy",
    "prometheus",
    "grafana",
    "alertmanager",
    "redis_exporter",
    "python_base",
    "node_exporter",  # the Swarm stack's only; a plan of every image includes it
)


class Kit:
    """Records what the offline kit was asked to build."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, envs, report):
        self.asked.append(list(envs))
        return {env: f"ese-offline/{env.lower()}" for env in envs}


def decide(
    topo, cli, mode="auto", environ=None, kit=None, why_no_kit=lambda: "", lines=None, only=()
):
    report = (lines if lines is not None else []).append
    return images.plan(
        topo,
        mode,
        cli,
        environ=environ or {},
        report=report,
        build_kit=kit or Kit(),
        why_no_kit=why_no_kit,
        only=only,
    )


def test_an_override_wins_and_is_never_looked_up(topo):
    cli = FakeDocker(registry=None)
    env = {i.env: f"mine/{k}:1" for k, i in topo.images.items()}
    plan = decide(topo, cli, environ=env)
    assert {c.source for c in plan.choices.values()} == {"override"}
    stack = {i.env: f"mine/{k}:1" for k, i in topo.images.items() if k not in images.CLUSTER_ONLY}
    assert plan.env() == stack
    assert cli.images.asked == [] and plan.registry is None


def test_the_cluster_images_are_planned_only_when_a_run_names_them(topo):
    cli, kit = FakeDocker(images={topo.images[k].default for k in INFRA}, registry=None), Kit()
    assert not set(decide(topo, cli, kit=kit).choices) & set(images.CLUSTER_ONLY)
    assert kit.asked == [] and cli.images.asked == []  # `invoke up` builds no engine image
    plan = decide(topo, cli, kit=kit, only=images.CLUSTER_ONLY)
    assert list(plan.choices) == ["node", "registry"]
    assert kit.asked == [["ESE_NODE_IMAGE", "ESE_REGISTRY_IMAGE"]]


def test_local_official_images_are_used_without_asking_a_registry(topo):
    cli = FakeDocker(images={topo.images[k].default for k in INFRA}, registry=None)
    plan = decide(topo, cli)
    assert [plan.choices[k].source for k in INFRA] == ["local"] * len(INFRA)
    assert plan.choices["ese_server"] == images.Choice("ese_server", "ese-server:local", "build")
    assert cli.images.asked == []


def test_missing_official_images_are_pulled_when_a_registry_answers(topo):
    wanted = {topo.images[k].default for k in INFRA}
    cli = FakeDocker(registry=wanted)
    lines: list[str] = []
    plan = decide(topo, cli, lines=lines)
    assert [plan.choices[k].source for k in INFRA] == ["pulled"] * len(INFRA)
    assert sorted(cli.images.pulls) == sorted(wanted)
    assert "pulling redis:7.2.5-alpine" in lines


def test_no_registry_falls_back_to_the_kit_asking_the_registry_once(topo):
    cli = FakeDocker(images={topo.images["redis"].default}, registry=None)
    kit = Kit()
    lines: list[str] = []
    plan = decide(topo, cli, kit=kit, lines=lines)
    assert plan.choices["redis"].source == "local"
    assert [plan.choices[k].source for k in INFRA[1:]] == ["offline"] * (len(INFRA) - 1)
    assert kit.asked == [
        [
            "ESE_HAPROXY_IMAGE",
            "ESE_PROMETHEUS_IMAGE",
            "ESE_GRAFANA_IMAGE",
            "ESE_ALERTMANAGER_IMAGE",
            "ESE_REDIS_EXPORTER_IMAGE",
            "ESE_PYTHON_BASE_IMAGE",
            "ESE_NODE_EXPORTER_IMAGE",
        ]
    ]
    assert len(cli.images.asked) == 1  # no long wait: one question, then the kit
    assert plan.registry is False
    assert lines[0].startswith("no image registry answered: using local images built from")
    stack = [k for k in topo.images if k not in images.CLUSTER_ONLY]
    assert list(plan.choices) == stack  # the topology's order


def test_the_tasks_of_one_run_ask_the_registry_and_say_so_once(topo, monkeypatch):
    monkeypatch.setattr(images, "_ANSWERED", {})
    cli = FakeDocker(registry=None)
    cli.api.base_url = "http+docker://localhost"  # a real engine's address
    first: list[str] = []
    second: list[str] = []
    decide(topo, cli, lines=first)
    decide(topo, cli, lines=second)  # the next task of `invoke up`, same process
    assert len(cli.images.asked) == 1
    assert first[0].startswith("no image registry answered")
    assert second == []


def test_offline_mode_uses_the_kit_even_with_a_registry(topo):
    cli = FakeDocker(registry={topo.images[k].default for k in INFRA})
    plan = decide(topo, cli, mode="offline")
    assert [plan.choices[k].source for k in INFRA] == ["offline"] * len(INFRA)
    assert cli.images.asked == []


def test_official_mode_without_a_registry_is_one_line_naming_the_way_out(topo):
    with pytest.raises(EseError) as err:
        decide(topo, FakeDocker(registry=None), mode="official")
    assert str(err.value).startswith("no image registry answered for redis:7.2.5-alpine; ")
    assert "--images offline" in str(err.value)


def test_no_registry_and_no_kit_is_one_line_saying_what_to_do(topo):
    with pytest.raises(EseError) as err:
        decide(
            topo,
            FakeDocker(registry=None),
            why_no_kit=lambda: "the offline kit builds on Linux only",
        )
    message = str(err.value)
    assert "no image registry answered for redis:7.2.5-alpine, haproxy:2.8.10-alpine" in message
    assert "the offline kit builds on Linux only" in message
    assert "docker load" in message and "\n" not in message


def test_a_registry_without_the_image_is_an_error_not_a_silent_stand_in(topo):
    cli = FakeDocker(registry=set())  # answers, but has nothing
    with pytest.raises(EseError, match=r"redis:7\.2\.5-alpine is not in the registry"):
        decide(topo, cli)


def test_kit_possible_names_what_is_missing():
    assert "Linux only" in images.kit_possible(platform="darwin")
    assert "Linux only" in images.kit_possible(platform="win32")


def test_a_bad_mode_is_refused(topo):
    with pytest.raises(EseError, match="--images 'cloud' is not a choice"):
        decide(topo, FakeDocker(), mode="cloud")


def info(name: str, status: str = "running", restarts: int = 0) -> ContainerInfo:
    return ContainerInfo(name, f"ese-backend-{name}-1", status, "starting", restarts)


def test_a_restarting_container_or_a_growing_restart_count_is_a_loop():
    first: dict[str, int] = {}
    assert restart_loops([info("redis", restarts=2)], first) == []  # restarts before the wait
    assert restart_loops([info("redis", restarts=3)], first) == [
        ("redis", "restarted 1 time(s) during the wait")
    ]
    assert restart_loops([info("elb", "restarting", 1)], {}) == [("elb", "restarting, 1 restarts")]


def test_the_health_wait_stops_at_the_first_sign_of_a_loop():
    polls = iter([[info("redis", restarts=0)], [info("redis", restarts=1)]])
    clock = iter(range(1000))
    with pytest.raises(NotHealthy) as err:
        pace = Pace(report=lambda _: None, clock=lambda: next(clock), sleep=lambda _: None)
        wait_healthy(lambda: next(polls), ["redis"], timeout=900, pace=pace)
    assert err.value.services == ["redis"]
    assert "restarting over and over" in str(err.value)


def test_only_the_first_shard_builds_the_shared_server_image(topo):
    import yaml

    services = yaml.safe_load(compose_files.backend(topo))["services"]
    building = [name for name, svc in services.items() if "build" in svc]
    assert building == [topo.shards[0].name]
    for shard in topo.shards:
        assert services[shard.name]["image"] == topo.images["ese_server"].ref
