"""`invoke env` lines per shell, shell detection, LAN IPv4 choice, and the per-install .env."""

from __future__ import annotations

import pytest
from invoke import Exit, MockContext

import tasks
from ese.errors import EseError
from ese.host import lan, secrets, shells
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
    assert shells.set_line("cmd", "a&b|c") == 'set "REACT_APP_BE_SERVER=a&b|c"'


@pytest.mark.parametrize(
    ("value", "line"),
    [
        # At the interactive prompt %% is NOT an escape (only in .bat files), and quotes do
        # not stop %NAME% expansion: a caret right after each % (outside quotes) does.
        ("100%", "set REACT_APP_BE_SERVER=100%"),
        ("http://h/%PATH%/x", "set REACT_APP_BE_SERVER=http://h/%^PATH%^/x"),
        ("%x%&y", "set REACT_APP_BE_SERVER=%^x%^&y"),
        ('a"b&c(d)', 'set REACT_APP_BE_SERVER=a^"b^&c^(d^)'),
        ("50%^|<>", "set REACT_APP_BE_SERVER=50%^^^|^<^>"),
    ],
)
def test_cmd_line_for_the_interactive_prompt(value, line):
    assert shells.set_line("cmd", value) == line
    assert cmd_prompt_value(line) == value


def cmd_prompt_value(line: str) -> str:
    """What `set VAR=...` at the cmd.exe prompt stores when no variable `^...` is defined.

    Phase 1 expands %NAME% only for a defined NAME (none here start with ^; PATH is defined),
    phase 2 drops a caret and keeps the next character literally.
    """
    import re

    assert not re.search(r"%(?!\^)[^%]+%", line), "an expandable %NAME% is left"
    body = line.split("=", 1)[1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "^":
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


def test_env_be_server_is_checked_like_frontend():
    c = MockContext()
    c.config.ese = {"be_server": URL}
    with pytest.raises(Exit) as err:
        tasks.env(c, shell="bash", be_server="nonsense")
    assert err.value.code == 1
    assert "--be-server 'nonsense' is not an http(s) URL" in str(err.value.message)


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


def test_lan_skips_a_neutrally_named_interface_without_broadcast_on_the_default_route():
    # Only the missing broadcast address marks vpn0 as point-to-point; its name matches no rule.
    ni = FakeNetifaces(
        {
            "vpn0": [nic("10.8.0.6")],
            "eth0": [nic("192.168.1.23", "192.168.1.255")],
        },
        default="vpn0",
    )
    assert lan.lan_ipv4(ni, names={}) == "192.168.1.23"
    guid = "{3F2A5B1C-0000-4D4E-9A8B-112233445566}"
    only_vpn = FakeNetifaces({guid: [nic("10.8.0.6")]}, default=guid)
    with pytest.raises(EseError, match="no LAN IPv4 address found"):
        lan.lan_ipv4(only_vpn, names={})


def test_lan_skips_windows_virtual_adapters_by_their_friendly_name():
    # netifaces on Windows names interfaces by GUID; psutil's names tell which one is WSL's.
    wsl, lan_nic = (
        "{11111111-AAAA-4BBB-8CCC-000000000001}",
        "{22222222-AAAA-4BBB-8CCC-000000000002}",
    )
    ni = FakeNetifaces(
        {
            wsl: [nic("172.29.112.1", "172.29.127.255")],
            lan_nic: [nic("192.168.0.40", "192.168.0.255")],
        },
        default=None,
    )
    names = {"172.29.112.1": "vEthernet (WSL)", "192.168.0.40": "Ethernet"}
    assert lan.lan_ipv4(ni, names=names) == "192.168.0.40"
    hyperv = FakeNetifaces({wsl: [nic("172.29.112.1", "172.29.127.255")]}, default=wsl)
    with pytest.raises(EseError):
        lan.lan_ipv4(hyperv, names={"172.29.112.1": "vEthernet (Default Switch)"})
    # Where the name itself is readable, it is enough.
    named = FakeNetifaces(
        {
            "vEthernet (WSL)": [nic("172.29.112.1", "172.29.127.255")],
            "VirtualBox Host-Only Network": [nic("192.168.56.1", "192.168.56.255")],
            "Wi-Fi": [nic("192.168.178.20", "192.168.178.255")],
        },
        default=None,
    )
    assert lan.lan_ipv4(named, names={}) == "192.168.178.20"


def test_friendly_names_come_from_psutil_by_address():
    from types import SimpleNamespace

    ps = SimpleNamespace(
        net_if_addrs=lambda: {
            "vEthernet (WSL)": [SimpleNamespace(family=2, address="172.29.112.1")],
            "Ethernet": [
                SimpleNamespace(family=23, address="fe80::1"),
                SimpleNamespace(family=2, address="192.168.0.40"),
            ],
        }
    )
    assert lan.friendly_names(ps) == {"172.29.112.1": "vEthernet (WSL)", "192.168.0.40": "Ethernet"}


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
