"""Just enough PromQL and exposition-format parsing to check the dashboard's queries."""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}

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
