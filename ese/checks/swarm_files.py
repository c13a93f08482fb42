"""`nox -s configs` checks of the Swarm files (registered in ese/checks/configs.py's CHECKS)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ese.checks.configs import Outcome, _missing, haproxy_verdict, promtool_config_argv
from ese.checks.tools import InImage, Missing, run, tool_image
from ese.render import swarm_stack
from ese.topology import Topology

# docker-compose v1 validates the 3.x format but warns that Swarm-only keys are ignored.
_COMPOSE_IGNORES = "use the 'configs' key, which will be ignored"


def _placeholders() -> dict[str, str]:
    """Stand-ins for the secret names `invoke swarm.up` passes at deploy time."""
    return {s.name_var: f"placeholder_{s.key}" for s in swarm_stack.SECRETS}


def check_stack(topo: Topology, root: Path) -> Outcome:
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
        return _missing("swarm-stack", why)
    if proc.returncode != 0 or proc.stderr.strip():
        return Outcome("swarm-stack", "fail", f"{tool}: {(proc.stderr or proc.stdout).strip()}")
    return Outcome("swarm-stack", "ok", f"{tool}: {swarm_stack.STACK_FILE} valid")


def _run_env(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def check_haproxy(topo: Topology, root: Path) -> Outcome:
    """`haproxy -c` on the Swarm config (no name to resolve: every slot starts empty)."""
    cfg = root / swarm_stack.HAPROXY_FILE
    local = shutil.which("haproxy")
    image = None if local else tool_image(topo, "haproxy")
    argv: list[str] | InImage
    if local:
        argv = [local, "-c", "-f", str(cfg)]
    elif image:
        argv = InImage(image, ["haproxy", "-c", "-f", f"/cfg/{cfg.name}"], {cfg.parent: "/cfg"})
    else:
        return _missing("swarm-haproxy", Missing("haproxy", "apt-get install haproxy"))
    return haproxy_verdict("swarm-haproxy", run(argv))


def prometheus_layout(root: Path, into: Path) -> Path:
    """The Swarm Prometheus file with the rule file beside it, as the stack mounts them in the
    container (so `rule_files` resolves); the config file's path under `into`."""
    cfg = into / Path(swarm_stack.PROMETHEUS_CFG_PATH).name
    shutil.copyfile(root / swarm_stack.PROMETHEUS_FILE, cfg)
    rules = into / Path(swarm_stack.RULES_PATH).relative_to(
        Path(swarm_stack.PROMETHEUS_CFG_PATH).parent
    )
    rules.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / swarm_stack.RULES_SOURCE, rules)
    return cfg


def check_promtool(topo: Topology, root: Path) -> Outcome:
    """`promtool check config` on the Swarm Prometheus file, with the rule file it loads."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = prometheus_layout(root, Path(tmp))
        argv = promtool_config_argv(topo, cfg)
        if argv is None:
            return _missing("swarm-promtool", Missing("promtool", "apt-get install prometheus"))
        proc = run(argv)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        return Outcome("swarm-promtool", "fail", output)
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    rules = f", {found[1]} alert rules loaded" if found else ""
    return Outcome("swarm-promtool", "ok", f"promtool check config: SUCCESS{rules}")
