"""The metric names the stack really exports, read from live processes.

The dashboard check compares every query against these, so a renamed metric in the server or
a different HAProxy version fails `nox -s configs` instead of leaving an empty panel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ese.checks.promql import exposed_names
from ese.checks.tools import Missing, tool_image
from ese.errors import EseError
from ese.host import sdk
from ese.host.ports import free_port
from ese.host.processes import TimedOut, wait_until
from ese.render import haproxy_cfg
from ese.render.redis_exporter import STREAM_KEY
from ese.topology import Topology

# Series Prometheus itself adds to every target, and those its alerting rules write.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMETHEUS_RULE_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}
# redis_exporter's binary: Debian's package name, then upstream's.
REDIS_EXPORTER_BINARIES = ("prometheus-redis-exporter", "redis_exporter")
# node-exporter's likewise (the Swarm stack's per-node metrics).
NODE_EXPORTER_BINARIES = ("prometheus-node-exporter", "node_exporter")


def _scrape(url: str, timeout: float) -> str:
    def answer() -> str:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode("utf-8"))

    try:
        return wait_until(answer, timeout, f"an answer from {url}", 0.2, retry=OSError)
    except TimedOut as exc:
        raise RuntimeError(str(exc)) from None


@contextlib.contextmanager
def _process(
    cmd: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _metrics_of(proc: subprocess.Popen[bytes], url: str, what: str, timeout: float) -> str:
    """The /metrics text `proc` serves at `url`; a RuntimeError with its last words if not."""
    try:
        return _scrape(url, timeout)
    except RuntimeError:
        exited = proc.poll() is not None and proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")[-500:] if exited else ""  # type: ignore[union-attr]
        raise RuntimeError(f"{what} did not serve /metrics; {err}".strip()) from None


@contextlib.contextmanager
def _container(image: str, cfg_dir: Path, port: int) -> Iterator[object]:
    """HAProxy from `image` on the config in `cfg_dir`, its exporter on loopback `port`."""
    docker_errors = importlib.import_module("docker.errors")
    try:
        cli = sdk.client()
    except EseError as exc:
        raise RuntimeError(str(exc)) from None
    try:
        with sdk.container(
            cli,
            image,
            ["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
            ports={f"{port}/tcp": ("127.0.0.1", port)},
            volumes={str(cfg_dir): {"bind": "/usr/local/etc/haproxy", "mode": "ro"}},
        ) as box:
            yield box
    except docker_errors.APIError as exc:
        raise RuntimeError(f"HAProxy from {image} did not start: {exc.explanation}") from None
    finally:
        cli.close()


def ese_server_metrics(timeout: float = 30) -> set[str]:
    """Names an ese-server exposes, from a real shard whose Redis is unreachable.

    A shard must serve /metrics without Redis, so no Redis is needed here.
    """
    port = free_port()
    env = {
        **os.environ,
        "SERVER_PORT": str(port),
        "ESE_ROLE": "all",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    with _process([sys.executable, "-m", "ese_server"], env) as proc:
        text = _metrics_of(proc, f"http://127.0.0.1:{port}/metrics", "ese-server", timeout)
    return exposed_names(text)


def haproxy_metrics(
    topo: Topology, haproxy_bin: str | None, image: str | None = None, timeout: float = 30
) -> set[str]:
    """Names HAProxy's built-in exporter exposes, from a real HAProxy on spare ports.

    The local binary when there is one, else `image` run by Docker with the exporter published
    on loopback.
    """
    lb = dataclasses.replace(topo.balancer, port=free_port(), exporter_port=free_port())
    cfg = haproxy_cfg.config(dataclasses.replace(topo, balancer=lb))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "haproxy.cfg"
        path.write_text(cfg, encoding="utf-8")
        running: contextlib.AbstractContextManager[object]
        if haproxy_bin:
            running = _process([haproxy_bin, "-db", "-f", str(path)])
        elif image:
            # The official image runs HAProxy as an unprivileged user: let it read the config.
            Path(tmp).chmod(0o755)
            path.chmod(0o644)
            running = _container(image, Path(tmp), lb.exporter_port)
        else:
            raise RuntimeError("neither a haproxy binary nor a haproxy image to read metrics from")
        with running:
            text = _scrape(f"http://127.0.0.1:{lb.exporter_port}/metrics", timeout)
    return exposed_names(text)


def _resp(*args: str) -> bytes:
    """One Redis command in RESP, the protocol redis-cli speaks."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _redis_call(port: int, timeout: float, *commands: tuple[str, ...]) -> None:
    """Send commands to a local Redis once it accepts connections; fail on an error reply."""

    def send() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            for command in commands:
                sock.sendall(_resp(*command))
                reply = sock.recv(4096)
                if reply.startswith(b"-"):
                    raise RuntimeError(f"redis {command[0]}: {reply.decode().strip()}")
        return True

    try:
        wait_until(send, timeout, f"redis-server on port {port}", 0.1, retry=OSError)
    except TimedOut as exc:
        raise RuntimeError(str(exc)) from None


def _redis_argv(redis_bin: str, port: int, password: str, data: Path) -> list[str]:
    """A throw-away redis-server on loopback, bounded and with a password as in the stack."""
    data.mkdir()
    return [
        redis_bin,
        *("--port", str(port), "--bind", "127.0.0.1", "--requirepass", password),
        *("--masterauth", password, "--maxmemory", "64mb", "--maxmemory-policy", "noeviction"),
        *("--save", "", "--appendonly", "no", "--dir", str(data)),
    ]


def _answer_with(url: str, needle: str, what: str, timeout: float) -> str:
    """The exporter's answer at `url` once it holds `needle` (an exporter answers at once,
    with redis_up 0, while its Redis is still starting)."""

    def answer() -> str:
        text = _scrape(url, 5)
        return text if needle in text else ""

    try:
        return wait_until(answer, timeout, what, 0.2, retry=RuntimeError)
    except TimedOut as exc:
        raise RuntimeError(str(exc)) from None


def redis_exporter_metrics(exporter_bin: str, redis_bin: str, timeout: float = 30) -> set[str]:
    """Names redis_exporter exposes, from the real exporter watching real Redis processes.

    As the stacks run them: a master with a password and maxmemory and the shards' stream key
    (so the stream metrics, REDIS_EXPORTER_CHECK_SINGLE_STREAMS, are in the answer), read as
    compose does (REDIS_ADDR, /metrics); a replica of it, read as the Swarm stack does
    (/scrape?target=), for the replication series only a master with a replica (lag, offsets)
    or a replica (its link) exports; and a Sentinel watching them, read by a second exporter
    without a password, for the Sentinel's view.
    """
    master, replica, sentinel = free_port(), free_port(), free_port()
    exporter, sentinel_exporter, password = free_port(), free_port(), "configcheck"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conf = root / "sentinel.conf"
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {tmp}\n"
            f"sentinel monitor ese 127.0.0.1 {master} 1\nsentinel auth-pass ese {password}\n",
            encoding="utf-8",
        )
        replica_argv = _redis_argv(redis_bin, replica, password, root / "replica")
        env = {
            **os.environ,
            "REDIS_ADDR": f"redis://127.0.0.1:{master}",
            "REDIS_PASSWORD": password,
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{exporter}",
            "REDIS_EXPORTER_CHECK_SINGLE_STREAMS": STREAM_KEY,
        }
        plain = {
            **{k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"},
            "REDIS_ADDR": "",
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{sentinel_exporter}",
        }
        with contextlib.ExitStack() as running:
            running.enter_context(_process(_redis_argv(redis_bin, master, password, root / "m")))
            _redis_call(master, timeout, ("AUTH", password), ("XADD", STREAM_KEY, "*", "e", "{}"))
            running.enter_context(
                _process([*replica_argv, "--replicaof", "127.0.0.1", str(master)])
            )
            running.enter_context(_process([redis_bin, str(conf), "--sentinel"]))
            proc = running.enter_context(_process([exporter_bin], env))
            url = f"http://127.0.0.1:{exporter}"
            _metrics_of(proc, f"{url}/metrics", "redis_exporter", timeout)
            texts = [
                _answer_with(f"{url}/metrics", "redis_connected_slaves 1", "a replica", timeout),
                _answer_with(
                    f"{url}/scrape?target=redis://127.0.0.1:{replica}",
                    "redis_master_link_up{",
                    "the replica's metrics",
                    timeout,
                ),
            ]
            running.enter_context(_process([exporter_bin], plain))
            texts.append(
                _answer_with(
                    f"http://127.0.0.1:{sentinel_exporter}/scrape?target=redis://127.0.0.1:{sentinel}",
                    "redis_sentinel_master_ok_slaves{",
                    "the Sentinel's metrics",
                    timeout,
                )
            )
    if "redis_up 1" not in texts[0]:
        raise RuntimeError("redis_exporter could not reach the redis-server it was given")
    return set().union(*(exposed_names(text) for text in texts))


def node_exporter_metrics(exporter_bin: str, timeout: float = 30) -> set[str]:
    """Names node-exporter exposes, from the real exporter reading this machine."""
    port = free_port()
    with _process([exporter_bin, f"--web.listen-address=127.0.0.1:{port}"]) as proc:
        text = _metrics_of(proc, f"http://127.0.0.1:{port}/metrics", "node-exporter", timeout)
    return exposed_names(text)


def live_metrics(topo: Topology) -> set[str] | Missing:
    """Every metric name the stack's processes export, read from real ones, plus the series
    Prometheus writes itself; Missing when a tool to run them is not here."""
    haproxy_bin = shutil.which("haproxy")
    image = None if haproxy_bin else tool_image(topo, "haproxy")
    if haproxy_bin is None and image is None:
        return Missing("haproxy", "needed to read its exporter's metric names; or run Docker")
    exporter = next(filter(None, map(shutil.which, REDIS_EXPORTER_BINARIES)), None)
    redis_server = shutil.which("redis-server")
    if exporter is None or redis_server is None:
        return Missing(
            "prometheus-redis-exporter and redis-server",
            "needed to read redis_exporter's metric names; apt-get install "
            "prometheus-redis-exporter redis-server (brew install redis_exporter redis)",
        )
    node_exporter = next(filter(None, map(shutil.which, NODE_EXPORTER_BINARIES)), None)
    if node_exporter is None:
        return Missing(
            "prometheus-node-exporter",
            "needed to read node-exporter's metric names; apt-get install "
            "prometheus-node-exporter (brew install node_exporter)",
        )
    known = ese_server_metrics() | haproxy_metrics(topo, haproxy_bin, image)
    known |= redis_exporter_metrics(exporter, redis_server)
    known |= node_exporter_metrics(node_exporter)
    return known | PROMETHEUS_BUILTINS | PROMETHEUS_RULE_SERIES
