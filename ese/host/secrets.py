"""Per-install secrets in `docker/.env`: written on the first run, never overwritten.

Compose reads the file through `--env-file` (and from the compose file's directory when run by
hand); the tasks read it for Grafana provisioning and the consumer token. It is git-ignored.
"""

from __future__ import annotations

import os
import secrets as _random
from pathlib import Path

from ese.errors import EseError
from ese.paths import ENV_FILE

GRAFANA_USER = "GRAFANA_ADMIN_USER"
GRAFANA_PASSWORD = "GRAFANA_ADMIN_PASSWORD"
REDIS_PASSWORD = "REDIS_PASSWORD"
INGEST_TOKEN = "ESE_INGEST_TOKEN"
ANALYTICS_TOKEN = "ESE_ANALYTICS_TOKEN"
KEYS = (GRAFANA_USER, GRAFANA_PASSWORD, REDIS_PASSWORD, INGEST_TOKEN, ANALYTICS_TOKEN)

HEADER = (
    "# Per-install secrets for the ESE demo, written once by `invoke backend`; git-ignored.\n"
    "# Grafana keeps its admin password from its first start: after changing\n"
    "# GRAFANA_ADMIN_PASSWORD, run `invoke down --volumes` or reset it in the container.\n"
)


def _fresh(key: str) -> str:
    if key == GRAFANA_USER:
        return "admin"
    # token_urlsafe: only [A-Za-z0-9_-], so the value is safe in a URL (redis://:pw@host),
    # in compose interpolation and in every shell without quoting.
    return _random.token_urlsafe(24)


def parse(text: str) -> dict[str, str]:
    """KEY=value lines of a compose env file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read(path: Path = ENV_FILE) -> dict[str, str]:
    """The values of an existing env file; a clear error when it is missing."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EseError(f"{path} does not exist", "run `invoke backend` once to create it") from None


def ensure(path: Path = ENV_FILE) -> tuple[dict[str, str], list[str]]:
    """Create the env file if needed and add missing keys; return (values, keys written).

    Existing values are never changed: a regenerated Redis or Grafana password would no
    longer match the data volumes that were initialised with the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = parse(path.read_text(encoding="utf-8")) if path.exists() else {}
    missing = [k for k in KEYS if k not in existing]
    if not missing:
        return existing, []
    new = {k: _fresh(k) for k in missing}
    lines = "".join(f"{k}={v}\n" for k, v in new.items())
    if not path.exists():
        # "x": fail instead of clobbering a file another process just wrote.
        with path.open("x", encoding="utf-8", newline="\n") as fh:
            fh.write(HEADER + lines)
        if os.name != "nt":
            path.chmod(0o600)
    else:
        text = path.read_text(encoding="utf-8")
        with path.open("a", encoding="utf-8", newline="\n") as fh:
            fh.write(("" if text.endswith("\n") or not text else "\n") + lines)
    return {**existing, **new}, missing
