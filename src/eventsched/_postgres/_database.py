"""PostgreSQL from anyio: psycopg's sync connections, driven in worker threads.

psycopg's async connection does not run on trio, and asyncpg is asyncio-only; the
sync connection in a worker thread works on both loops, LISTEN/NOTIFY included. The
threads come from a :class:`anyio.CapacityLimiter` of the database's own, so that slow
queries never take the threads that sync handlers and jobs use, and the other way round.

Every call is one transaction (``work`` gets the connection inside it); a call that
loses its connection is retried with backoff until ``retry_for`` seconds have passed,
so a database restarted mid-run costs a pause and a warning, not the process. Work must
therefore be safe to repeat: the job store's writes are compare-and-set, so a repeated
claim is refused rather than doubled.

A connection lost *during COMMIT* leaves the outcome unknown: the server may have
committed. Repeating the work then is not enough: meanwhile another process may have
moved on from what this one committed, and the repeat is refused, leaving a claim
committed that this process does not know it holds (never run, never reported while it
lives). So each transaction that wrote reads its id before committing, and after such
a loss the outcome is asked of the server (``txid_status``): committed, the work's
result stands as if the answer had come; aborted, the work is repeated.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import anyio
import anyio.to_thread
import psycopg
from loguru import logger

from .. import JobStateError
from ._connections import Connections
from ._url import PostgresTarget

__all__ = ["Database"]

T = TypeVar("T")

log = logger.bind(component="postgres")

#: First pause before retrying a lost connection; doubled up to _MAX_BACKOFF.
_FIRST_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 2.0


def _one_line(exc: BaseException, target: PostgresTarget) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _CommitUnknown(Exception, Generic[T]):
    """The connection was lost during COMMIT of transaction ``xid``, whose work gave
    ``result``: whether it committed is for the server to say."""

    def __init__(self, xid: int, result: T) -> None:
        super().__init__(xid)
        self.xid = xid
        self.result = result


class _Pending(Exception):
    """The server still shows the transaction in progress: ask again."""


class _Aborted(Exception):
    """The server says the transaction did not commit: the work is to be done again."""


class Database:
    """A small pool of connections to one PostgreSQL database, used from any backend."""

    def __init__(
        self,
        target: PostgresTarget,
        *,
        connections: int = 4,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        retry_for: float = 30.0,
        application_name: str = "eventsched",
    ) -> None:
        self.target = target
        self.retry_for = retry_for
        self._connect_timeout = connect_timeout
        self._application_name = application_name
        self._limiter = anyio.CapacityLimiter(connections)
        # When the current outage began (None: none): shared by every call, so that an
        # outage is one warning and one "reachable again", however many calls wait.
        self._lost_at: float | None = None
        # At most `connections` at once: one per thread of the limiter.
        self._connections = Connections(
            target.conninfo,
            connect_timeout=max(1, round(connect_timeout)),
            # A statement that hangs (a lock held by a stuck process) fails instead
            # of holding a thread, and with it shutdown, for ever.
            options=f"-c statement_timeout={int(statement_timeout * 1000)}",
            application_name=application_name,
        )

    async def _thread(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func, limiter=self._limiter)

    async def run_in_thread(self, func: Callable[[], T]) -> T:
        """``func()`` in one of this database's worker threads (no retry, no pool)."""
        return await self._thread(func)

    async def open(self) -> None:
        """Connect; :class:`JobStateError` (one line, no password) if the server refuses."""

        def connect() -> None:
            try:
                first = self._connections.connect()
            except psycopg.Error as exc:
                raise JobStateError(
                    f"STATE_URL={self.target}: cannot connect: {_one_line(exc, self.target)}"
                ) from None
            self._connections.keep(first)

        await self._thread(connect)

    async def run(
        self,
        work: Callable[[psycopg.Connection[tuple[object, ...]]], T],
        committed: Callable[[T], None] | None = None,
    ) -> T:
        """``work(connection)`` in one transaction, in a worker thread; retried if cut off.

        ``committed(result)`` runs in that thread once the transaction has committed,
        even if the caller is cancelled meanwhile (the thread always finishes): what
        the caller keeps about the database stays true to what was committed.
        """

        def once() -> T:
            xid: int | None = None
            try:
                with self._connections.connection() as connection, connection.transaction():
                    result = work(connection)
                    # None: nothing written, so a lost COMMIT changed nothing.
                    found = connection.execute("SELECT txid_current_if_assigned()").fetchone()
                    xid = None if found is None else found[0]
            except psycopg.OperationalError as exc:
                if xid is None:
                    raise
                raise _CommitUnknown(xid, result) from exc
            if committed is not None:
                committed(result)
            return result

        def resolve(unknown: _CommitUnknown[T]) -> T:
            """The result if that transaction committed; :class:`_Aborted` if not (an
            exception, not None: a work's result may itself be None)."""
            with self._connections.connection() as connection, connection.transaction():
                row = connection.execute("SELECT txid_status(%s)", [unknown.xid]).fetchone()
            status = None if row is None else row[0]
            if status == "in progress":  # its server process has not ended it yet
                raise _Pending("the transaction is still in progress on the server")
            if status != "committed":
                # "aborted", or None: older than the server keeps (not after seconds).
                raise _Aborted
            if committed is not None:
                committed(unknown.result)
            return unknown.result

        deadline = anyio.current_time() + self.retry_for
        backoff = _FIRST_BACKOFF
        unknown: _CommitUnknown[T] | None = None
        while True:
            try:
                if unknown is None:
                    result = await self._thread(once)
                else:
                    result = await self._thread(functools.partial(resolve, unknown))
            except _Aborted:
                unknown = None
                continue
            except _CommitUnknown as exc:
                unknown = exc
                log.debug("Lost the connection during COMMIT of {}: asking the server", exc.xid)
                continue
            except (psycopg.OperationalError, _Pending) as exc:
                if anyio.current_time() + backoff > deadline:
                    raise JobStateError(
                        f"STATE_URL={self.target}: lost the database for over "
                        f"{self.retry_for:g}s: {_one_line(exc, self.target)}"
                    ) from None
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
                    log.warning(
                        "PostgreSQL at {} unreachable ({}); retrying for up to {:g}s",
                        self.target,
                        _one_line(exc, self.target),
                        self.retry_for,
                    )
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            if self._lost_at is not None:
                log.info(
                    "PostgreSQL at {} reachable again after {:.1f}s",
                    self.target,
                    time.monotonic() - self._lost_at,
                )
                self._lost_at = None
            return result

    async def connect_dedicated(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection outside the pool, in autocommit (for LISTEN); the caller closes it."""
        connect = functools.partial(
            psycopg.connect,
            self.target.conninfo,
            autocommit=True,
            connect_timeout=max(1, round(self._connect_timeout)),
            application_name=self._application_name,
        )
        return await self._thread(connect)

    async def close(self) -> None:
        """Close every connection; safe to call more than once."""
        await self._thread(self._connections.close)
