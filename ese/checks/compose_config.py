"""The compose files and the Swarm stack file through compose's and Swarm's own loaders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ese.checks.outcome import Outcome, missing_tool
from ese.checks.tools import Missing, compose_command, run
from ese.render import swarm_stack
from ese.topology import Topology

_REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?")
# docker-compose v1 validates the 3.x format but warns that Swarm-only keys are ignored.
_COMPOSE_IGNORES = "use the 'configs' key, which will be ignored"


def check_compose(root: Path) -> Outcome:
    """`docker compose config -q` (or v1 `docker-compose`) on both compose files."""
    files = [root / "docker/ese-server.compose.yml", root / "docker/ese-client.compose.yml"]
    cmd = compose_command()
    if cmd is None:
        return missing_tool(
            "compose",
            Missing(
                "docker compose / docker-compose", "install docker-compose or the compose plugin"
            ),
        )
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            # Placeholders for the variables the real docker/.env provides.
            names = sorted(set(_REQUIRED_VAR.findall(path.read_text(encoding="utf-8"))))
            env_file = Path(tmp) / f"{path.stem}.env"
            env_file.write_text("".join(f"{n}=placeholder\n" for n in names), encoding="utf-8")
            proc = run([*cmd, "--env-file", str(env_file), "-f", str(path), "config", "-q"])
            if proc.returncode != 0 or proc.stderr.strip():
                failures.append(f"{path.name}: {(proc.stderr or proc.stdout).strip()}")
    tool = " ".join(cmd)
    if failures:
        return Outcome("compose", "fail", "\n".join(failures))
    return Outcome("compose", "ok", f"{tool} config -q: both files valid")


def _placeholders() -> dict[str, str]:
    """Stand-ins for the secret names `invoke swarm.up` passes at deploy time."""
    return {s.name_var: f"placeholder_{s.key}" for s in swarm_stack.SECRETS}


def check_swarm_stack(topo: Topology, root: Path) -> Outcome:
    """`docker stack config` (Swarm's own loader), else `docker-compose config -q`."""
    path = root / swarm_stack.STACK_FILE
    env = {**os.environ, **_placeholders()}
    docker = shutil.which("docker")
    if docker and run([docker, "stack", "config", "--help"], 30).returncode == 0:
        proc = _run_env([docker, "stack", "config", "-c", str(path)], env)
        tool = "docker stack config"
    elif shutil.which("docker-compose"):
        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "empty.env"  # docker/.env holds none of these names
            empty.write_text("", encoding="utf-8")
            argv = ["docker-compose", "--env-file", str(empty), "-f", str(path), "config", "-q"]
            proc = _run_env(argv, env)
        tool = "docker-compose config -q"
        proc.stderr = "\n".join(
            line for line in proc.stderr.splitlines() if _COMPOSE_IGNORES not in line
        )
    else:
        why = Missing("docker stack config / docker-compose", "install the Docker CLI 20.10+")
        return missing_tool("swarm-stack", why)
    if proc.returncode != 0 or proc.stderr.strip():
        return Outcome("swarm-stack", "fail", f"{tool}: {(proc.stderr or proc.stdout).strip()}")
    return Outcome("swarm-stack", "ok", f"{tool}: {swarm_stack.STACK_FILE} valid")


def _run_env(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
