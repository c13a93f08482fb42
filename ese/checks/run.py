"""`nox -s configs`: the generated configs are current and pass their own tools.

Each check ends ok, skip (a tool is missing here) or fail. With CI=true a skip counts as a
failure, so CI cannot go green without running every tool.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ese.checks.compose_config import check_compose, check_swarm_stack
from ese.checks.dashboard import check_dashboard
from ese.checks.haproxy_config import check_haproxy, check_swarm_haproxy
from ese.checks.outcome import Outcome
from ese.checks.prometheus_config import (
    check_alertmanager,
    check_promtool,
    check_rules,
    check_swarm_promtool,
)
from ese.checks.regenerate import check_regenerated
from ese.host.processes import in_ci
from ese.paths import REPO_ROOT
from ese.topology import Topology, TopologyError, load

# Every check by the name the command line takes, in the order they run.
CHECKS: dict[str, Callable[[Topology, Path], Outcome]] = {
    "regenerate": check_regenerated,
    "compose": lambda topo, root: check_compose(root),
    "haproxy": check_haproxy,
    "promtool": check_promtool,
    "rules": check_rules,
    "alertmanager": check_alertmanager,
    "dashboard": check_dashboard,
    "swarm-stack": check_swarm_stack,
    "swarm-haproxy": check_swarm_haproxy,
    "swarm-promtool": check_swarm_promtool,
}


def main(argv: list[str] | None = None) -> int:
    """Run the named checks (all by default), print one line each; 1 when any failed."""
    parser = argparse.ArgumentParser(prog="python -m ese.checks", description=__doc__)
    parser.add_argument("checks", nargs="*", choices=[*CHECKS, []], help="checks to run (all)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        topo = load(args.root / "topology.toml")
    except TopologyError as exc:
        print(f"FAIL topology: {exc}")
        return 1
    failed = False
    for name in args.checks or list(CHECKS):
        outcome = CHECKS[name](topo, args.root)
        print(f"{outcome.status.upper():4} {outcome.name}: {outcome.detail}", flush=True)
        if outcome.status == "skip" and in_ci():
            outcome = Outcome(name, "fail")
        failed |= outcome.status == "fail"
    return 1 if failed else 0
