"""The client identity: own IPv4 address plus instance number, found without any request."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from ese_client.identity import own_ipv4


def test_own_ipv4_is_an_ipv4_address() -> None:
    assert isinstance(ipaddress.ip_address(own_ipv4()), ipaddress.IPv4Address)


class _NoRouteSocket:
    """A UDP socket on a host without a network: connect() fails."""

    def __init__(self, *_args: Any) -> None:
        pass

    def __enter__(self) -> _NoRouteSocket:
        return self

    def __exit__(self, *_args: object) -> None:
        pass

    def connect(self, _address: object) -> None:
        raise OSError("Network is unreachable")


def test_without_a_route_it_falls_back_to_the_hostname_then_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "socket", _NoRouteSocket)
    monkeypatch.setattr(socket, "gethostbyname", lambda _name: "172.18.0.7")
    assert own_ipv4() == "172.18.0.7"

    def unresolvable(_name: str) -> str:
        raise OSError("no such host")

    monkeypatch.setattr(socket, "gethostbyname", unresolvable)
    assert own_ipv4() == "127.0.0.1"
