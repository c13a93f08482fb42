"""Every change the cluster makes to an engine, printed first as the docker command it stands
for, and an engine's refusal turned into one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ese.errors import EseError

T = TypeVar("T")
AGAIN = "run `invoke cluster.down`, then `invoke cluster.up` again"


def reason(exc: BaseException) -> str:
    """The engine's own first line when it sent one, else the exception's."""
    said = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return said[0] if said and said[0] else type(exc).__name__


def act(shown: str, call: Callable[[], T], hint: str = AGAIN) -> T:
    """Print `> shown`, then make the SDK `call`; an EseError naming the command on failure."""
    print(f"> {shown}", flush=True)
    try:
        return call()
    except Exception as exc:  # docker.errors.APIError, requests' connection errors
        raise EseError(f"`{shown}` failed: {reason(exc)}", hint) from None


def on(host: str) -> str:
    """`docker -H HOST` (a node's engine), the prefix of the commands sent there."""
    return f"docker -H {host}"
