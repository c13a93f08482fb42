"""What the kit shows while it works: progress lines, and whether the engine's output is shown.

The CLI shows all of it as it comes. The tasks run the kit quietly: nothing is printed, and the
engine's output is kept for the error message instead.
"""

from __future__ import annotations

import sys


class Output:
    """Whether the kit shows the engine's output (the CLI) or keeps it for errors (the tasks)."""

    quiet = False


def echo(message: str) -> None:
    """Progress line, flushed so it interleaves with the engine's output (silent when quiet)."""
    if not Output.quiet:
        print(f"[offline-images] {message}", file=sys.stderr, flush=True)
