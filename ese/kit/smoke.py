"""Runs each built image briefly the way the generated compose files use it."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ese.host.processes import TimedOut, wait_until
from ese.kit import REPO_ROOT, SMOKE_DIR, KitError
from ese.kit.catalog import BY_NAME
from ese.kit.dockercli import docker
from ese.kit.output import echo

WAIT_SECONDS = 30.0
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


def _name(image: str) -> str:
    return f"ese-offline-smoke-{image}-{os.getpid()}"


@contextmanager
def _container(image: str, run_args: Sequence[str]) -> Iterator[str]:
    """A detached container plus a named volume, both removed afterwards."""
    name = _name(image)
    try:
        docker("run", "-d", "--name", name, *run_args, capture=True)
        yield name
    finally:
        docker("rm", "-f", "-v", name, capture=True, check=False)
        docker("volume", "rm", "-f", name, capture=True, check=False)


def _until(name: str, probe: Sequence[str]) -> bool:
    """Run `probe` in the container until it succeeds, at most WAIT_SECONDS."""

    def outcome() -> str:
        if docker("exec", name, *probe, capture=True, check=False).returncode == 0:
            return "ok"
        state = docker("inspect", "-f", "{{.State.Running}}", name, capture=True, check=False)
        return "" if state.stdout.strip() == "true" else "stopped"

    try:
        return wait_until(outcome, WAIT_SECONDS, f"{name} answers") == "ok"
    except TimedOut:
        return False


def _logs(name: str) -> str:
    proc = docker("logs", "--tail", "5", name, capture=True, check=False)
    return " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])


def _out(*args: str) -> str:
    proc = docker(*args, capture=True, check=False)
    return (proc.stdout + proc.stderr).strip()


def redis() -> Check:
    tag = BY_NAME["redis"].tag
    # The compose file's command, environment and healthcheck.
    run = ["-e", "REDISCLI_AUTH=smoke", "-v", f"{_name('redis')}:/data", tag]
    run += ["redis-server", "--port", "6379", "--requirepass", "smoke", "--appendonly", "yes"]
    with _container("redis", run) as name:
        if not _until(name, ["sh", "-c", "redis-cli -p 6379 ping | grep -q PONG"]):
            return Check("redis", False, f"no PONG; logs: {_logs(name)}")
        owner = _out("exec", name, "stat", "-c", "%U", "/data/appendonlydir")
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
    for folder in configs:
        out = _out(
            "run",
            "--rm",
            "-v",
            f"{folder}:{official}:ro",
            tag,
            "haproxy",
            "-c",
            "-f",
            f"{official}/haproxy.cfg",
        )
        # Outside the compose network the shard names do not resolve (init-addr none allows
        # that); any other warning is a real difference from the official image.
        warnings = [w for w in out.splitlines() if "[WARNING]" in w and _UNRESOLVED not in w]
        if "Configuration file is valid" not in out or warnings:
            return Check("haproxy", False, f"haproxy -c on {folder}/haproxy.cfg: {out}")
        details.append(f"haproxy -c {folder.relative_to(REPO_ROOT)}/haproxy.cfg valid")
    run = [
        "-v",
        f"{SMOKE_DIR}:{official}:ro",
        tag,
        "haproxy",
        "-W",
        "-db",
        "-f",
        f"{official}/haproxy.cfg",
    ]
    with _container("haproxy", run) as name:
        if not _until(name, ["wget", "-q", "--spider", "http://127.0.0.1:8100/stats"]):
            return Check("haproxy", False, f"stats page not served; logs: {_logs(name)}")
    return Check("haproxy", True, "; ".join([*details, "wget /stats ok as user haproxy"]))


def prometheus() -> Check:
    tag = BY_NAME["prometheus"].tag
    details = []
    if (REPO_ROOT / "prometheus" / "prometheus.yml").is_file():
        out = _out(
            "run",
            "--rm",
            "--entrypoint",
            "/bin/promtool",
            "-v",
            f"{REPO_ROOT / 'prometheus'}:/etc/prometheus:ro",
            tag,
            "check",
            "config",
            "/etc/prometheus/prometheus.yml",
        )
        if "SUCCESS" not in out:
            return Check("prometheus", False, f"promtool check config: {out}")
        details.append("promtool check config prometheus/prometheus.yml ok")
    # The compose file's arguments, config mount and data volume.
    run = ["-v", f"{SMOKE_DIR}:/etc/prometheus:ro", "-v", f"{_name('prometheus')}:/prometheus"]
    run += [
        tag,
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--storage.tsdb.retention.time=2d",
        "--web.enable-lifecycle",
    ]
    with _container("prometheus", run) as name:
        if not _until(name, ["wget", "-q", "--spider", "http://127.0.0.1:9090/-/healthy"]):
            return Check("prometheus", False, f"/-/healthy not ok; logs: {_logs(name)}")
        owner = _out("exec", name, "stat", "-c", "%U", "/prometheus/wal")
        if owner != "nobody":
            return Check("prometheus", False, f"/prometheus/wal owned by {owner!r}, not nobody")
    return Check("prometheus", True, "; ".join([*details, "/-/healthy ok, TSDB written as nobody"]))


def grafana() -> Check:
    tag = BY_NAME["grafana"].tag
    run = ["-e", "GF_SECURITY_ADMIN_USER=smoke", "-e", "GF_SECURITY_ADMIN_PASSWORD=smoke-pw"]
    run += ["-e", "GF_SERVER_HTTP_PORT=3000", "-v", f"{_name('grafana')}:/var/lib/grafana", tag]
    with _container("grafana", run) as name:
        if not _until(name, ["wget", "-q", "--spider", "http://127.0.0.1:3000/api/health"]):
            return Check("grafana", False, f"/api/health not ok; logs: {_logs(name)}")
        # The admin credentials come from the environment, as compose passes them.
        url = "http://127.0.0.1:3000/api/datasources"
        auth = "Authorization: Basic " + base64.b64encode(b"smoke:smoke-pw").decode()
        fetch = ["exec", name, "wget", "-q", "-O", "/dev/null"]
        if docker(*fetch, "--header", auth, url, capture=True, check=False).returncode != 0:
            return Check("grafana", False, "GF_SECURITY_ADMIN_* credentials were refused")
        if docker(*fetch, url, capture=True, check=False).returncode == 0:
            return Check("grafana", False, "/api/datasources answered without credentials")
    return Check("grafana", True, "fake Grafana /api/health ok; admin credentials from GF_* env")


def alertmanager() -> Check:
    tag = BY_NAME["alertmanager"].tag
    details = []
    repo_config = REPO_ROOT / "alertmanager"
    if (repo_config / "alertmanager.yml").is_file():
        out = _out(
            "run",
            "--rm",
            "--entrypoint",
            "/bin/amtool",
            "-v",
            f"{repo_config}:/etc/alertmanager:ro",
            tag,
            "check-config",
            "/etc/alertmanager/alertmanager.yml",
        )
        if "SUCCESS" not in out:
            return Check("alertmanager", False, f"amtool check-config: {out}")
        details.append("amtool check-config alertmanager/alertmanager.yml ok")
    # The compose file's arguments, config mount and data volume (the image's own config when
    # the repository has none rendered).
    mount = ["-v", f"{repo_config}:/etc/alertmanager:ro"] if details else []
    run = [
        *mount,
        "-v",
        f"{_name('alertmanager')}:/alertmanager",
        tag,
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        "--web.listen-address=:9093",
        "--cluster.listen-address=",
    ]
    url = "http://127.0.0.1:9093"
    with _container("alertmanager", run) as name:
        if not _until(name, ["wget", "-q", "--spider", f"{url}/-/healthy"]):
            return Check("alertmanager", False, f"/-/healthy not ok; logs: {_logs(name)}")
        # The API Prometheus posts to, and the one `invoke status` reads.
        alert = '[{"labels": {"alertname": "SmokeTest", "shard": "smoke"}}]'
        post = [
            "exec",
            name,
            "wget",
            "-q",
            "-O",
            "-",
            "--header",
            "Content-Type: application/json",
            "--post-data",
            alert,
            f"{url}/api/v2/alerts",
        ]
        if docker(*post, capture=True, check=False).returncode != 0:
            return Check("alertmanager", False, "POST /api/v2/alerts refused")
        listed = _out("exec", name, "wget", "-q", "-O", "-", f"{url}/api/v2/alerts")
        if '"SmokeTest"' not in listed:
            return Check("alertmanager", False, f"GET /api/v2/alerts: {listed[:300]}")
        # Alertmanager writes its silences and notification log there as nobody.
        write = "touch /alertmanager/.smoke && rm /alertmanager/.smoke"
        if docker("exec", name, "sh", "-c", write, capture=True, check=False).returncode != 0:
            owner = _out("exec", name, "stat", "-c", "%U", "/alertmanager")
            return Check("alertmanager", False, f"/alertmanager not writable (owner {owner!r})")
    detail = "/-/healthy ok; an alert posted and listed; /alertmanager writable as nobody"
    return Check("alertmanager", True, "; ".join([*details, detail]))


def redis_exporter() -> Check:
    """The exporter beside the kit's Redis (sharing its network), as in the stack."""
    tag, redis_tag = BY_NAME["redis_exporter"].tag, BY_NAME["redis"].tag
    stream = "ese:events"  # the shards' stream (ese/render/redis_exporter.py)
    redis_run = ["-e", "REDISCLI_AUTH=smoke", redis_tag, "redis-server", "--requirepass", "smoke"]
    with _container("redis_exporter-redis", redis_run) as redis_name:
        if not _until(redis_name, ["sh", "-c", "redis-cli ping | grep -q PONG"]):
            return Check("redis_exporter", False, f"its Redis did not start: {_logs(redis_name)}")
        docker("exec", redis_name, "redis-cli", "XADD", stream, "*", "e", "{}", capture=True)
        run = [
            "--network",
            f"container:{redis_name}",
            "-e",
            "REDIS_ADDR=redis://127.0.0.1:6379",
            "-e",
            "REDIS_PASSWORD=smoke",
            "-e",
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS=:9121",
            "-e",
            f"REDIS_EXPORTER_CHECK_SINGLE_STREAMS={stream}",
            tag,
        ]
        with _container("redis_exporter", run) as name:
            if not _until(name, ["wget", "-q", "--spider", "http://127.0.0.1:9121/health"]):
                return Check("redis_exporter", False, f"/health not ok; logs: {_logs(name)}")
            text = _out("exec", name, "wget", "-q", "-O", "-", "http://127.0.0.1:9121/metrics")
            wanted = (
                "redis_up 1",
                "redis_memory_max_bytes",
                f'redis_stream_length{{db="db0",stream="{stream}"}} 1',
            )
            missing = [w for w in wanted if w not in text]
            if missing:
                return Check("redis_exporter", False, f"/metrics lacks {missing}: {_logs(name)}")
            uid = _out("exec", name, "id", "-u")
            if uid != "59000":
                return Check("redis_exporter", False, f"runs as uid {uid!r}, not 59000")
    return Check(
        "redis_exporter", True, "/health ok; redis_up 1 and the stream length with a password"
    )


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
    proc = docker(
        "run",
        "--rm",
        "-v",
        f"{REPO_ROOT}:/src:ro",
        tag,
        "sh",
        "-c",
        script,
        capture=True,
        check=False,
    )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
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
