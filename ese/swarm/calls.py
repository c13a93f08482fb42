"""Docker SDK calls that change something, each printed as the docker command it stands for.

The SDK call is what runs; the printed line is for people, so a run reads like the commands
one would type. A refusal by the engine is one line naming that command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ese.errors import EseError

T = TypeVar("T")


def reason(exc: BaseException) -> str:
    """The first line of the engine's explanation (docker.errors.APIError), else of `exc`."""
    said = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return said[0] if said else type(exc).__name__


def call(shown: str, action: Callable[[], T], hint: str = "run `invoke doctor`") -> T:
    """Print `> shown`, then make the SDK call `action`; an EseError on failure."""
    print(f"> {shown}", flush=True)
    try:
        return action()
    except Exception as exc:  # docker.errors.APIError, requests' connection errors
        raise EseError(f"`{shown}` failed: {reason(exc)}", hint) from None
