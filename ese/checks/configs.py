"""`nox -s configs`: the generated configs are current and pass their own tools.

Each check ends ok, skip (a tool is missing here) or fail. With CI=true a skip counts as a
failure, so CI cannot go green without running every tool.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from ese import render
from ese.checks import metrics_catalog
from ese.checks.promql import metric_names
from ese.checks.tools import InImage, Missing, compose_command, run, tool_image, with_hosts
from ese.host.processes import in_ci
from ese.paths import REPO_ROOT
from ese.render import alert_tests
from ese.render import prometheus_yml as prometheus_render
from ese.topology import Topology, TopologyError, load


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # ok | skip | fail
    detail: str = ""


# --- regenerate -------------------------------------------------------------------------


def check_regenerated(topo: Topology, root: Path) -> Outcome:
    """Render into a temporary directory and compare with the committed files byte for byte."""
    with tempfile.TemporaryDirectory() as tmp:
        render.write(topo, Path(tmp))
        problems = []
        for rel in render.render_all(topo):
            fresh, committed = Path(tmp) / rel, root / rel
            if not committed.exists():
                problems.append(f"{rel} is missing")
            elif fresh.read_bytes() != committed.read_bytes():
                diff = difflib.unified_diff(
                    committed.read_text(encoding="utf-8").splitlines(),
                    fresh.read_text(encoding="utf-8").splitlines(),
                    f"committed/{rel}",
                    f"rendered/{rel}",
                    lineterm="",
                    n=1,
                )
                problems.append("\n".join(list(diff)[:20]))
    if problems:
        return Outcome(
            "regenerate", "fail", "\n".join(problems) + "\nrun `invoke render` and commit"
        )
    return Outcome("regenerate", "ok", f"{len(render.render_all(topo))} files match")


# --- docker compose config ---------------------------------------------------------------

_REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?")


def check_compose(root: Path) -> Outcome:
    """`docker compose config -q` (or v1 `docker-compose`) on both compose files."""
    files = [root / "docker/ese-server.compose.yml", root / "docker/ese-client.compose.yml"]
    cmd = compose_command()
    if cmd is None:
        return _missing(
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


# --- haproxy -c ----------------------------------------------------------------------------


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
            return _missing("haproxy", argv)
        proc = run(argv)
    return haproxy_verdict("haproxy", proc)


def haproxy_verdict(name: str, proc: subprocess.CompletedProcess[str]) -> Outcome:
    """ok only when `haproxy -c` passed and printed no warning (a warning hides a mistake)."""
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "WARNING" in output or "Warnings were found" in output:
        return Outcome(name, "fail", output)
    return Outcome(name, "ok", "haproxy -c: valid, no warning")


# --- promtool ---------------------------------------------------------------------------------


def promtool_config_argv(topo: Topology, cfg: Path) -> list[str] | InImage | None:
    """`promtool check config` on `cfg` (its folder mounted when in the image), or None."""
    if shutil.which("promtool"):
        return ["promtool", "check", "config", str(cfg)]
    image = tool_image(topo, "prometheus")
    if image:
        command = ["check", "config", f"/cfg/{cfg.name}"]
        return InImage(image, command, {cfg.parent: "/cfg"}, entrypoint="promtool")
    return None


def check_promtool(topo: Topology, root: Path) -> Outcome:
    """`promtool check config prometheus/prometheus.yml`."""
    argv = promtool_config_argv(topo, root / "prometheus/prometheus.yml")
    if argv is None:
        return _missing(
            "promtool", Missing("promtool", "apt-get install prometheus, or run Docker")
        )
    proc = run(argv)
    if proc.returncode != 0:
        return Outcome("promtool", "fail", (proc.stdout + proc.stderr).strip())
    return Outcome("promtool", "ok", "promtool check config: SUCCESS")


# --- dashboard --------------------------------------------------------------------------------


# Counters by naming convention, plus the original demo's four (they carry no suffix).
_COUNTER = re.compile(
    r"\b([a-z_:][a-z0-9_:]*(?:_total|_count|_bucket|_sum)|health_ping_count|add_event_ping_count"
    r"|add_events_ping_count|get_events_ping_count)\b(?!\s*\()"
)
_RATE_FUNCS = {"rate", "increase", "irate"}


def _bare_counters(expr: str) -> set[str]:
    """Counters in `expr` that are not the direct argument of rate(), increase() or irate()."""
    bare = set()
    for match in _COUNTER.finditer(expr):
        before = expr[: match.start()].rstrip()
        func = re.search(r"(\w+)\s*\($", before)
        if func is None or func.group(1) not in _RATE_FUNCS:
            bare.add(match.group(1))
    return bare


def dashboard_problems(dashboard: dict, datasource_uid: str, known: set[str]) -> list[str]:
    """What is wrong with a dashboard model: datasource uids, queries, panel basics."""
    problems = []
    if not dashboard.get("title") or not dashboard.get("uid"):
        problems.append("dashboard needs a title and a uid")
    panels = dashboard.get("panels") or []
    if not panels:
        problems.append("dashboard has no panels")
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        problems.append("panel ids are not unique")
    for panel in panels:
        title = panel.get("title") or f"panel {panel.get('id')}"
        refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            if uid != datasource_uid:
                problems.append(f"{title}: datasource {uid!r} is not {datasource_uid!r}")
        if not panel.get("targets"):
            problems.append(f"{title}: no queries")
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for name in sorted(metric_names(expr) - known):
                problems.append(f"{title}: {name} is not exported by any service ({expr})")
            for name in sorted(_bare_counters(expr)):
                problems.append(f"{title}: counter {name} graphed without rate() or increase()")
    return problems


def _live_metrics(topo: Topology) -> set[str] | Missing:
    """Every metric name the stack's processes export, read from real ones, plus the series
    Prometheus writes itself; Missing when a tool to run them is not here."""
    haproxy_bin = shutil.which("haproxy")
    image = None if haproxy_bin else tool_image(topo, "haproxy")
    if haproxy_bin is None and image is None:
        return Missing("haproxy", "needed to read its exporter's metric names; or run Docker")
    exporter = next(filter(None, map(shutil.which, metrics_catalog.REDIS_EXPORTER_BINARIES)), None)
    redis_server = shutil.which("redis-server")
    if exporter is None or redis_server is None:
        return Missing(
            "prometheus-redis-exporter and redis-server",
            "needed to read redis_exporter's metric names; apt-get install "
            "prometheus-redis-exporter redis-server (brew install redis_exporter redis)",
        )
    known = metrics_catalog.ese_server_metrics() | metrics_catalog.haproxy_metrics(
        topo, haproxy_bin, image
    )
    known |= metrics_catalog.redis_exporter_metrics(exporter, redis_server)
    return known | metrics_catalog.PROMETHEUS_BUILTINS | metrics_catalog.PROMETHEUS_RULE_SERIES


def rule_problems(rules_doc: dict, known: set[str]) -> list[str]:
    """Alert rules that read a metric no service exports, or a counter without rate()."""
    problems = []
    for group in rules_doc.get("groups") or []:
        for rule in group.get("rules") or []:
            name, expr = rule.get("alert") or rule.get("record", "?"), str(rule.get("expr", ""))
            for metric in sorted(metric_names(expr) - known):
                problems.append(f"rule {name}: {metric} is not exported by any service")
            for metric in sorted(_bare_counters(expr)):
                problems.append(f"rule {name}: counter {metric} used without rate()")
    return problems


def check_dashboard(topo: Topology, root: Path) -> Outcome:
    """JSON parse, datasource uid and metric names of grafana/dashboard.json, and the metric
    names of the alert rules, against what live processes export."""
    try:
        dashboard = json.loads((root / "grafana/dashboard.json").read_text(encoding="utf-8"))
        datasource = json.loads((root / "grafana/datasource.json").read_text(encoding="utf-8"))
        rules_doc = yaml.safe_load((root / RULES).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Outcome("dashboard", "fail", f"dashboard or rules unreadable: {exc}")
    try:
        known = _live_metrics(topo)
    except RuntimeError as exc:
        return Outcome("dashboard", "fail", str(exc))
    if isinstance(known, Missing):
        return _missing("dashboard", known)
    problems = dashboard_problems(dashboard, datasource.get("uid", ""), known)
    problems += rule_problems(rules_doc or {}, known)
    if problems:
        return Outcome("dashboard", "fail", "\n".join(problems))
    queries = sum(len(p["targets"]) for p in dashboard["panels"])
    rules = sum(len(g.get("rules") or []) for g in (rules_doc or {}).get("groups") or [])
    return Outcome(
        "dashboard",
        "ok",
        f"{len(dashboard['panels'])} panels, {queries} queries and {rules} alert rules, "
        "all metrics live",
    )


# --- alert rules and Alertmanager ----------------------------------------------------------

RULES = Path("prometheus") / prometheus_render.RULES_FILE
RULE_TESTS = Path("prometheus") / alert_tests.TESTS_FILE


def _tool_argv(
    tool: str, image_key: str, topo: Topology, root: Path, args: list[str | Path]
) -> list[str] | InImage | Missing:
    """`tool args`, the local binary or else the image's copy; Path arguments are relative to
    `root` (mounted at /src in the image)."""
    local = shutil.which(tool)
    if local:
        return [local, *(str(root / a) if isinstance(a, Path) else a for a in args)]
    image = tool_image(topo, image_key)
    if image:
        mapped = [f"/src/{a.as_posix()}" if isinstance(a, Path) else a for a in args]
        return InImage(image, mapped, {root: "/src"}, entrypoint=tool)
    package = "prometheus" if tool == "promtool" else "prometheus-alertmanager"
    default = topo.images[image_key].default
    return Missing(tool, f"apt-get install {package}, or run Docker with {default}")


def rule_test_gaps(rules_doc: dict, tests_doc: dict) -> list[str]:
    """Alerts of the rule file without a firing and a not-firing case in the test file."""
    names = [
        r["alert"]
        for g in rules_doc.get("groups") or []
        for r in g.get("rules") or []
        if "alert" in r
    ]
    checks = [c for t in tests_doc.get("tests") or [] for c in t.get("alert_rule_test") or []]
    fires = {c.get("alertname") for c in checks if c.get("exp_alerts")}
    quiet = {c.get("alertname") for c in checks if not c.get("exp_alerts")}
    return [
        f"{name}: no test where it {'fires' if name not in fires else 'stays quiet'}"
        for name in names
        if name not in fires or name not in quiet
    ]


def check_rules(topo: Topology, root: Path) -> Outcome:
    """`promtool check rules` and `promtool test rules` (every alert fires and stays quiet)."""
    try:
        rules_doc = yaml.safe_load((root / RULES).read_text(encoding="utf-8")) or {}
        tests_doc = yaml.safe_load((root / RULE_TESTS).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError) as exc:
        return Outcome("rules", "fail", f"rule files unreadable: {exc}")
    uncovered = rule_test_gaps(rules_doc, tests_doc)
    if uncovered:
        return Outcome("rules", "fail", "\n".join(uncovered))
    details = []
    for verb, path in (("check", RULES), ("test", RULE_TESTS)):
        argv = _tool_argv("promtool", "prometheus", topo, root, [verb, "rules", path])
        if isinstance(argv, Missing):
            return _missing("rules", argv)
        proc = run(argv)
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            return Outcome("rules", "fail", f"promtool {verb} rules {path.as_posix()}:\n{output}")
        details.append(f"promtool {verb} rules: SUCCESS")
    cases = sum(len(t.get("alert_rule_test") or []) for t in tests_doc.get("tests") or [])
    return Outcome("rules", "ok", f"{'; '.join(details)} ({cases} cases)")


def check_alertmanager(topo: Topology, root: Path) -> Outcome:
    """`amtool check-config alertmanager/alertmanager.yml`."""
    config = Path("alertmanager/alertmanager.yml")
    argv = _tool_argv("amtool", "alertmanager", topo, root, ["check-config", config])
    if isinstance(argv, Missing):
        return _missing("alertmanager", argv)
    proc = run(argv)
    if proc.returncode != 0:
        return Outcome("alertmanager", "fail", (proc.stdout + proc.stderr).strip())
    return Outcome("alertmanager", "ok", "amtool check-config: SUCCESS")


def _missing(name: str, why: Missing) -> Outcome:
    return Outcome(name, "fail" if in_ci() else "skip", str(why))


CHECKS: dict[str, Callable[[Topology, Path], Outcome]] = {
    "regenerate": check_regenerated,
    "compose": lambda topo, root: check_compose(root),
    "haproxy": check_haproxy,
    "promtool": check_promtool,
    "rules": check_rules,
    "alertmanager": check_alertmanager,
    "dashboard": check_dashboard,
}


def _swarm(name: str) -> Callable[[Topology, Path], Outcome]:
    """A check of the Swarm stack's files, from ese/checks/swarm_files.py (which imports us)."""

    def check(topo: Topology, root: Path) -> Outcome:
        from ese.checks import swarm_files as swarm

        return getattr(swarm, name)(topo, root)

    return check


CHECKS.update(
    {
        "swarm-stack": _swarm("check_stack"),
        "swarm-haproxy": _swarm("check_haproxy"),
        "swarm-promtool": _swarm("check_promtool"),
    }
)


def main(argv: list[str] | None = None) -> int:
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
