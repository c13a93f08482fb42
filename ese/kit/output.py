"""What a build shows while it works: progress lines, each engine action, the engine's output.

Two audiences. The kit's CLI shows all of it as it comes. The tasks show one line when a build
starts and one with its time when it ends; the engine's output is kept, and its last
TAIL_LINES lines are shown when the build fails (`--verbose`, or `ese.verbose`, shows it all).
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

# The lines of a build's output shown when it fails and the output was hidden: as many as a
# failed apt-get or pip step needs to show its cause. One number for every build.
TAIL_LINES = 30
# How long the engine may stay silent during a build step before the SDK gives up: apt-get and
# compileall can print nothing for minutes on a slow mirror or disk.
BUILD_TIMEOUT = 1800
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


def starting(what: str, detail: str = "") -> str:
    """The line a build starts with: `building ese-server:local (base python:3.11-slim)`."""
    return f"building {what}" + (f" ({detail})" if detail else "")


def finished(what: str, seconds: float) -> str:
    """The line a build ends with: `built ese-server:local in 41s`."""
    return f"built {what} in {seconds:.0f}s"


@contextmanager
def timed(what: str, detail: str = "", say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Say when the build of `what` starts and, unless it fails, how long it took."""
    say = say or _line
    say(starting(what, detail))
    start = time.monotonic()
    yield
    say(finished(what, time.monotonic() - start))


def _line(text: str) -> None:
    print(text, flush=True)  # flushed: the builder's own output may follow on the same stream


class Transcript:
    """The output of one engine action or command: shown as it streams in (when `shown`, by
    default unless the kit is quiet), its last `keep` lines kept."""

    def __init__(self, keep: int = TAIL_LINES, shown: bool | None = None) -> None:
        self._lines: deque[str] = deque(maxlen=keep)
        self._partial = ""  # the engine sends chunks, not always whole lines
        self._shown = shown

    @property
    def shown(self) -> bool:
        return not Output.quiet if self._shown is None else self._shown

    def add(self, text: str) -> None:
        if self.shown:
            sys.stdout.write(text)
            sys.stdout.flush()
        *done, self._partial = (self._partial + _ANSI.sub("", text)).split("\n")
        self._lines.extend(line.rstrip() for line in done if line.strip())

    def tail(self) -> list[str]:
        """The last lines kept, a line still without its newline included."""
        rest = [self._partial.rstrip()] if self._partial.strip() else []
        return [*self._lines, *rest][-(self._lines.maxlen or 1) :]

    def show_tail(self, what: str) -> None:
        """After a failure: print the last lines when they were hidden (nobody saw them)."""
        self._end_line()
        if not self.shown:
            print_tail(self.tail(), what)

    def _end_line(self) -> None:
        if self.shown and self._partial:
            print(flush=True)  # what follows starts on a line of its own

    def for_error(self) -> str:
        """What an error message adds: the tail when hidden (nobody saw it), else nothing."""
        self._end_line()
        if self.shown:
            return ""
        lines = self.tail()
        return "; last lines:\n" + "\n".join(lines) if lines else ""


def last_lines(text: str, keep: int = TAIL_LINES) -> list[str]:
    """The last `keep` non-blank lines of a finished command's output, without colours."""
    transcript = Transcript(keep, shown=False)
    transcript.add(text)
    return transcript.tail()


def print_tail(lines: list[str], what: str) -> None:
    """The last lines of a failed build or command whose output was hidden: they hold its cause."""
    if lines:
        print(f"--- last {len(lines)} lines of the output of {what} ---", flush=True)
        print("\n".join(lines), flush=True)


class BuildStopped(Exception):
    """The engine's build stream ended without an image: says why (`failed: ...`)."""


def built_image(items: Iterable[Mapping[str, Any]], transcript: Transcript) -> str:
    """Follow a build's JSON stream from the engine (the SDK's `api.build(decode=True)`): its
    output into `transcript`; the new image's ID, or BuildStopped."""
    found = ""
    for item in items:
        if "error" in item:
            message = str(item["error"]).strip() or "the build stopped"
            raise BuildStopped(f"failed: {message}")
        text = item.get("stream") or ""
        if item.get("status"):  # a base image pulled; not expected, but shown like the CLI
            text += f"{item['status']} {item.get('progress') or ''}".rstrip() + "\n"
        transcript.add(text)
        aux = item.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            found = str(aux["ID"])
        elif text.startswith("Successfully built ") and not found:
            found = text.split()[-1]
    if not found:
        raise BuildStopped("produced no image ID")
    return found
