"""Just enough PromQL and exposition-format parsing to check the dashboard's queries and the
alert rules: the metric names they read, and counters read without rate()."""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
# group_left and group_right may stand without a label list; the others never do.
_GROUPING = re.compile(
    r"\b(?:(?:by|without|on|ignoring)\s*\([^)]*\)|group_(?:left|right)(?:\s*\([^)]*\))?)"
)
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Counters by naming convention, plus the original demo's four (they carry no suffix).
_COUNTER = re.compile(
    r"\b([a-z_:][a-z0-9_:]*(?:_total|_count|_bucket|_sum)|health_ping_count|add_event_ping_count"
    r"|add_events_ping_count|get_events_ping_count)\b(?!\s*\()"
)
_RATE_FUNCS = {"rate", "increase", "irate"}

# Suffixes each metric type adds to its samples in the text exposition format.
_SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (function names and labels excluded)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def bare_counters(expr: str) -> set[str]:
    """Counters in `expr` that are not the direct argument of rate(), increase() or irate()."""
    bare = set()
    for match in _COUNTER.finditer(expr):
        before = expr[: match.start()].rstrip()
        func = re.search(r"(\w+)\s*\($", before)
        if func is None or func.group(1) not in _RATE_FUNCS:
            bare.add(match.group(1))
    return bare


def exposed_names(exposition: str) -> set[str]:
    """Every sample name a Prometheus text exposition can produce, declared or seen."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                base, kind = parts[2], parts[3]
                for suffix in _SUFFIXES.get(kind, ("",)):
                    names.add(base + suffix)
                if kind == "counter" and base.endswith("_total"):
                    names.add(base[: -len("_total")])
        elif line and not line.startswith("#"):
            sample = _IDENT.match(line)
            if sample:
                names.add(sample.group())
    return names
