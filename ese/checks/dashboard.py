"""The dashboard and the alert rules read only metrics that live processes export, and read
counters through rate() or increase()."""

from __future__ import annotations

import json
from pathlib import Path

from ese.checks.metrics_catalog import live_metrics
from ese.checks.outcome import Outcome, missing_tool
from ese.checks.prometheus_config import RULES, yaml_doc
from ese.checks.promql import bare_counters, metric_names
from ese.checks.tools import Missing
from ese.topology import Topology


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
            for name in sorted(bare_counters(expr)):
                problems.append(f"{title}: counter {name} graphed without rate() or increase()")
    return problems


def rule_problems(rules_doc: dict, known: set[str]) -> list[str]:
    """Alert rules that read a metric no service exports, or a counter without rate()."""
    problems = []
    for group in rules_doc.get("groups") or []:
        for rule in group.get("rules") or []:
            name, expr = rule.get("alert") or rule.get("record", "?"), str(rule.get("expr", ""))
            for metric in sorted(metric_names(expr) - known):
                problems.append(f"rule {name}: {metric} is not exported by any service")
            for metric in sorted(bare_counters(expr)):
                problems.append(f"rule {name}: counter {metric} used without rate()")
    return problems


def check_dashboard(topo: Topology, root: Path) -> Outcome:
    """JSON parse, datasource uid and metric names of grafana/dashboard.json, and the metric
    names of the alert rules, against what live processes export."""
    try:
        dashboard = json.loads((root / "grafana/dashboard.json").read_text(encoding="utf-8"))
        datasource = json.loads((root / "grafana/datasource.json").read_text(encoding="utf-8"))
        rules_doc = yaml_doc(root / RULES)
    except (OSError, ValueError) as exc:
        return Outcome("dashboard", "fail", f"dashboard or rules unreadable: {exc}")
    try:
        known = live_metrics(topo)
    except RuntimeError as exc:
        return Outcome("dashboard", "fail", str(exc))
    if isinstance(known, Missing):
        return missing_tool("dashboard", known)
    problems = dashboard_problems(dashboard, datasource.get("uid", ""), known)
    problems += rule_problems(rules_doc, known)
    if problems:
        return Outcome("dashboard", "fail", "\n".join(problems))
    queries = sum(len(p["targets"]) for p in dashboard["panels"])
    rules = sum(len(g.get("rules") or []) for g in rules_doc.get("groups") or [])
    return Outcome(
        "dashboard",
        "ok",
        f"{len(dashboard['panels'])} panels, {queries} queries and {rules} alert rules, "
        "all metrics live",
    )
