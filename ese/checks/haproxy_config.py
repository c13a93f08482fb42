"""`haproxy -c` on the compose and the Swarm HAProxy configs: valid, and no warning."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ese.checks.outcome import Outcome, missing_tool
from ese.checks.tools import InImage, Missing, run, tool_image, with_hosts
from ese.render import swarm_stack
from ese.topology import Topology


def _haproxy_argv(topo: Topology, root: Path, tmp: Path) -> list[str] | InImage | Missing:
    """haproxy -c where the shard names resolve, as they do inside the compose network."""
    cfg = root / "haproxy/haproxy.cfg"
    local = shutil.which("haproxy")
    if local:
        argv = with_hosts([local, "-c", "-f", str(cfg)], (s.name for s in topo.shards), tmp)
        if argv:
            return argv
    image = tool_image(topo, "haproxy")
    if image:
        return InImage(
            image,
            ["haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
            {root / "haproxy": "/usr/local/etc/haproxy"},
            hosts={s.name: "127.0.0.1" for s in topo.shards},
        )
    if local:
        return Missing(
            "a way to resolve the shard names for haproxy -c",
            "needs `unshare` (Linux) or Docker with the haproxy image",
        )
    return Missing("haproxy", "apt-get install haproxy, brew install haproxy, or run Docker")


def check_haproxy(topo: Topology, root: Path) -> Outcome:
    """`haproxy -c -f haproxy/haproxy.cfg` must pass and print no warning."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = _haproxy_argv(topo, root, Path(tmp))
        if isinstance(argv, Missing):
            return missing_tool("haproxy", argv)
        proc = run(argv)
    return _verdict("haproxy", proc)


def check_swarm_haproxy(topo: Topology, root: Path) -> Outcome:
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
        return missing_tool("swarm-haproxy", Missing("haproxy", "apt-get install haproxy"))
    return _verdict("swarm-haproxy", run(argv))


def _verdict(name: str, proc: subprocess.CompletedProcess[str]) -> Outcome:
    """ok only when `haproxy -c` passed and printed no warning (a warning hides a mistake)."""
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "WARNING" in output or "Warnings were found" in output:
        return Outcome(name, "fail", output)
    return Outcome(name, "ok", "haproxy -c: valid, no warning")
