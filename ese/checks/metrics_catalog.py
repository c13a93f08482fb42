"""The metric names the stack really exports, read from live processes.

The dashboard check compares every query against these, so a renamed metric in the server or
a different HAProxy version fails `nox -s configs` instead of leaving an empty panel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ese.checks.promql import exposed_names
from ese.host.ports import free_port
from ese.host.processes import TimedOut, wait_until
from ese.render import haproxy_cfg
from ese.topology import Topology

# Series Prometheus itself adds to every target.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


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
        try:
            text = _scrape(f"http://127.0.0.1:{port}/metrics", timeout)
        except RuntimeError:
            exited = proc.poll() is not None and proc.stderr is not None
            err = proc.stderr.read().decode(errors="replace")[-500:] if exited else ""  # type: ignore[union-attr]
            raise RuntimeError(f"ese-server did not serve /metrics; {err}".strip()) from None
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
        container = ""
        if haproxy_bin:
            cmd = [haproxy_bin, "-db", "-f", str(path)]
        elif image:
            # The official image runs HAProxy as an unprivileged user: let it read the config.
            Path(tmp).chmod(0o755)
            path.chmod(0o644)
            port = lb.exporter_port
            # Named, so the finally below can remove it: stopping the `docker run` client
            # alone leaves the container running.
            container = f"ese-metrics-check-{port}"
            cmd = ["docker", "run", "--rm", "--name", container, "-p", f"127.0.0.1:{port}:{port}",
                   "-v", f"{tmp}:/usr/local/etc/haproxy:ro", image,
                   "haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]  # fmt: skip
        else:
            raise RuntimeError("neither a haproxy binary nor a haproxy image to read metrics from")
        try:
            with _process(cmd):
                text = _scrape(f"http://127.0.0.1:{lb.exporter_port}/metrics", timeout)
        finally:
            if container:
                subprocess.run(
                    ["docker", "rm", "-f", container], capture_output=True, timeout=60, check=False
                )
    return exposed_names(text)
