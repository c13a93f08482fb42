"""The Prometheus configs, the alert rules and the Alertmanager config through promtool and
amtool, the local binary or else the copy in the image `invoke up` runs."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from ese.checks.outcome import Outcome, missing_tool
from ese.checks.tools import InImage, Missing, run, tool_image
from ese.render import alert_tests, swarm_stack
from ese.render import prometheus_yml as prometheus_render
from ese.topology import Topology

RULES = Path("prometheus") / prometheus_render.RULES_FILE
RULE_TESTS = Path("prometheus") / alert_tests.TESTS_FILE
# The Debian package that ships each tool, for the hint when it is missing.
_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def yaml_doc(path: Path) -> dict:
    """A YAML file's mapping ({} when empty); OSError, or ValueError when it is no mapping."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name}: not a mapping")
    return doc


def _tool_argv(
    tool: str,
    image_key: str,
    topo: Topology,
    root: Path,
    args: list[str | Path],
    mount: str = "/src",
) -> list[str] | InImage | Missing:
    """`tool args`, the local binary or else the image's copy; Path arguments are relative to
    `root` (mounted at `mount` in the image)."""
    local = shutil.which(tool)
    if local:
        return [local, *(str(root / a) if isinstance(a, Path) else a for a in args)]
    image = tool_image(topo, image_key)
    if image:
        mapped = [f"{mount}/{a.as_posix()}" if isinstance(a, Path) else a for a in args]
        return InImage(image, mapped, {root: mount}, entrypoint=tool)
    default = topo.images[image_key].default
    return Missing(tool, f"apt-get install {_PACKAGES[tool]}, or run Docker with {default}")


def promtool_config_argv(topo: Topology, cfg: Path) -> list[str] | InImage | Missing:
    """`promtool check config` on `cfg` (its folder mounted at /cfg when in the image)."""
    args: list[str | Path] = ["check", "config", Path(cfg.name)]
    return _tool_argv("promtool", "prometheus", topo, cfg.parent, args, mount="/cfg")


def check_promtool(topo: Topology, root: Path) -> Outcome:
    """`promtool check config prometheus/prometheus.yml`."""
    argv = promtool_config_argv(topo, root / "prometheus/prometheus.yml")
    return _tool_outcome("promtool", argv, lambda _: "promtool check config: SUCCESS")


def swarm_prometheus_layout(root: Path, into: Path) -> Path:
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


def check_swarm_promtool(topo: Topology, root: Path) -> Outcome:
    """`promtool check config` on the Swarm Prometheus file, with the rule file it loads."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = swarm_prometheus_layout(root, Path(tmp))
        return _tool_outcome("swarm-promtool", promtool_config_argv(topo, cfg), _rules_loaded)


def _rules_loaded(output: str) -> str:
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    rules = f", {found[1]} alert rules loaded" if found else ""
    return f"promtool check config: SUCCESS{rules}"


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
        rules_doc = yaml_doc(root / RULES)
        tests_doc = yaml_doc(root / RULE_TESTS)
    except (OSError, ValueError) as exc:
        return Outcome("rules", "fail", f"rule files unreadable: {exc}")
    uncovered = rule_test_gaps(rules_doc, tests_doc)
    if uncovered:
        return Outcome("rules", "fail", "\n".join(uncovered))
    details = []
    for verb, path in (("check", RULES), ("test", RULE_TESTS)):
        argv = _tool_argv("promtool", "prometheus", topo, root, [verb, "rules", path])
        if isinstance(argv, Missing):
            return missing_tool("rules", argv)
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
    return _tool_outcome("alertmanager", argv, lambda _: "amtool check-config: SUCCESS")


def _tool_outcome(
    name: str, argv: list[str] | InImage | Missing, passed: Callable[[str], str]
) -> Outcome:
    """Run `argv`: a missing tool's outcome, a fail with the tool's words, or ok with what
    `passed` makes of them."""
    if isinstance(argv, Missing):
        return missing_tool(name, argv)
    proc = run(argv)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        return Outcome(name, "fail", output)
    return Outcome(name, "ok", passed(output))
