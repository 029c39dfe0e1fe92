"""Wake-ups across processes: PostgreSQL's LISTEN/NOTIFY, received in a worker thread.

A change one process makes (a job added, paused, moved earlier) is announced with
``pg_notify`` in the same transaction, so the others hear of it when it commits, and
not before. A listener blocks in a worker thread for at most ``timeout`` seconds at a
time, so a lost connection or a missed notification costs at most that delay: the
caller treats a timeout as "look again" (a poll at most once per timeout).
"""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
import psycopg
from psycopg import sql

from ._database import Database

__all__ = ["Listener", "notify"]


def notify(connection: psycopg.Connection[tuple[object, ...]], channel: str, payload: str) -> None:
    """Announce ``payload`` on ``channel`` when the caller's transaction commits."""
    connection.execute("SELECT pg_notify(%s, %s)", [channel, payload])


class Listener:
    """Notifications on one channel, on a connection of its own."""

    def __init__(self, database: Database, channel: str) -> None:
        self._database = database
        self._channel = channel
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        # One thread at a time uses the connection: psycopg connections are not
        # meant to be shared by threads that wait on them at once.
        self._limiter = anyio.CapacityLimiter(1)
        # Held by the thread using the connection. close() during a wait leaves the
        # closing to that thread (when its wait ends) instead of waiting for it.
        self._using = threading.Lock()
        self._closing = False

    async def open(self) -> None:
        """Connect and start listening."""
        self._connection = await self._database.connect_dedicated()
        statement = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
        await anyio.to_thread.run_sync(self._connection.execute, statement, limiter=self._limiter)

    async def wait(self, at_most: float) -> list[str]:
        """The payloads received within ``at_most`` seconds (empty: none came).

        Returns as soon as one notification arrives, with any others already there.
        Cancelling the caller leaves the thread to finish its wait (at most ``at_most``).
        """
        connection = self._connection
        if connection is None:
            raise RuntimeError("Listener.wait() before open()")

        def receive() -> list[str]:
            with self._using:
                try:
                    if self._closing:
                        return []
                    notes = connection.notifies(timeout=at_most, stop_after=1)
                    return [note.payload for note in notes]
                finally:
                    if self._closing:
                        connection.close()

        return await anyio.to_thread.run_sync(
            receive, limiter=self._limiter, abandon_on_cancel=True
        )

    async def close(self) -> None:
        """Stop listening; safe to call more than once, and during a wait (which then
        closes the connection when it ends, at most its ``at_most`` later)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._closing = True
        if self._using.acquire(blocking=False):
            try:
                await anyio.to_thread.run_sync(connection.close)
            finally:
                self._using.release()
