"""What the kit shows while it works: progress lines, each engine action, the engine's output.

The CLI shows all of it as it comes. The tasks run the kit quietly: nothing is printed, and the
last lines of the engine's output go into the error message instead.
"""

from __future__ import annotations

import re
import sys
from collections import deque

# As many lines as a failed apt-get or pip step needs to show its cause.
TAIL_LINES = 15
# An action line longer than this is cut: a shell script given to `sh -c` can be long.
ACTION_WIDTH = 160
# The classic builder colours a step's stderr red: fine on a terminal, noise in a message.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Output:
    """Whether the kit shows the engine's output (the CLI) or keeps it for errors (the tasks)."""

    quiet = False


def echo(message: str) -> None:
    """Progress line, flushed so it interleaves with the engine's output (silent when quiet)."""
    if not Output.quiet:
        print(f"[offline-images] {message}", file=sys.stderr, flush=True)


def action(text: str) -> None:
    """Say which engine action runs next, as the project prints each command (not when quiet)."""
    if not Output.quiet:
        line = " ".join(text.split())  # a script given to `python -c` spans lines
        line = line if len(line) <= ACTION_WIDTH else line[: ACTION_WIDTH - 3] + "..."
        print(f"+ {line}", flush=True)


class Transcript:
    """The output of one engine action: shown as it streams in, its last lines kept."""

    def __init__(self, keep: int = TAIL_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=keep)
        self._partial = ""  # the engine sends chunks, not always whole lines

    def add(self, text: str) -> None:
        if not Output.quiet:
            sys.stdout.write(text)
            sys.stdout.flush()
        *done, self._partial = (self._partial + _ANSI.sub("", text)).split("\n")
        self._lines.extend(line.rstrip() for line in done if line.strip())

    def tail(self) -> list[str]:
        """The last lines kept, a line still without its newline included."""
        rest = [self._partial.rstrip()] if self._partial.strip() else []
        return [*self._lines, *rest][-(self._lines.maxlen or 1) :]

    def for_error(self) -> str:
        """What an error message adds: the tail when quiet (nobody saw it), else nothing."""
        if not Output.quiet:
            if self._partial:
                print(flush=True)  # the message that follows starts on a line of its own
            return ""
        lines = self.tail()
        return "; last lines:\n" + "\n".join(lines) if lines else ""
