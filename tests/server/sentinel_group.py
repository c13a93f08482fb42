"""A replicated Redis on loopback: a master, its replicas and the Sentinels that watch them.

Real processes on free ports, in a temporary directory, for the failover tests and the ack
benchmark (benchmarks/ack_bench.py). `SentinelGroup.start()` returns once every replica is
in sync and the Sentinels agree (SENTINEL CKQUORUM); `stop()` ends every process it started,
whatever state the test left them in.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis

from ese.host.processes import TimedOut, stop_process, wait_until
from tests.conftest import RedisServer
from tests.tooling import free_port

MASTER_NAME = "ese"


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the process for :{port} exited with code {proc.returncode}")
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True

    wait_until(listening, 10.0, f"a listener on 127.0.0.1:{port}", 0.05, retry=OSError)


class Sentinel:
    """One redis-sentinel process with its own (rewritable) config file."""

    def __init__(self, binary: str, port: int, conf: Path, log: Path) -> None:
        self.binary = binary
        self.port = port
        self.conf = conf
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        _wait_listening(self.port, self.proc)

    def stop(self) -> None:
        """Stop it (no-op when stopped)."""
        if self.proc is not None:
            stop_process(self.proc, 10)
            self.proc = None

    def client(self) -> redis.Redis:
        """A redis-py connection to this Sentinel (decoded replies)."""
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


class SentinelGroup:
    """`master`, `replicas` (RedisServer) and `sentinels`, all on 127.0.0.1."""

    def __init__(
        self,
        redis_binary: str,
        sentinel_binary: str,
        tmp: Path,
        replicas: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.tmp = tmp
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        # --dir: a replica saves the copy it receives from its master (dump.rdb) in its dir.
        # No sync delay: a master waits 5 s by default for more replicas before a full sync.
        common = ["--dir", str(tmp), "--repl-diskless-sync-delay", "0"]
        self.master = RedisServer(redis_binary, free_port(), common)
        follow = [*common, "--replicaof", "127.0.0.1", str(self.master.port)]
        self.replicas = [RedisServer(redis_binary, free_port(), follow) for _ in range(replicas)]
        self.sentinels: list[Sentinel] = []
        for n in range(sentinels):
            port = free_port()
            self.sentinels.append(
                Sentinel(sentinel_binary, port, tmp / f"sentinel-{n}.conf", tmp / f"s{n}.log")
            )
        self.nodes = [self.master, *self.replicas]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every Sentinel, as a shard is configured with them."""
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def start(self, timeout: float = 60.0) -> None:
        """Start every process; return once the replicas are in sync and the quorum is OK."""
        for node in self.nodes:
            node.start()
        # The replicas first: a Sentinel learns them from the master's INFO, which it reads
        # on connecting and then only every 10 s.
        self.wait_for_replicas(self.master.port, len(self.replicas), timeout)
        for sentinel in self.sentinels:
            sentinel.conf.write_text(self._sentinel_conf(sentinel.port), "utf-8")
            sentinel.start()
        self.wait_for_sentinels(timeout)

    def _sentinel_conf(self, port: int) -> str:
        return "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "protected-mode no",
                "daemonize no",
                f'dir "{self.tmp}"',
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
                f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {MASTER_NAME} 2",
                "",
            ]
        )

    def stop(self) -> None:
        """Stop every process (sentinels first, so none starts a failover meanwhile)."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()

    def node(self, port: int) -> RedisServer:
        """The data node listening on `port`."""
        return next(n for n in self.nodes if n.port == port)

    @staticmethod
    def client(port: int) -> redis.Redis:
        """A redis-py connection to the data node on `port`."""
        return redis.Redis(port=port, socket_timeout=5)

    def kill(self, node: RedisServer) -> None:
        """SIGKILL a data node (a machine that dies: no shutdown, no last write)."""
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)
        node.proc = None

    def sentinel_master(self) -> tuple[str, int] | None:
        """The master as the first Sentinel that answers names it."""
        for sentinel in self.sentinels:
            if sentinel.proc is None:
                continue
            try:
                reply: Any = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if reply:
                return str(reply[0]), int(reply[1])
        return None

    def wait_for_replicas(self, master_port: int, count: int, timeout: float = 30.0) -> None:
        """Until `count` replicas are online and in sync with the master on `master_port`."""

        def synced() -> bool:
            info: Any = self.client(master_port).info("replication")
            online = [
                v
                for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
            ]
            offset = int(info.get("master_repl_offset", 0))
            return len(online) >= count and all(int(r["offset"]) >= offset for r in online)

        self._wait(synced, timeout, f"{count} replica(s) in sync with :{master_port}")

    def wait_for_sentinels(self, timeout: float = 30.0) -> None:
        """Until every Sentinel knows the others and the replicas (failover can be authorized)."""

        def agreed() -> bool:
            for sentinel in self.sentinels:
                client = sentinel.client()
                client.execute_command("SENTINEL", "CKQUORUM", MASTER_NAME)  # raises unless OK
                known: Any = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                if len(known) < len(self.replicas):
                    return False
            return True

        try:
            self._wait(agreed, timeout, "the Sentinels agree on a quorum")
        except AssertionError as exc:
            logs = "\n".join(
                f"--- {s.log.name}\n{s.log.read_text(errors='replace')[-2000:]}"
                for s in self.sentinels
                if s.log.exists()
            )
            raise AssertionError(f"{exc}\n{logs}") from None

    def wait_for_new_master(self, old: tuple[str, int], timeout: float = 30.0) -> tuple[str, int]:
        """The master every running Sentinel names, once it is not `old` and says ROLE master."""

        def moved() -> tuple[str, int] | None:
            names = set()
            for sentinel in self.sentinels:
                if sentinel.proc is not None:
                    reply: Any = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
                    names.add((str(reply[0]), int(reply[1])))
            if len(names) != 1 or old in names:
                return None
            (new,) = names
            role: Any = self.client(new[1]).execute_command("ROLE")
            return new if role[0] in (b"master", "master") else None

        return self._wait(moved, timeout, f"a master other than {old}")

    @staticmethod
    def _wait(probe: Any, timeout: float, what: str) -> Any:
        try:
            return wait_until(probe, timeout, what, 0.1, retry=(redis.RedisError, OSError))
        except TimedOut as exc:
            raise AssertionError(str(exc)) from None
