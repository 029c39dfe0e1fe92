"""The database's idle connections: made on demand, dropped as soon as one breaks.

Not psycopg_pool: measured with a real server restart (tests/postgres/test_restart.py),
its reconnection runs in its own background attempts with their own backoff (1, 2, 4,
8 s...), so after an outage of 3.5 s the scheduler stood still for 3 s more with the
server back, and each attempt logged a warning through ``logging`` (a storm in the
user's logs, beside our one warning per outage). Here a connection is made in the
thread that needs it, so the caller's backoff (:mod:`._database`, at most 2 s) is the
only one, and an outage is one warning.

How many connections exist at once is bounded by the threads that use them (the
database's capacity limiter), so this keeps no count of its own. A connection that
failed is closed, and so are the idle ones: they were very likely cut by the same
outage, and each would cost a failed attempt and a backoff step to find out.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

__all__ = ["Connections"]

Connection = psycopg.Connection[tuple[Any, ...]]


class Connections:
    """Idle connections to one database, for worker threads (thread-safe)."""

    def __init__(self, conninfo: str, **options: Any) -> None:
        self._conninfo = conninfo
        self._options = options
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def connect(self) -> Connection:
        """A new connection (not kept): raises :class:`psycopg.OperationalError`."""
        return psycopg.connect(self._conninfo, **self._options)

    def keep(self, connection: Connection) -> None:
        """Keep ``connection`` for the next caller, if it is still good for one."""
        good = (
            not connection.broken
            and not connection.closed
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if good and not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    def drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """An idle connection, or a new one; kept again after, unless it failed."""
        with self._lock:
            if self._closed:
                raise psycopg.OperationalError("the connections are closed")
            found = self._idle.pop() if self._idle else None
        connection = found if found is not None else self.connect()
        try:
            yield connection
        except psycopg.OperationalError:
            connection.close()
            self.drop_idle()
            raise
        except BaseException:
            self.keep(connection)  # kept only if its transaction ended
            raise
        self.keep(connection)

    def close(self) -> None:
        """Close the idle connections; those in use close when given back."""
        with self._lock:
            self._closed = True
        self.drop_idle()
