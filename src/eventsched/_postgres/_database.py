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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, TypeVar

import anyio
import anyio.to_thread
import psycopg
from loguru import logger
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import JobStateError
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
        self._pool = ConnectionPool(
            target.conninfo,
            min_size=1,
            max_size=connections,
            open=False,
            name="eventsched",
            timeout=connect_timeout,
            reconnect_timeout=retry_for,
            kwargs={
                "connect_timeout": max(1, round(connect_timeout)),
                # A statement that hangs (a lock held by a stuck process) fails instead
                # of holding a thread, and with it shutdown, for ever.
                "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
                "application_name": application_name,
            },
        )

    async def _thread(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func, limiter=self._limiter)

    async def run_in_thread(self, func: Callable[[], T]) -> T:
        """``func()`` in one of this database's worker threads (no retry, no pool)."""
        return await self._thread(func)

    async def open(self) -> None:
        """Connect; :class:`JobStateError` (one line, no password) if the server refuses."""

        def connect() -> None:
            # One direct attempt first: the pool would retry quietly until its timeout
            # and then say only "timed out", where libpq says what is wrong.
            try:
                psycopg.connect(
                    self.target.conninfo, connect_timeout=max(1, round(self._connect_timeout))
                ).close()
            except psycopg.Error as exc:
                raise JobStateError(
                    f"STATE_URL={self.target}: cannot connect: {_one_line(exc, self.target)}"
                ) from None
            try:
                self._pool.open(wait=True, timeout=self._connect_timeout)
            except PoolTimeout as exc:
                raise JobStateError(
                    f"STATE_URL={self.target}: cannot connect: {_one_line(exc, self.target)}"
                ) from None

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
            with self._pool.connection() as connection, connection.transaction():
                result = work(connection)
            if committed is not None:
                committed(result)
            return result

        deadline = anyio.current_time() + self.retry_for
        backoff = _FIRST_BACKOFF
        warned = False
        while True:
            try:
                return await self._thread(once)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if anyio.current_time() + backoff > deadline:
                    raise JobStateError(
                        f"STATE_URL={self.target}: lost the database for over "
                        f"{self.retry_for:g}s: {_one_line(exc, self.target)}"
                    ) from None
                if not warned:
                    log.warning(
                        "PostgreSQL at {} unreachable ({}); retrying for up to {:g}s",
                        self.target,
                        _one_line(exc, self.target),
                        self.retry_for,
                    )
                    warned = True
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

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
        await self._thread(functools.partial(self._pool.close, timeout=self._connect_timeout))
