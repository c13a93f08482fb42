"""The Swarm stack's Redis and Sentinel start scripts, run for real on loopback.

Each script runs as rendered (swarm_redis.py) with real redis-server, redis-cli and Sentinel
binaries, in a private mount namespace whose /etc/hosts gives every service name its own
loopback address (redis-1 127.0.0.11, ...), as Docker's DNS gives each task its own address.
Only what a container provides is swapped: the secret file's path, the Sentinel config's
path, the image entrypoint (here plain exec), and a `bind` to the instance's own address
(in a container each has its own network; here they share one port on different addresses).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ese.checks.tools import with_hosts
from ese.host.processes import TimedOut, wait_until
from ese.render import swarm_redis
from ese.topology import Topology, load
from tests.tooling import free_port, missing, need_binary, stop_process

PASSWORD = "live-trio-secret"


def _address(name: str) -> str:
    """redis-1 -> 127.0.0.11, sentinel-2 -> 127.0.0.22."""
    kind, number = name.rsplit("-", 1)
    return f"127.0.0.{(1 if kind == 'redis' else 2) * 10 + int(number)}"


@dataclasses.dataclass
class Trio:
    """The started instances of one test, their logs, and how to reach them."""

    topo: Topology
    tmp: Path
    hosts: Path
    procs: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)

    def script(self, name: str) -> str:
        ip, sen = _address(name), self.topo.sentinel
        if name.startswith("redis-"):
            text = swarm_redis.redis_script(self.topo, name)
            text = text.replace("redis-server --port", f"redis-server --bind {ip} --port")
        else:
            text = swarm_redis.sentinel_script(self.topo, name)
            text = text.replace(f'"port {sen.port}"', f'"bind {ip}" "port {sen.port}"')
            text = text.replace(swarm_redis.SENTINEL_CONF, str(self.tmp / name / "sentinel.conf"))
        secret = self.tmp / "redis_password"
        return text.replace("/run/secrets/redis_password", str(secret)).replace(
            "exec docker-entrypoint.sh ", "exec "
        )

    def start(self, name: str) -> None:
        home = self.tmp / name
        home.mkdir(exist_ok=True)
        log = (home / "log").open("ab")
        # The namespace's /etc/hosts, then the rendered script (its exec ends in the server).
        wrapper = f'mount --bind "{self.hosts}" /etc/hosts && exec sh -c "$1"'
        argv = ["unshare", "--map-root-user", "--mount", "sh", "-c", wrapper, "sh"]
        self.procs[name] = subprocess.Popen(
            [*argv, self.script(name)], cwd=home, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.tmp / name / "log").read_text(encoding="utf-8", errors="replace")

    def cli(self, name: str, *args: str) -> str:
        """One command through redis-cli (the Redis password for a Redis); its raw reply."""
        port = self.topo.redis.port if name.startswith("redis-") else self.topo.sentinel.port
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
        if name.startswith("redis-"):
            env["REDISCLI_AUTH"] = PASSWORD
        out = subprocess.run(
            ["redis-cli", "-h", _address(name), "-p", str(port), "--raw", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode != 0:
            raise ConnectionError(out.stderr.strip() or out.stdout.strip())
        return out.stdout.strip()

    def wait(self, what: str, probe: Any, seconds: float = 30) -> Any:
        try:
            return wait_until(probe, seconds, what, 0.2, retry=(ConnectionError, ValueError))
        except TimedOut as exc:
            logs = "\n".join(f"--- {n}\n{self.log(n)[-1500:]}" for n in self.procs)
            pytest.fail(f"{exc}\n{logs}", pytrace=False)

    def master_per(self, sentinel: str) -> str:
        return self.cli(sentinel, "SENTINEL", "get-master-addr-by-name", "ese").split("\n")[0]

    def role(self, name: str) -> list[str]:
        return self.cli(name, "ROLE").split("\n")

    def online_replicas(self, name: str) -> int:
        """Replicas that master `name` streams to (state=online in INFO replication)."""
        return self.cli(name, "INFO", "replication").count("state=online")


def _fields(reply: str) -> dict[str, str]:
    items = reply.split("\n")
    return dict(zip(items[::2], items[1::2], strict=False))


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    if not sys.platform.startswith("linux"):
        missing("loopback addresses beyond 127.0.0.1", "Linux routes all of 127/8 to lo")
    for tool in ("redis-server", "redis-cli", "timeout"):
        need_binary(tool, "apt-get install redis-server redis-tools coreutils")
    if with_hosts(["true"], [], tmp_path) is None:
        missing("unshare with mount namespaces", "Linux with util-linux; root or user namespaces")
    base = load()
    topo = dataclasses.replace(
        base,
        redis=dataclasses.replace(base.redis, port=free_port()),
        # Quicker than the stack's, so the failover is quick too; the same settings otherwise.
        sentinel=dataclasses.replace(
            base.sentinel, port=free_port(), down_after_ms=1000, failover_timeout_ms=2000
        ),
    )
    names = [*topo.swarm.redis_services, *topo.sentinel.services]
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n" + "".join(f"{_address(n)} {n}\n" for n in names),
        encoding="utf-8",
    )
    (tmp_path / "redis_password").write_text(PASSWORD, encoding="utf-8")
    running = Trio(topo, tmp_path, hosts)
    try:
        yield running
    finally:
        for proc in running.procs.values():
            stop_process(proc, timeout=5)


def test_without_sentinels_each_redis_takes_its_rendered_role_and_refuses_lone_writes(
    trio: Trio,
) -> None:
    trio.start("redis-1")
    assert trio.wait("redis-1 up", lambda: trio.role("redis-1"))[0] == "master"
    assert "no Sentinel answered; as rendered, redis-1 is master" in trio.log("redis-1")
    # min-replicas-to-write 1: a master no replica follows takes no event.
    refused = trio.cli("redis-1", "XADD", "ese:events", "*", "e", "{}")
    assert refused.startswith("NOREPLICAS"), refused

    trio.start("redis-2")
    role = trio.wait("redis-2 up", lambda: trio.role("redis-2"))
    assert role[:3] == ["slave", "redis-1", str(trio.topo.redis.port)]

    def stored() -> str:
        reply = trio.cli("redis-1", "XADD", "ese:events", "*", "e", "{}")
        return "" if reply.startswith("NOREPLICAS") else reply

    assert re.fullmatch(r"\d+-\d+", trio.wait("a write once redis-2 follows", stored))


def test_sentinels_fail_over_and_a_restarted_master_comes_back_as_a_replica(trio: Trio) -> None:
    topo = trio.topo
    for name in (*topo.swarm.redis_services, *topo.sentinel.services):
        trio.start(name)

    def settled() -> bool:
        master = _fields(trio.cli("sentinel-1", "SENTINEL", "master", "ese"))
        return (
            master.get("name") == "ese"
            and master.get("ip") == "redis-1"  # names, not addresses (announce-hostnames)
            and master.get("num-slaves") == "2"
            and master.get("num-other-sentinels") == "2"
            and "s_down" not in master.get("flags", "")
            and trio.online_replicas("redis-1") == 2
        )

    trio.wait("the Sentinels to see redis-1 with 2 replicas and each other", settled)
    peers = trio.cli("sentinel-1", "SENTINEL", "sentinels", "ese").split("\n")
    assert {swarm_redis.sentinel_id(topo, f"sentinel-{n}") for n in (2, 3)} <= set(peers)
    first = trio.cli("redis-1", "XADD", "ese:events", "*", "e", "before")
    assert re.fullmatch(r"\d+-\d+", first), first
    assert int(trio.cli("redis-1", "WAIT", "2", "5000")) == 2

    trio.procs["redis-1"].kill()  # SIGKILL: as when its machine dies
    trio.procs["redis-1"].wait(timeout=10)

    def promoted() -> str:
        name = trio.master_per("sentinel-1")
        return name if name != "redis-1" and trio.role(name)[0] == "master" else ""

    master = trio.wait("a replica promoted", promoted)
    assert master in ("redis-2", "redis-3")

    def acknowledged() -> str:
        reply = trio.cli(master, "XADD", "ese:events", "*", "e", "after")
        return reply if re.fullmatch(r"\d+-\d+", reply) else ""

    trio.wait("a write on the new master", acknowledged)
    assert int(trio.cli(master, "WAIT", "1", "5000")) >= 1
    assert first in trio.cli(master, "XRANGE", "ese:events", "-", "+").split("\n")

    # The old master restarts: it asks the Sentinels and starts as the new master's replica.
    trio.start("redis-1")
    role = trio.wait("redis-1 back", lambda: trio.role("redis-1"))
    assert role[:2] == ["slave", master]
    assert f"redis-1: the Sentinels name {master} master" in trio.log("redis-1")

    # A restarted Sentinel monitors the master its peers name, under its fixed id.
    trio.procs["sentinel-3"].terminate()
    trio.procs["sentinel-3"].wait(timeout=10)
    trio.start("sentinel-3")
    assert trio.wait("sentinel-3 back", lambda: trio.master_per("sentinel-3")) == master
    assert trio.cli("sentinel-3", "SENTINEL", "myid") == swarm_redis.sentinel_id(topo, "sentinel-3")
