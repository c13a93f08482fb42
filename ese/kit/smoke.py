"""Runs each built image briefly the way the generated compose files use it."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ese.kit import REPO_ROOT, SMOKE_DIR, KitError
from ese.kit.catalog import BY_NAME
from ese.kit.containers import exec_in, logs, name_for, run_once, running, until
from ese.kit.output import echo

_UNRESOLVED = "could not resolve address"
# What the python check leaves out of its copy of the repo (as .dockerignore does for builds).
COPY_EXCLUDES = (
    ".git",
    ".nox",
    ".venv",
    "wheelhouse",
    "artifacts",
    "build",
    "dist",
    "node_modules",
    "__pycache__",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "docker/.env",
)


@dataclass(frozen=True)
class Check:
    """Outcome of one image's smoke test."""

    image: str
    ok: bool
    detail: str


def _volume(image: str, path: str) -> str:
    # The named volume `docker run -v NAME:PATH` makes; removed with the container of that name.
    return f"{name_for(f'smoke-{image}')}:{path}"


def _out(container: Any, *command: str) -> str:
    return exec_in(container, command)[1]


def _ok(container: Any, *command: str) -> bool:
    return exec_in(container, command)[0] == 0


def redis() -> Check:
    tag = BY_NAME["redis"].tag
    # The compose file's command, environment and healthcheck.
    command = ["redis-server", "--port", "6379", "--requirepass", "smoke", "--appendonly", "yes"]
    env = {"REDISCLI_AUTH": "smoke"}
    volumes = [_volume("redis", "/data")]
    with running(tag, "smoke-redis", command=command, environment=env, volumes=volumes) as box:
        if not until(box, ["sh", "-c", "redis-cli -p 6379 ping | grep -q PONG"]):
            return Check("redis", False, f"no PONG; logs: {logs(box)}")
        owner = _out(box, "stat", "-c", "%U", "/data/appendonlydir")
        if owner != "redis":
            return Check("redis", False, f"/data/appendonlydir owned by {owner!r}, not redis")
        return Check("redis", True, "redis-cli ping -> PONG; AOF in /data written as redis")


def haproxy() -> Check:
    tag = BY_NAME["haproxy"].tag
    official = "/usr/local/etc/haproxy"
    details = []
    configs = [SMOKE_DIR]
    if (REPO_ROOT / "haproxy" / "haproxy.cfg").is_file():
        configs.append(REPO_ROOT / "haproxy")
    command = ["haproxy", "-c", "-f", f"{official}/haproxy.cfg"]
    for folder in configs:
        out = run_once(tag, "check-haproxy", command=command, volumes=[f"{folder}:{official}:ro"])
        # Outside the compose network the shard names do not resolve (init-addr none allows
        # that); any other warning is a real difference from the official image.
        text = out.output
        warnings = [w for w in text.splitlines() if "[WARNING]" in w and _UNRESOLVED not in w]
        if "Configuration file is valid" not in text or warnings:
            return Check("haproxy", False, f"haproxy -c on {folder}/haproxy.cfg: {text}")
        details.append(f"haproxy -c {folder.relative_to(REPO_ROOT)}/haproxy.cfg valid")
    command = ["haproxy", "-W", "-db", "-f", f"{official}/haproxy.cfg"]
    volumes = [f"{SMOKE_DIR}:{official}:ro"]
    with running(tag, "smoke-haproxy", command=command, volumes=volumes) as box:
        if not until(box, ["wget", "-q", "--spider", "http://127.0.0.1:8100/stats"]):
            return Check("haproxy", False, f"stats page not served; logs: {logs(box)}")
    return Check("haproxy", True, "; ".join([*details, "wget /stats ok as user haproxy"]))


def _tool_check(image: str, tool: str, verb: list[str], config: Path, mount: str) -> str:
    """The image's config checker (promtool, amtool) on a repository config: "" when it passes,
    else what it said."""
    command = [*verb, f"{mount}/{config.name}"]
    volumes = [f"{config.parent}:{mount}:ro"]
    entrypoint = [f"/bin/{tool}"]
    out = run_once(
        image, f"check-{tool}", entrypoint=entrypoint, command=command, volumes=volumes
    ).output
    return "" if "SUCCESS" in out else f"{tool} {' '.join(verb)}: {out}"


def prometheus() -> Check:
    tag = BY_NAME["prometheus"].tag
    details = []
    config = REPO_ROOT / "prometheus" / "prometheus.yml"
    if config.is_file():
        failed = _tool_check(tag, "promtool", ["check", "config"], config, "/etc/prometheus")
        if failed:
            return Check("prometheus", False, failed)
        details.append("promtool check config prometheus/prometheus.yml ok")
    # The compose file's arguments, config mount and data volume.
    volumes = [f"{SMOKE_DIR}:/etc/prometheus:ro", _volume("prometheus", "/prometheus")]
    command = [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--storage.tsdb.retention.time=2d",
        "--web.enable-lifecycle",
    ]
    with running(tag, "smoke-prometheus", command=command, volumes=volumes) as box:
        if not until(box, ["wget", "-q", "--spider", "http://127.0.0.1:9090/-/healthy"]):
            return Check("prometheus", False, f"/-/healthy not ok; logs: {logs(box)}")
        owner = _out(box, "stat", "-c", "%U", "/prometheus/wal")
        if owner != "nobody":
            return Check("prometheus", False, f"/prometheus/wal owned by {owner!r}, not nobody")
    return Check("prometheus", True, "; ".join([*details, "/-/healthy ok, TSDB written as nobody"]))


def grafana() -> Check:
    tag = BY_NAME["grafana"].tag
    env = {
        "GF_SECURITY_ADMIN_USER": "smoke",
        "GF_SECURITY_ADMIN_PASSWORD": "smoke-pw",
        "GF_SERVER_HTTP_PORT": "3000",
    }
    volumes = [_volume("grafana", "/var/lib/grafana")]
    with running(tag, "smoke-grafana", environment=env, volumes=volumes) as box:
        if not until(box, ["wget", "-q", "--spider", "http://127.0.0.1:3000/api/health"]):
            return Check("grafana", False, f"/api/health not ok; logs: {logs(box)}")
        # The admin credentials come from the environment, as compose passes them.
        url = "http://127.0.0.1:3000/api/datasources"
        auth = "Authorization: Basic " + base64.b64encode(b"smoke:smoke-pw").decode()
        fetch = ["wget", "-q", "-O", "/dev/null"]
        if not _ok(box, *fetch, "--header", auth, url):
            return Check("grafana", False, "GF_SECURITY_ADMIN_* credentials were refused")
        if _ok(box, *fetch, url):
            return Check("grafana", False, "/api/datasources answered without credentials")
    return Check("grafana", True, "fake Grafana /api/health ok; admin credentials from GF_* env")


def alertmanager() -> Check:
    tag = BY_NAME["alertmanager"].tag
    details = []
    repo_config = REPO_ROOT / "alertmanager"
    config = repo_config / "alertmanager.yml"
    if config.is_file():
        failed = _tool_check(tag, "amtool", ["check-config"], config, "/etc/alertmanager")
        if failed:
            return Check("alertmanager", False, failed)
        details.append("amtool check-config alertmanager/alertmanager.yml ok")
    # The compose file's arguments, config mount and data volume (the image's own config when
    # the repository has none rendered).
    mount = [f"{repo_config}:/etc/alertmanager:ro"] if details else []
    volumes = [*mount, _volume("alertmanager", "/alertmanager")]
    command = [
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        "--web.listen-address=:9093",
        "--cluster.listen-address=",
    ]
    url = "http://127.0.0.1:9093"
    with running(tag, "smoke-alertmanager", command=command, volumes=volumes) as box:
        if not until(box, ["wget", "-q", "--spider", f"{url}/-/healthy"]):
            return Check("alertmanager", False, f"/-/healthy not ok; logs: {logs(box)}")
        # The API Prometheus posts to, and the one `invoke status` reads.
        alert = '[{"labels": {"alertname": "SmokeTest", "shard": "smoke"}}]'
        post = ["wget", "-q", "-O", "-", "--header", "Content-Type: application/json"]
        if not _ok(box, *post, "--post-data", alert, f"{url}/api/v2/alerts"):
            return Check("alertmanager", False, "POST /api/v2/alerts refused")
        listed = _out(box, "wget", "-q", "-O", "-", f"{url}/api/v2/alerts")
        if '"SmokeTest"' not in listed:
            return Check("alertmanager", False, f"GET /api/v2/alerts: {listed[:300]}")
        # Alertmanager writes its silences and notification log there as nobody.
        if not _ok(box, "sh", "-c", "touch /alertmanager/.smoke && rm /alertmanager/.smoke"):
            owner = _out(box, "stat", "-c", "%U", "/alertmanager")
            return Check("alertmanager", False, f"/alertmanager not writable (owner {owner!r})")
    detail = "/-/healthy ok; an alert posted and listed; /alertmanager writable as nobody"
    return Check("alertmanager", True, "; ".join([*details, detail]))


def _exporter_problem(box: Any, port: int, health: str, wanted: Sequence[str], uid: str) -> str:
    """What is wrong with an exporter in `box` ("" when nothing): its health path does not
    answer, /metrics lacks a `wanted` text, or it runs as another user than `uid`."""
    if not until(box, ["wget", "-q", "--spider", f"http://127.0.0.1:{port}{health}"]):
        return f"{health} not ok; logs: {logs(box)}"
    text = _out(box, "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/metrics")
    missing = [w for w in wanted if w not in text]
    if missing:
        return f"/metrics lacks {missing}: {logs(box)}"
    actual = _out(box, "id", "-u")
    return "" if actual == uid else f"runs as uid {actual!r}, not {uid}"


def redis_exporter() -> Check:
    """The exporter beside the kit's Redis (sharing its network), as in the stack."""
    tag, redis_tag = BY_NAME["redis_exporter"].tag, BY_NAME["redis"].tag
    stream = "ese:events"  # the shards' stream (ese/render/redis_exporter.py)
    command = ["redis-server", "--requirepass", "smoke"]
    env = {"REDISCLI_AUTH": "smoke"}
    with running(
        redis_tag, "smoke-redis_exporter-redis", command=command, environment=env
    ) as redis_box:
        if not until(redis_box, ["sh", "-c", "redis-cli ping | grep -q PONG"]):
            return Check("redis_exporter", False, f"its Redis did not start: {logs(redis_box)}")
        if not _ok(redis_box, "redis-cli", "XADD", stream, "*", "e", "{}"):
            return Check("redis_exporter", False, f"XADD to {stream} failed")
        env = {
            "REDIS_ADDR": "redis://127.0.0.1:6379",
            "REDIS_PASSWORD": "smoke",
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": ":9121",
            "REDIS_EXPORTER_CHECK_SINGLE_STREAMS": stream,
        }
        network = f"container:{redis_box.name}"
        with running(tag, "smoke-redis_exporter", environment=env, network_mode=network) as box:
            wanted = (
                "redis_up 1",
                "redis_memory_max_bytes",
                f'redis_stream_length{{db="db0",stream="{stream}"}} 1',
            )
            problem = _exporter_problem(box, 9121, "/health", wanted, "59000")
            if problem:
                return Check("redis_exporter", False, problem)
    return Check(
        "redis_exporter", True, "/health ok; redis_up 1 and the stream length with a password"
    )


def node_exporter() -> Check:
    """node-exporter as the Swarm stack runs it: the host's /proc and /sys mounted read-only."""
    tag = BY_NAME["node_exporter"].tag
    command = ["--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--web.listen-address=:9100"]
    volumes = ["/proc:/host/proc:ro", "/sys:/host/sys:ro"]
    with running(
        tag, "smoke-node_exporter", command=command, volumes=volumes, hostname="smoke-node"
    ) as box:
        # The dashboard's per-node panels and EseNodeDown read these.
        wanted = ('nodename="smoke-node"', "node_load1", "node_cpu_seconds_total", "MemTotal")
        problem = _exporter_problem(box, 9100, "/metrics", wanted, "65534")  # nobody
        if problem:
            return Check("node_exporter", False, problem)
    return Check("node_exporter", True, "/metrics names the node; CPU, memory and load there")


def python(extras: Sequence[str]) -> Check:
    """`pip install .[extras]` of this repo inside the Python base, from the wheelhouse only."""
    tag = BY_NAME["python"].tag
    excludes = " ".join(f"--exclude='./{p}' --exclude='{p}'" for p in COPY_EXCLUDES)
    target = f"/tmp/src[{','.join(extras)}]"
    # The repo is mounted read-only and copied: setuptools writes build files into the tree.
    script = (
        f"set -e; mkdir /tmp/src; tar -C /src {excludes} -cf - . | tar -C /tmp/src -xf -; "
        f"pip install --no-cache-dir '{target}'; pip check; "
        "python -c 'import ese'"
    )
    ran = run_once(
        tag, "smoke-python", command=["sh", "-c", script], volumes=[f"{REPO_ROOT}:/src:ro"]
    )
    lines = ran.output.splitlines()
    if ran.code != 0:
        return Check("python", False, " | ".join(lines[-6:]))
    installed = next((line for line in lines if line.startswith("Successfully installed")), "")
    count = len(installed.split()) - 2
    detail = f"pip install {target} offline: {count} distributions; pip check ok"
    return Check("python", True, detail)


def run(names: Sequence[str], extras: Sequence[str]) -> list[Check]:
    """Smoke-test the named kit images (the Debian base has no test of its own)."""
    checks: dict[str, Callable[[], Check]] = {
        "redis": redis,
        "haproxy": haproxy,
        "prometheus": prometheus,
        "alertmanager": alertmanager,
        "redis_exporter": redis_exporter,
        "node_exporter": node_exporter,
        "python": lambda: python(extras),
        "grafana": grafana,
    }
    results = []
    for name in names:
        if name not in checks:
            continue
        echo(f"smoke test: {name}")
        start = time.monotonic()
        try:
            result = checks[name]()
        except KitError as exc:
            result = Check(name, False, str(exc))
        echo(f"{'ok' if result.ok else 'FAILED'} {name} ({time.monotonic() - start:.1f} s)")
        results.append(result)
    return results
