"""The watcher: each process's look at what the others changed, and at who died.

One task per scheduler (started through the job scheduler's optional ``watch`` seam).
It waits on the schema's NOTIFY channel for at most ``poll_interval`` seconds, then
polls (:meth:`~._store.PostgresJobStore.poll`): it beats, takes over the unfinished
runs of dead processes among this process's jobs, and reads the rows others changed.
So a change announced by NOTIFY arrives within a round trip, and anything missed (a
notification lost with a connection, a process found dead) within ``poll_interval``.

A lost database never ends the task: the listener is reopened, the session lock
taken again, with backoff and a warning per outage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

import anyio
import psycopg
from loguru import logger

from .. import JobStateError
from ._notify import Listener

if TYPE_CHECKING:
    from ._store import Polled, PostgresJobStore

__all__ = ["watch"]

log = logger.bind(component="postgres")

_FIRST_BACKOFF: Final = 0.1
#: The longest pause between two attempts: with a long ``poll_interval`` (a minute)
#: the listener stayed away for as long after the server came back, and with it
#: every wake-up from the other processes (tests/postgres/test_restart.py).
_MAX_BACKOFF: Final = 2.0


async def watch(
    store: PostgresJobStore,
    changed: Callable[[Polled], Awaitable[None]],
    takeover: Callable[[], AbstractContextManager[Collection[str]]],
) -> None:
    """Run until cancelled (see the module documentation).

    ``takeover()`` is entered around each poll and the hand-over of what it found: it
    gives the jobs whose dead processes' runs the poll takes over (the job scheduler
    waits for that poll at shutdown: its reports must become events).
    """
    listener: Listener | None = None
    backoff = _FIRST_BACKOFF
    failing = False
    try:
        while True:
            # The takeover context of this round's poll, from the poll to the hand-over.
            with contextlib.ExitStack() as round_:
                try:
                    if listener is None:
                        # Listening first, then a poll at once: a change committed before
                        # LISTEN took effect (its NOTIFY unheard) is found by that poll.
                        listener = Listener(store.database, store.channel)
                        await listener.open()
                    else:
                        await listener.wait(store.poll_interval)
                    await store.check_session()
                    polled = await store.poll(round_.enter_context(takeover()))
                except (psycopg.Error, OSError, JobStateError) as exc:
                    round_.close()  # nothing taken over: no shutdown waits for the retry
                    if not failing:
                        log.warning(
                            "Watching {} for the other processes' changes failed ({}); "
                            "retrying with backoff",
                            store.location,
                            " ".join(str(exc).split())[:200] or type(exc).__name__,
                        )
                        failing = True
                    if listener is not None:
                        await _close_quietly(listener)
                        listener = None
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, store.poll_interval, _MAX_BACKOFF)
                    continue
                if failing:
                    log.info("Watching {} again", store.location)
                    failing = False
                backoff = _FIRST_BACKOFF
                if polled.rows or polled.interrupted:
                    await changed(polled)
    finally:
        if listener is not None:
            with anyio.CancelScope(shield=True):
                await _close_quietly(listener)


async def _close_quietly(listener: Listener) -> None:
    with contextlib.suppress(psycopg.Error):  # the connection is gone already
        await listener.close()
