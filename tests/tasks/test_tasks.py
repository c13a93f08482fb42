"""The Invoke tasks end to end with MockContext, a fake Docker SDK and the fake Grafana."""

from __future__ import annotations

from typing import Any

import pytest
from invoke import Exit, MockContext, Result

import tasks
from ese import compose, dockerenv, lan, ports, secrets, settings, stack
from ese.compose import V1, V2, Compose
from ese.paths import BACKEND_COMPOSE, FRONTEND_COMPOSE
from tests.tasks.conftest import FakeContainer, FakeDocker

BACKEND_SERVICES = ["redis-server", "ese-server1", "ese-server2", "ese-server-analytics", "elb",
                    "prometheus-server", "grafana-server"]  # fmt: skip


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    path = tmp_path / "docker" / ".env"
    monkeypatch.setattr(stack, "ENV_FILE", path)
    monkeypatch.setattr(secrets, "ENV_FILE", path)
    return path


@pytest.fixture
def wired(monkeypatch, env_file):
    """Compose v2 on POSIX, a fake Docker engine, no rendering, a fixed LAN address."""
    cli = FakeDocker()
    monkeypatch.setattr(compose, "current", lambda: Compose(V2, windows=False))
    monkeypatch.setattr(dockerenv, "client", lambda *a, **k: cli)
    monkeypatch.setattr(stack, "render_if_stale", lambda topo: [])
    monkeypatch.setattr(lan, "lan_ipv4", lambda ni=None: "192.168.1.23")
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": True)
    return cli


def context(**commands: Result) -> Any:
    c = MockContext(run=commands)
    c.config.ese = settings.defaults()
    return c


def line(project, file, *args, env_file) -> str:
    return Compose(V2, windows=False).line(project, file, list(args), env_file)


def test_frontend_scales_clients_and_sets_the_server_url_through_env(wired, env_file, capsys):
    cmd = line("ese-frontend", FRONTEND_COMPOSE, "up", "-d", "--scale", "ese-client=3",
               env_file=env_file)  # fmt: skip
    c = context(**{cmd: Result("", exited=0)})
    tasks.frontend(c, clients="3", delay_ms="100")
    _, kwargs = c.run.call_args
    assert kwargs["env"] == {
        "REACT_APP_BE_SERVER": "http://host.docker.internal:8100",
        "ESE_EVENT_DELAY_MS": "100",
        "ESE_EVENT_LIMIT": "50000",
    }
    assert kwargs["pty"] is False
    assert f"> {cmd}" in capsys.readouterr().out
    assert env_file.exists()  # the clients' ingest token comes from it


def test_frontend_rejects_a_bad_url_before_running_anything(wired):
    c = context()
    with pytest.raises(Exit) as err:
        tasks.frontend(c, be_server="host:8100")
    assert err.value.code == 1
    assert "--be-server 'host:8100' is not an http(s) URL" in str(err.value.message)
    c.run.assert_not_called()


def healthy_backend() -> list[FakeContainer]:
    return [FakeContainer(f"ese-backend_{s}_1", service=s) for s in BACKEND_SERVICES]


def test_backend_brings_up_waits_provisions_grafana_and_prints_endpoints(
    wired, env_file, grafana, monkeypatch, capsys
):
    secrets.ensure(env_file)
    text = env_file.read_text().replace(
        f"GRAFANA_ADMIN_PASSWORD={secrets.read(env_file)['GRAFANA_ADMIN_PASSWORD']}",
        "GRAFANA_ADMIN_PASSWORD=s3cret",
    )
    env_file.write_text(text)
    wired.containers.items = healthy_backend()
    up = line("ese-backend", BACKEND_COMPOSE, "up", "-d", "--remove-orphans", "--build",
              env_file=env_file)  # fmt: skip
    c = context(**{up: Result("", exited=0)})
    c.config.ese["grafana_url"] = grafana.url
    tasks.backend(c, build=True)
    out = capsys.readouterr().out
    assert "all 7 services healthy" in out
    assert "Grafana datasource: created" in out and "Grafana dashboard: created" in out
    assert "http://192.168.1.23:2003/events" in out
    assert "s3cret" not in out
    state = grafana.state.snapshot()
    assert list(state["datasources"]) == ["ese-prometheus"]
    assert list(state["dashboards"]) == ["ese-server"]


def test_backend_timeout_prints_the_failing_service_logs(wired, env_file, capsys, monkeypatch):
    containers = healthy_backend()
    containers[-1].health = "unhealthy"  # grafana-server
    wired.containers.items = containers
    up = line("ese-backend", BACKEND_COMPOSE, "up", "-d", "--remove-orphans", env_file=env_file)
    logs = line("ese-backend", BACKEND_COMPOSE, "logs", "--no-color", "--tail", "40",
                "grafana-server", env_file=env_file)  # fmt: skip
    c = context(**{up: Result("", exited=0), logs: Result("grafana says no", exited=0)})
    c.config.ese["health_timeout"] = 0
    with pytest.raises(Exit) as err:
        tasks.backend(c)
    assert err.value.code == 1
    assert "grafana-server (running/unhealthy)" in str(err.value.message)
    assert f"> {logs}" in capsys.readouterr().out
    assert c.run.call_args.args == (logs,)


def test_backend_refuses_a_busy_port_naming_its_holder(wired, env_file, monkeypatch):
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": port != 3000)
    monkeypatch.setattr(ports, "holder", lambda port, ps=None: "grafana-server (pid 77)")
    c = context()
    with pytest.raises(Exit) as err:
        tasks.backend(c)
    assert str(err.value.message).startswith(
        "port 3000 for grafana-server is busy: held by grafana-server (pid 77);"
    )
    c.run.assert_not_called()


def test_docker_not_running_is_one_line_with_how_to_start_it(env_file, monkeypatch):
    def refuse():
        raise ConnectionRefusedError("refused")

    real_client = dockerenv.client
    monkeypatch.setattr(dockerenv, "client", lambda *a, **k: real_client(refuse, "linux"))
    monkeypatch.setattr(stack, "render_if_stale", lambda topo: [])
    with pytest.raises(Exit) as err:
        tasks.down(context())
    assert str(err.value.message) == (
        "Docker engine not reachable (ConnectionRefusedError); start it with: "
        "sudo systemctl start docker (and add yourself to the docker group)"
    )


@pytest.mark.parametrize(("remote", "url"), [
    (False, "http://host.docker.internal:2003/events"),
    (True, "http://192.168.1.23:2003/events"),
])  # fmt: skip
def test_consumer_runs_the_container_with_the_live_events_url(wired, env_file, remote, url, capsys):
    wired.images.present.add("ese-consumer:local")
    tasks.consumer(context(), remote=remote, port="8600")
    _, kwargs = wired.containers.runs[-1]
    token = secrets.read(env_file)["ESE_ANALYTICS_TOKEN"]
    assert kwargs["environment"]["ESE_SERVER_URL"] == url
    assert kwargs["environment"]["ESE_ANALYTICS_TOKEN"] == token
    assert kwargs["ports"] == {"8501/tcp": ("0.0.0.0", 8600)}
    out = capsys.readouterr().out
    assert "Consumer dashboard: http://localhost:8600" in out
    assert f"Data source URL:    {url}" in out


def test_consumer_server_url_is_used_as_given(wired, env_file):
    wired.images.present.add("ese-consumer:local")
    tasks.consumer(context(), server_url="http://10.0.0.9:2003/events")
    assert (
        wired.containers.runs[-1][1]["environment"]["ESE_SERVER_URL"]
        == "http://10.0.0.9:2003/events"
    )


def test_down_removes_both_projects_and_the_consumer(wired, env_file):
    wired.containers.items = [FakeContainer("ese-consumer", project="")]
    args = ("down", "--remove-orphans", "--volumes")
    front = line("ese-frontend", FRONTEND_COMPOSE, *args, env_file=env_file)
    back = line("ese-backend", BACKEND_COMPOSE, *args, env_file=env_file)
    c = context(**{front: Result("", exited=0), back: Result("", exited=0)})
    tasks.down(c, volumes=True)
    assert [call.args[0] for call in c.run.call_args_list] == [front, back]
    # compose needs REACT_APP_BE_SERVER to parse the frontend file even for `down`
    assert "REACT_APP_BE_SERVER" in c.run.call_args_list[0].kwargs["env"]
    assert wired.containers.items[0].removed


def test_logs_picks_the_project_of_the_service(wired, env_file, monkeypatch):
    monkeypatch.setattr(compose, "current", lambda: Compose(V1, windows=True))
    args = ["logs", "--tail", "200", "--follow", "ese-client"]
    cmd = Compose(V1, windows=True).line("ese-frontend", FRONTEND_COMPOSE, args, env_file)
    c = context(**{cmd: Result("", exited=0)})
    tasks.logs(c, "ese-client", follow=True)
    assert c.run.call_args.args == (cmd,)
    assert cmd.startswith("docker-compose -f ")
    with pytest.raises(Exit, match="unknown service 'nope'"):
        tasks.logs(context(), "nope")


def test_config_env_override_is_typed(monkeypatch):
    c = context()
    c.config.ese["clients"] = "7"  # what INVOKE_ESE_CLIENTS=7 would give before casting
    assert settings.option(c, None, "clients", int) == 7
    assert settings.option(c, "2", "clients", int) == 2
    with pytest.raises(Exception, match="--clients must not be negative"):
        settings.option(c, "-1", "clients", int)


def test_every_flag_has_help():
    for name, task in tasks.ns.tasks.items():
        params = [a for a in task.get_arguments() if a.name]
        assert task.__doc__ and len(task.__doc__.strip().splitlines()) == 1, name
        for arg in params:
            assert arg.help, f"{name} --{arg.name} has no help"
