import socket

import pytest

from tests.conftest import NetworkBlockedError


@pytest.mark.parametrize("address", [("203.0.113.1", 443), ("8.8.8.8", 53), ("10.0.0.1", 80)])
def test_network_is_blocked(address: tuple[str, int]) -> None:
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(address, timeout=1)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()


def test_hub_hostname_is_unreachable() -> None:
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
