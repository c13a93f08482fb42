"""`invoke env` lines per shell, shell detection, LAN IPv4 choice, and the per-install .env."""

from __future__ import annotations

import pytest
from invoke import Exit, MockContext

import tasks
from ese import lan, secrets, shells
from ese.errors import EseError
from tests.tasks.conftest import FakeNetifaces

URL = "http://host.docker.internal:8100"


@pytest.mark.parametrize(
    ("shell", "line"),
    [
        ("powershell", '$env:REACT_APP_BE_SERVER = "http://host.docker.internal:8100"'),
        ("cmd", 'set "REACT_APP_BE_SERVER=http://host.docker.internal:8100"'),
        ("bash", 'export REACT_APP_BE_SERVER="http://host.docker.internal:8100"'),
        ("zsh", 'export REACT_APP_BE_SERVER="http://host.docker.internal:8100"'),
        ("fish", 'set -gx REACT_APP_BE_SERVER "http://host.docker.internal:8100"'),
    ],
)
def test_env_task_prints_the_line_for_each_shell(shell, line, capsys):
    c = MockContext()
    c.config.ese = {"be_server": URL}
    tasks.env(c, shell=shell)
    assert capsys.readouterr().out == line + "\n"


def test_env_values_with_shell_specials_are_escaped():
    assert shells.set_line("bash", 'a"$b') == 'export REACT_APP_BE_SERVER="a\\"\\$b"'
    assert shells.set_line("powershell", 'a"$b') == '$env:REACT_APP_BE_SERVER = "a`"`$b"'
    assert shells.set_line("cmd", "100%") == 'set "REACT_APP_BE_SERVER=100%%"'


def test_unknown_shell_exits_with_the_choices():
    c = MockContext()
    c.config.ese = {"be_server": URL}
    with pytest.raises(Exit) as err:
        tasks.env(c, shell="nushell")
    assert err.value.code == 1  # invoke.Exit
    assert "powershell, cmd, bash, zsh, fish" in str(err.value.message)


@pytest.mark.parametrize(
    ("chain", "windows", "environ", "expected"),
    [
        (["python3", "invoke", "-zsh"], False, {}, "zsh"),
        (["python.exe", "invoke.exe", "pwsh.exe"], True, {}, "powershell"),
        (["python.exe", "cmd.exe", "explorer.exe"], True, {}, "cmd"),
        (["python3", "fish"], False, {"SHELL": "/bin/bash"}, "fish"),
        ([], False, {"SHELL": "/usr/bin/zsh"}, "zsh"),
        ([], True, {"PSModulePath": r"C:\Users\a\Documents\PowerShell\Modules"}, "powershell"),
        ([], True, {"PSModulePath": r"C:\Program Files\WindowsPowerShell\Modules"}, "cmd"),
    ],
)
def test_detect_current_shell(chain, windows, environ, expected):
    assert shells.detect(lambda: chain, environ, windows) == expected


def nic(addr: str, broadcast: str | None = None) -> dict[str, str]:
    entry = {"addr": addr, "netmask": "255.255.255.0"}
    if broadcast:
        entry["broadcast"] = broadcast
    return entry


def test_lan_skips_loopback_and_docker_bridge():
    ni = FakeNetifaces(
        {
            "lo": [nic("127.0.0.1")],
            "docker0": [nic("172.17.0.1", "172.17.255.255")],
            "eth0": [nic("192.168.1.23", "192.168.1.255")],
        },
        default="eth0",
    )
    assert lan.lan_ipv4(ni) == "192.168.1.23"


def test_lan_prefers_the_default_route_interface():
    ni = FakeNetifaces(
        {
            "eth0": [nic("10.0.0.5", "10.0.0.255")],
            "wlan0": [nic("192.168.178.40", "192.168.178.255")],
        },
        default="wlan0",
    )
    assert lan.lan_ipv4(ni) == "192.168.178.40"


def test_lan_ignores_a_vpn_even_on_the_default_route():
    ni = FakeNetifaces(
        {
            "tun0": [nic("10.8.0.6")],  # point-to-point: no broadcast address
            "wg0": [nic("10.9.0.2", "10.9.0.255")],
            "br-1a2b": [nic("172.18.0.1", "172.18.255.255")],
            "veth12": [nic("169.254.3.3", "169.254.255.255")],
            "en0": [nic("192.168.0.7", "192.168.0.255")],
        },
        default="tun0",
    )
    assert lan.lan_ipv4(ni) == "192.168.0.7"


def test_no_lan_is_a_clear_error():
    ni = FakeNetifaces(
        {
            "lo": [nic("127.0.0.1")],
            "docker0": [nic("172.17.0.1", "172.17.255.255")],
            "ppp0": [nic("10.1.1.1")],
        },
        default=None,
    )
    with pytest.raises(EseError) as err:
        lan.lan_ipv4(ni)
    assert "no LAN IPv4 address found" in str(err.value)
    assert "--server-url" in str(err.value)


def test_env_file_is_created_once_and_never_overwritten(tmp_path):
    path = tmp_path / "docker" / ".env"
    first, written = secrets.ensure(path)
    assert written == list(secrets.KEYS)
    assert first[secrets.GRAFANA_PASSWORD] not in ("", "admin")
    assert len({first[k] for k in secrets.KEYS[1:]}) == 4  # every secret is distinct
    before = path.read_bytes()
    again, written_again = secrets.ensure(path)
    assert written_again == []
    assert again == first
    assert path.read_bytes() == before


def test_env_file_edits_survive_and_missing_keys_are_added(tmp_path):
    path = tmp_path / ".env"
    path.write_text("GRAFANA_ADMIN_PASSWORD=mine\n# note\n", encoding="utf-8")
    values, written = secrets.ensure(path)
    assert values[secrets.GRAFANA_PASSWORD] == "mine"
    assert secrets.GRAFANA_PASSWORD not in written
    text = path.read_text(encoding="utf-8")
    assert text.startswith("GRAFANA_ADMIN_PASSWORD=mine\n# note\n")
    assert text.count("GRAFANA_ADMIN_PASSWORD") == 1
    assert secrets.read(path)[secrets.REDIS_PASSWORD] == values[secrets.REDIS_PASSWORD]


def test_reading_a_missing_env_file_says_how_to_create_it(tmp_path):
    with pytest.raises(EseError, match="invoke backend"):
        secrets.read(tmp_path / ".env")
