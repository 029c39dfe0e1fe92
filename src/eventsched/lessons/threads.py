"""Lesson: threads, in both directions, and why a thread cannot be cancelled.

Blocking code (a file read, a C library, ``time.sleep``) called directly in a task
stops the whole loop: no other task runs until it returns. ``await
anyio.to_thread.run_sync(fn)`` runs it in a worker thread instead, and the loop goes on.

A thread cannot be cancelled: Python has no way to stop a thread from outside. So a
cancel scope around ``to_thread.run_sync`` *waits* for the thread to finish before the
cancellation goes on (the default: nothing is left running behind your back). With
``abandon_on_cancel=True`` the scope ends at once and the thread runs on, unwatched, and
its result is thrown away; fine for a pure computation, wrong for anything that writes.
A thread that must stop early has to be told, by a flag it checks (or
``anyio.from_thread.check_cancelled()``).

The other direction: a worker thread calls back into the loop with
``anyio.from_thread.run(async_fn)`` (the call runs in the loop's thread, and the worker
waits for its result). Plain synchronous code with no loop at all uses a
``BlockingPortal``: ``with anyio.from_thread.start_blocking_portal() as portal:`` starts
a loop in a thread of its own, and ``portal.call(async_fn)`` runs coroutines on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import sniffio

from ._base import Lesson

BLOCK = 0.2
"""Seconds the blocking call takes."""
TIMEOUT = 0.02
"""Seconds of the timeout around it."""


@dataclass(frozen=True, slots=True)
class ThreadsOutcome:
    """What the demonstration measured."""

    backend: str
    turns_blocking_in_loop: int
    """Turns another task got while the loop itself ran ``time.sleep(BLOCK)``."""
    turns_in_thread: int
    """... while ``to_thread.run_sync`` ran it in a worker thread."""
    waited_for_thread: float
    """Seconds ``move_on_after(TIMEOUT)`` took around ``to_thread.run_sync(sleep)``."""
    abandoned_after: float
    """... with ``abandon_on_cancel=True``."""
    abandoned_thread_finished_later: bool
    """The abandoned thread ran on to its end after the scope had gone."""
    from_thread_in_loop_thread: bool
    """``from_thread.run`` ran its coroutine in the loop's thread, and returned its value."""
    portal_result: int
    """What ``portal.call`` returned to code with no loop of its own."""
    asyncio_to_thread_after: float | None = None
    """asyncio only: seconds ``move_on_after(TIMEOUT)`` took around
    ``asyncio.to_thread(sleep)`` (it does not wait for the thread)."""

    @property
    def claim(self) -> str:
        return (
            f"Blocking in the loop stops every task, to_thread does not; a {TIMEOUT} s "
            f"timeout around a {BLOCK} s thread waits for the thread, or with "
            "abandon_on_cancel=True leaves it running; from_thread.run and a BlockingPortal "
            "run coroutines on a loop from a thread."
        )

    @property
    def headline(self) -> str:
        return (
            f"a {TIMEOUT * 1000:.0f} ms timeout around a {BLOCK * 1000:.0f} ms thread took "
            f"{self.waited_for_thread * 1000:.0f} ms ({self.abandoned_after * 1000:.0f} ms "
            "abandoning it); other tasks ran "
            f"{self.turns_blocking_in_loop} times while the loop blocked"
        )

    @property
    def held(self) -> bool:
        return (
            self.turns_blocking_in_loop == 0
            and self.turns_in_thread > 0
            and self.waited_for_thread >= BLOCK
            and self.abandoned_after < BLOCK
            and self.abandoned_thread_finished_later
            and self.from_thread_in_loop_thread
            and self.portal_result == 42
            and (
                self.backend != "asyncio"
                or (
                    self.asyncio_to_thread_after is not None
                    and self.asyncio_to_thread_after < BLOCK
                )
            )
        )

    def figures(self) -> list[str]:
        return [
            f"time.sleep({BLOCK}) in the loop: another task ran "
            f"{self.turns_blocking_in_loop} times; in to_thread.run_sync: "
            f"{self.turns_in_thread} times",
            f"move_on_after({TIMEOUT}) around to_thread.run_sync(time.sleep, {BLOCK}): "
            f"took {self.waited_for_thread * 1000:.0f} ms (it waited for the thread)",
            f"the same with abandon_on_cancel=True: {self.abandoned_after * 1000:.0f} ms; "
            f"the thread finished later anyway: {self.abandoned_thread_finished_later}",
            f"from_thread.run from a worker: ran in the loop's thread and returned its "
            f"value: {self.from_thread_in_loop_thread}",
            f"BlockingPortal from code with no loop: portal.call returned {self.portal_result}",
        ]


async def _turns_during(work: str) -> int:
    """How many turns a ticking task got while ``work`` ran."""
    turns = 0
    started = anyio.Event()

    async def tick() -> None:
        nonlocal turns
        started.set()
        while True:
            await anyio.sleep(0.001)
            turns += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await started.wait()
        before = turns
        if work == "in-loop":
            time.sleep(BLOCK)  # noqa: ASYNC251 (WRONG on purpose: it blocks the loop)
            # Counted before the next await: the ticker had no chance meanwhile.
            during = turns - before
        else:
            await anyio.to_thread.run_sync(time.sleep, BLOCK)
            during = turns - before
        tg.cancel_scope.cancel()
    return during


async def _timeout_around_thread(*, abandon: bool) -> tuple[float, threading.Event]:
    finished = threading.Event()

    def blocking() -> None:
        time.sleep(BLOCK)
        finished.set()

    start = anyio.current_time()
    with anyio.move_on_after(TIMEOUT):
        await anyio.to_thread.run_sync(blocking, abandon_on_cancel=abandon)
    return anyio.current_time() - start, finished


async def _asyncio_to_thread() -> float:
    import asyncio

    finished = threading.Event()

    def blocking() -> None:
        time.sleep(BLOCK)
        finished.set()

    start = anyio.current_time()
    with anyio.move_on_after(TIMEOUT):
        await asyncio.to_thread(blocking)
    took = anyio.current_time() - start
    await anyio.to_thread.run_sync(finished.wait, 10)  # leave nothing running behind us
    return took


async def _from_thread() -> bool:
    loop_thread = threading.get_ident()

    async def in_the_loop() -> int:
        await anyio.lowlevel.checkpoint()
        return threading.get_ident()

    def worker() -> int:
        return anyio.from_thread.run(in_the_loop)  # waits for the loop to run it

    return await anyio.to_thread.run_sync(worker) == loop_thread


async def _answer() -> int:
    await anyio.lowlevel.checkpoint()
    return 42


def _plain_sync_code(backend: str) -> int:
    """Code with no loop of its own (a script, a sync framework) calling async code."""
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        return portal.call(_answer)


async def demonstrate() -> ThreadsOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    waited, _ = await _timeout_around_thread(abandon=False)
    abandoned, finished = await _timeout_around_thread(abandon=True)
    left_running = not finished.is_set()
    finished_later = await anyio.to_thread.run_sync(finished.wait, 10)
    return ThreadsOutcome(
        backend=backend,
        turns_blocking_in_loop=await _turns_during("in-loop"),
        turns_in_thread=await _turns_during("in-thread"),
        waited_for_thread=waited,
        abandoned_after=abandoned,
        abandoned_thread_finished_later=left_running and finished_later,
        from_thread_in_loop_thread=await _from_thread(),
        # The portal blocks its caller, so the "sync code" runs in a worker thread here.
        portal_result=await anyio.to_thread.run_sync(_plain_sync_code, backend),
        asyncio_to_thread_after=await _asyncio_to_thread() if backend == "asyncio" else None,
    )


LESSON = Lesson(
    name="threads",
    title="Threads: to_thread, from_thread, a BlockingPortal, and why threads cannot be cancelled",
    idea=(
        "Run blocking calls with to_thread.run_sync so that the loop goes on. A thread "
        "cannot be cancelled: a timeout around one waits for it, or abandons it still "
        "running. from_thread.run and a BlockingPortal go the other way, from a thread into "
        "a loop."
    ),
    demonstrate=demonstrate,
    differences=(
        "The same through anyio on both. Plain asyncio.to_thread, measured above on "
        "asyncio, returns at once on cancellation and leaves the thread running (what "
        "abandon_on_cancel=True does); its way back into the loop is "
        "asyncio.run_coroutine_threadsafe."
    ),
)
