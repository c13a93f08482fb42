"""The pieces of a `promtool test rules` case: input series, and which alerts fire when.

alert_tests.py and alert_tests_redis.py write the cases; alert_tests.py renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STEP = "15s"  # input sample interval and rule evaluation interval of the tests


@dataclass(frozen=True)
class Fired:
    """One alert expected to fire: its labels (without alertname and the rule's own labels)
    and the text its `{{ $value | ... }}` renders to."""

    labels: dict[str, str]
    value: str = ""


@dataclass(frozen=True)
class Check:
    """At `at`, exactly `fired` alerts named `alert` are firing (none when empty)."""

    at: str
    alert: str
    fired: tuple[Fired, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    series: tuple[tuple[str, str], ...]
    checks: tuple[Check, ...]
    comment: str = field(default="", compare=False)


def sel(name: str, **labels: str) -> str:
    """A series selector: `name{k="v",...}`."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"
