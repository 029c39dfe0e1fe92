"""The HTTP service: one more task in the scheduler's task group, on asyncio and trio.

Hypercorn serves the ASGI app with its asyncio or its trio worker, whichever loop the
scheduler runs on. The service is a :class:`~eventsched.Service`: it starts with the
scheduler, keeps answering while the queue drains (``/readyz`` says 503 from the first
moment of shutdown, ``/healthz`` stays 200), and stops when the scheduler cancels its
services at the end of shutdown. It then closes its listening socket, gracefully within
:attr:`HttpService.close_timeout` seconds.
"""

from __future__ import annotations

import os
import socket
from typing import Final

import anyio
import sniffio
from anyio.abc import TaskStatus
from hypercorn.asyncio import serve as asyncio_serve
from hypercorn.config import Config
from hypercorn.trio import serve as trio_serve

from ._address import HttpAddress, HttpAddressError, bind, parse_address
from ._app import ControlSource, create_app

__all__ = ["DEFAULT_HTTP_ADDRESS", "HttpService"]

DEFAULT_HTTP_ADDRESS: Final = "127.0.0.1:8000"


class HttpService:
    """Serves ``/metrics``, ``/healthz``, ``/readyz``, ``/api/*`` and the live page.

    The address is parsed and the socket bound here, in the constructor, so that a bad
    address or a port in use raises :class:`HttpAddressError` before anything starts.
    A non-loopback address is refused unless a ``token`` is set: the page and the
    metrics are then reachable from other machines, and changes need the token.
    """

    name = "http"

    def __init__(
        self,
        scheduler: ControlSource,
        address: str | HttpAddress = DEFAULT_HTTP_ADDRESS,
        *,
        token: str | None = None,
        close_timeout: float = 1.0,
    ) -> None:
        self.address = address if isinstance(address, HttpAddress) else parse_address(address)
        if not self.address.is_loopback and not token:
            raise HttpAddressError(
                f"HTTP_ADDRESS='{self.address}': not a loopback address; listening beyond this "
                "machine needs HTTP_TOKEN set (or use 127.0.0.1)"
            )
        self.close_timeout = close_timeout
        self._app = create_app(scheduler, token=token)
        self._socket: socket.socket | None = bind(self.address)

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose, for port 0)."""
        if self._socket is None:
            raise RuntimeError("the HTTP service has stopped")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port/`` of the service."""
        host = self.address.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def close(self) -> None:
        """Close the listening socket of a service that will not run (``run`` closes it too)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled, then close gracefully within ``close_timeout``."""
        if self._socket is None:
            raise RuntimeError("an HttpService runs once")
        config = Config()
        # Hypercorn takes ownership of the descriptor it is given: give it a duplicate,
        # so that ours is closed here whatever happens to the server.
        config.bind = [f"fd://{os.dup(self._socket.fileno())}"]
        config.accesslog = None
        # Hypercorn's own "Running on ..." lines would bypass our log format; the
        # scheduler logs the address itself. Warnings and errors still show.
        config.loglevel = "WARNING"
        config.graceful_timeout = self.close_timeout
        stop = anyio.Event()
        # The server runs shielded, so that a cancellation reaches it as a graceful stop
        # (the trigger) with a deadline, not as a cut in the middle of a response.
        serving = anyio.CancelScope(shield=True)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._serve, config, stop, serving)
                task_status.started()
                try:
                    await anyio.sleep_forever()
                finally:
                    stop.set()
                    serving.deadline = anyio.current_time() + self.close_timeout
        finally:
            self.close()

    async def _serve(self, config: Config, stop: anyio.Event, serving: anyio.CancelScope) -> None:
        with serving:
            if sniffio.current_async_library() == "trio":
                await trio_serve(self._app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
            else:
                await asyncio_serve(self._app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    def begin_shutdown(self) -> None:
        """Nothing to do: the service keeps answering while the queue drains."""

    async def wait_idle(self) -> None:
        """Nothing to wait for: requests do not hold up shutdown."""
