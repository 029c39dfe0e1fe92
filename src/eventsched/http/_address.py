"""Where the HTTP service listens: parsing ``HOST:PORT``, the loopback rule, binding early.

The socket is bound before the scheduler starts, so that a bad address or a port in
use is a configuration error (one line, exit 2, nothing started) rather than a failure
in the middle of a run; the server is then handed that socket.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

__all__ = ["HttpAddress", "HttpAddressError", "bind", "parse_address"]

#: Values are cut to this many characters in error messages.
_SHOWN = 60


class HttpAddressError(ValueError):
    """An HTTP address that cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class HttpAddress:
    """A parsed ``HOST:PORT``."""

    host: str
    """An IP address (v4 or v6) or ``localhost``."""
    port: int
    """0 to 65535; 0 lets the system choose a free port."""

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can reach it."""
        if self.host == "localhost":
            return True
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "...")


def parse_address(value: str) -> HttpAddress:
    """Parse ``HOST:PORT`` (``[::1]:8000`` for IPv6); raise :class:`HttpAddressError`.

    Host names other than ``localhost`` are refused: a name can resolve to an address
    other than the one the operator checked, so the address is given as an IP.
    """
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise HttpAddressError(
            f"HTTP_ADDRESS={_shown(value)}: expected HOST:PORT, e.g. 127.0.0.1:8000 or [::1]:8000"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise HttpAddressError(
            f"HTTP_ADDRESS={_shown(value)}: the port must be a number from 0 to 65535"
        )
    if host != "localhost":
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise HttpAddressError(
                f"HTTP_ADDRESS={_shown(value)}: the host must be an IP address or localhost"
            ) from None
    return HttpAddress(host, port)


def bind(address: HttpAddress) -> socket.socket:
    """A listening TCP socket on ``address``; :class:`HttpAddressError` if that fails."""
    host = "127.0.0.1" if address.host == "localhost" else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Restarting right after a stop must not wait out TIME_WAIT; this does not let
        # two live servers share the port (that would be SO_REUSEPORT).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise HttpAddressError(
            f"HTTP_ADDRESS={_shown(str(address))}: cannot listen: {why}"
        ) from None
    sock.setblocking(False)
    return sock
