"""Checks of user input shared by the flows: URLs from flags and JSON files from disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ese.errors import EseError


def check_url(url: str, flag: str, example: str = "http://host:8100") -> str:
    """`url` when it is http(s)://host[:port] with a port in 1..65535, else an EseError."""
    if flag.startswith("--"):
        hint = f"e.g. {flag} {example}"
    else:
        hint = f"e.g. {flag}={example}" if flag.startswith("INVOKE_") else f"e.g. {example}"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise EseError(f"{flag} {url!r} is not a valid URL ({exc})", hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EseError(f"{flag} {url!r} is not an http(s) URL", hint)
    if port == 0:
        raise EseError(f"{flag} {url!r} has port 0 (must be 1-65535)", hint)
    return url


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or an EseError that says how to get a good one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EseError(f"{what} {path} not found", "run `invoke render`") from None
    except ValueError as exc:
        raise EseError(f"{what} {path} is not valid JSON: {exc}", "fix or re-render it") from None
    if not isinstance(data, dict):
        raise EseError(f"{what} {path} is not a JSON object", "fix or re-render it")
    return data
