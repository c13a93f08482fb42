"""The uvicorn internals that http_protocol.py builds on are still there, with their shapes.

`CappedHttpToolsProtocol` overrides hooks of uvicorn's httptools protocol and calls private
helpers of it. pyproject pins uvicorn below its next minor; this test is what tells, on the
version bump, whether those hooks survived: it fails when one is gone or changed its signature.
"""

from __future__ import annotations

import inspect

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from ese_server.http_protocol import protocol_class

# name -> its parameters after self: the hooks overridden, then the helpers called.
HOOKS = {
    "connection_made": ["transport"],
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
        "connection_made",
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "send_400_response",
    ]


def test_uvicorn_still_closes_through_the_transport_the_protocol_was_given() -> None:
    # The lingering close wraps the transport passed to connection_made: uvicorn must keep
    # closing a finished request's connection through it, and start nothing new on a
    # connection that says it is closing (lingering).
    assert "self.transport = transport" in inspect.getsource(HttpToolsProtocol.connection_made)
    assert "transport=self.transport" in inspect.getsource(HttpToolsProtocol.on_headers_complete)
    send = inspect.getsource(RequestResponseCycle.send)
    assert "if not self.keep_alive:\n                    self.transport.close()" in send
    done = inspect.getsource(HttpToolsProtocol.on_response_complete)
    assert "if self.transport.is_closing():\n            return" in done
