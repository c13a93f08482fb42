"""The Invoke tasks end to end with MockContext, a fake Docker SDK and the fake Grafana."""

from __future__ import annotations

from typing import Any

import pytest
from invoke import Exit, MockContext, Result

import tasks
from ese import compose, dockerenv, errors, lan, ports, secrets, settings, stack
from ese.compose import V1, V2, Compose
from ese.errors import EseError
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


def test_config_values_are_strings_converted_by_option():
    c = context()
    # Every default is a string, so Invoke's env loading never casts (and never raises).
    assert all(isinstance(v, str) for v in settings.defaults().values())
    c.config.ese["clients"] = "7"  # what INVOKE_ESE_CLIENTS=7 gives
    assert settings.option(c, None, "clients") == 7
    assert settings.option(c, "2", "clients") == 2
    c.config.ese["health_timeout"] = "300.5"
    assert settings.option(c, None, "health_timeout") == 300.5
    with pytest.raises(EseError) as err:
        settings.option(c, "-3", "clients")
    assert str(err.value) == (
        "--clients must be a whole number between 0 and 1000, got '-3'; e.g. --clients 4"
    )
    with pytest.raises(EseError, match=r"^--tail must be a whole number at least 0, got 'x'"):
        settings.option(c, "x", "log_tail")
    with pytest.raises(EseError, match=r"^--port must be a whole number between 1 and 65535"):
        settings.option(c, "70000", "consumer_port")


def test_every_flag_has_help():
    for name, task in tasks.ns.tasks.items():
        params = [a for a in task.get_arguments() if a.name]
        assert task.__doc__ and len(task.__doc__.strip().splitlines()) == 1, name
        for arg in params:
            assert arg.help, f"{name} --{arg.name} has no help"


# -- review fixes ------------------------------------------------------------------------------


def running_consumer(port: int = 8501) -> FakeContainer:
    return FakeContainer("ese-consumer", project="", health="", host_ports=(port,))


def test_consumer_on_a_busy_port_leaves_the_running_consumer_alone(wired, env_file, monkeypatch):
    wired.images.present.add("ese-consumer:local")
    wired.containers.items = [running_consumer(8501)]
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": port != 8600)
    monkeypatch.setattr(ports, "holder", lambda port, ps=None: "nginx (pid 4242)")
    with pytest.raises(Exit) as err:
        tasks.consumer(context(), port="8600")
    assert err.value.code == 1
    assert str(err.value.message) == (
        "port 8600 for ese-consumer is busy: held by nginx (pid 4242); pass a free one, "
        "e.g. --port 8601 (a running ese-consumer container was left as it is)"
    )
    assert not wired.containers.items[0].removed
    assert wired.containers.runs == []


def test_consumer_replaces_our_own_container_holding_the_port(wired, env_file, monkeypatch):
    wired.images.present.add("ese-consumer:local")
    wired.containers.items = [running_consumer(8501)]
    monkeypatch.setattr(ports, "is_free", lambda port, bind="0.0.0.0": False)  # we hold it
    tasks.consumer(context())
    assert wired.containers.items[0].removed
    assert wired.containers.runs[-1][1]["ports"] == {"8501/tcp": ("0.0.0.0", 8501)}


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_consumer_port_out_of_range_is_refused_before_any_removal(wired, env_file, port):
    wired.containers.items = [running_consumer(8501)]
    with pytest.raises(EseError, match="--port must be between 1 and 65535"):
        stack.consumer(remote=False, server_url=None, port=port)
    assert not wired.containers.items[0].removed


def test_logs_of_a_missing_consumer_container_is_exit_1_with_a_hint(wired, env_file):
    c = context()
    with pytest.raises(Exit) as err:
        tasks.logs(c, service="ese-consumer")
    assert err.value.code == 1
    assert str(err.value.message) == (
        "no container 'ese-consumer'; start it with `invoke consumer`"
    )
    c.run.assert_not_called()


def test_logs_of_the_consumer_fails_when_docker_logs_fails(wired, env_file):
    wired.containers.items = [running_consumer()]
    c = context(**{"docker logs --tail 200 ese-consumer": Result("", exited=1)})
    with pytest.raises(Exit, match=r"docker logs ese-consumer failed \(exit 1\)"):
        tasks.logs(c, service="ese-consumer")
    ok = context(**{"docker logs --tail 200 ese-consumer": Result("hello", exited=0)})
    tasks.logs(ok, service="ese-consumer")


def test_logs_checks_docker_first(env_file, monkeypatch):
    def refuse():
        raise ConnectionRefusedError("refused")

    real_client = dockerenv.client
    monkeypatch.setattr(dockerenv, "client", lambda *a, **k: real_client(refuse, "darwin"))
    c = context()
    with pytest.raises(Exit) as err:
        tasks.logs(c)
    assert "Docker engine not reachable" in str(err.value.message)
    assert "open -a Docker" in str(err.value.message)
    c.run.assert_not_called()


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (
            "win32",
            "start Docker Desktop from the Start menu and wait until it says 'Engine running'",
        ),
        ("darwin", "start Docker Desktop (open -a Docker) and wait until the whale icon stops"),
        ("linux", "start it with: sudo systemctl start docker"),
    ],
)
def test_docker_start_hint_per_os(platform, expected):
    def refuse():
        raise ConnectionRefusedError("refused")

    with pytest.raises(EseError) as err:
        dockerenv.client(refuse, platform)
    assert err.value.hint.startswith(expected)
    assert errors.docker_start_hint(platform).startswith(expected)
