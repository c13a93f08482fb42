"""The committed generated files are what `invoke render` writes today."""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from ese import render
from ese.checks.outcome import Outcome
from ese.topology import Topology


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
