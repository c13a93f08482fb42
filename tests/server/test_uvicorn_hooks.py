"""The uvicorn internals that http_protocol.py builds on are still there, with their shapes.

`CappedHttpToolsProtocol` overrides hooks of uvicorn's httptools protocol and calls private
helpers of it. pyproject pins uvicorn below its next minor; this test is what tells, on the
version bump, whether those hooks survived: it fails when one is gone or changed its signature.
"""

from __future__ import annotations

import inspect

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ese_server.http_protocol import protocol_class

# name -> its parameters after self: the hooks overridden, then the helpers called.
HOOKS = {
    "data_received": ["data"],
    "on_message_begin": [],
    "on_url": ["url"],
    "on_header": ["name", "value"],
    "on_headers_complete": [],
    "on_message_complete": [],
    "send_400_response": ["msg"],
    "_unset_keepalive_if_required": [],
    "_should_upgrade": [],
    "handle_websocket_upgrade": [],
    "_unsupported_upgrade_warning": [],
}


@pytest.mark.parametrize(("name", "params"), HOOKS.items())
def test_the_hook_exists_with_its_signature(name: str, params: list[str]) -> None:
    hook = getattr(HttpToolsProtocol, name, None)
    assert callable(hook), f"uvicorn's HttpToolsProtocol has no {name}() any more"
    names = list(inspect.signature(hook).parameters)
    assert names == ["self", *params], f"{name}{inspect.signature(hook)} changed"


def test_data_received_still_works_the_way_the_override_copies() -> None:
    # The override replaces data_received as a whole; it must keep doing what uvicorn's does.
    source = inspect.getsource(HttpToolsProtocol.data_received)
    for call in (
        "self._unset_keepalive_if_required()",
        "self.parser.feed_data(data)",
        "httptools.HttpParserError",
        "httptools.HttpParserUpgrade",
        "self._should_upgrade()",
        "self.handle_websocket_upgrade()",
        "self._unsupported_upgrade_warning()",
        "self.send_400_response(",
    ):
        assert call in source, f"uvicorn's data_received no longer has {call}"
    assert "self.parser = httptools.HttpRequestParser(self)" in inspect.getsource(
        HttpToolsProtocol.__init__
    )


def test_the_capped_protocol_is_built_on_it() -> None:
    capped = protocol_class(lambda reason: None)
    assert issubclass(capped, HttpToolsProtocol)
    overridden = [name for name in HOOKS if name in vars(capped)]
    assert overridden == [
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "send_400_response",
    ]
