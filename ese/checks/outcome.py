"""What a check ends with: ok, skip (a tool is missing here) or fail."""

from __future__ import annotations

from dataclasses import dataclass

from ese.checks.tools import Missing
from ese.host.processes import in_ci


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # ok | skip | fail
    detail: str = ""


def missing_tool(name: str, why: Missing) -> Outcome:
    """A skip on a user's machine; a failure under CI=true, so CI cannot pass without the tool."""
    return Outcome(name, "fail" if in_ci() else "skip", str(why))
