"""Parsing HTTP_ADDRESS and the loopback rule."""

from __future__ import annotations

import pytest

from eventsched import EventScheduler
from eventsched.http import HttpAddress, HttpAddressError, HttpService, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8000", HttpAddress("127.0.0.1", 8000)),
        ("localhost:0", HttpAddress("localhost", 0)),
        ("[::1]:9000", HttpAddress("::1", 9000)),
        (" 0.0.0.0:80 ", HttpAddress("0.0.0.0", 80)),
    ],
)
def test_addresses_parse(text: str, expected: HttpAddress) -> None:
    """HOST:PORT, IPv6 in brackets, localhost, surrounding spaces."""
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("8000", "expected HOST:PORT"),
        ("127.0.0.1:", "expected HOST:PORT"),
        ("127.0.0.1:http", "port must be a number from 0 to 65535"),
        ("127.0.0.1:70000", "port must be a number from 0 to 65535"),
        ("example.com:80", "host must be an IP address or localhost"),
        ("x" * 5000 + ":1", "host must be an IP address"),
    ],
)
def test_bad_addresses_are_one_line_naming_the_value(text: str, why: str) -> None:
    """A bad address names the setting, the value (cut when long) and what is allowed."""
    with pytest.raises(HttpAddressError, match=why) as caught:
        parse_address(text)
    message = str(caught.value)
    assert message.startswith("HTTP_ADDRESS=")
    assert "\n" not in message
    assert len(message) < 200


def test_non_loopback_needs_a_token() -> None:
    """Listening beyond this machine without a token is refused; with one it is allowed."""
    with pytest.raises(HttpAddressError, match="not a loopback address"):
        HttpService(EventScheduler(), "0.0.0.0:0")
    service = HttpService(EventScheduler(), "0.0.0.0:0", token="t")
    try:
        assert service.port > 0
    finally:
        service.close()
