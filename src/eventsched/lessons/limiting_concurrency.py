"""Lesson: limiting concurrency with CapacityLimiter and Semaphore.

A bounded buffer limits how much work *waits*, not how much *runs*. A dispatcher that
takes items from a buffer of three and starts a task for each keeps the buffer short,
but it can still have every item in flight at once: twenty requests to a database
that allows five connections.

To limit how many run at once, make each piece of work hold a token while it runs:

* ``anyio.Semaphore(n)``: ``async with sem:`` takes one of ``n`` tokens, and any task
  can release it;
* ``anyio.CapacityLimiter(n)``: the same, but tokens are lent to a *borrower* (the
  task), so a task that tries to take a second token is refused with an error instead
  of deadlocking itself, and ``total_tokens`` can be raised or lowered while it runs.
  anyio's worker threads are limited by one (``to_thread.run_sync`` uses 40 tokens
  unless given a limiter of its own).

The work still queues somewhere (the tasks wait on the limiter), so combine the two: a
bounded buffer to refuse or slow down new work, a limiter for what runs.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import anyio
import anyio.to_thread
import sniffio

from ._base import Lesson

JOBS = 20
LIMIT = 3
BUFFER = 3
RAISED = 5
"""The limiter's tokens after it was raised at run time."""


@dataclass(frozen=True, slots=True)
class LimitingOutcome:
    """What the demonstration measured."""

    backend: str
    peak_buffer_only: int
    """Most jobs running at once behind a bounded buffer of BUFFER, with no limiter."""
    peak_limiter: int
    """... with a CapacityLimiter(LIMIT)."""
    peak_semaphore: int
    """... with a Semaphore(LIMIT)."""
    peak_raised: int
    """... with the limiter raised to RAISED tokens before the jobs started."""
    second_token_refused: bool
    """A task that already holds a limiter's token was refused a second one."""
    thread_tokens: float
    """Tokens of anyio's default worker-thread limiter."""

    @property
    def claim(self) -> str:
        return (
            f"A bounded buffer of {BUFFER} does not limit how many jobs run at once; a "
            f"CapacityLimiter({LIMIT}) or Semaphore({LIMIT}) keeps it at {LIMIT}; a limiter "
            "refuses a second token to the same task and can be resized while in use."
        )

    @property
    def headline(self) -> str:
        return (
            f"{JOBS} jobs, most at once: buffer of {BUFFER} alone {self.peak_buffer_only}, "
            f"CapacityLimiter({LIMIT}) {self.peak_limiter}, Semaphore({LIMIT}) "
            f"{self.peak_semaphore}"
        )

    @property
    def held(self) -> bool:
        return (
            self.peak_buffer_only > BUFFER
            and self.peak_limiter == LIMIT
            and self.peak_semaphore == LIMIT
            and self.peak_raised == RAISED
            and self.second_token_refused
        )

    def figures(self) -> list[str]:
        return [
            f"{JOBS} jobs through a buffer of {BUFFER}, a task started per job: at most "
            f"{self.peak_buffer_only} running at once",
            f"each job holding a CapacityLimiter({LIMIT}) token: at most "
            f"{self.peak_limiter}; a Semaphore({LIMIT}): at most {self.peak_semaphore}",
            f"the limiter raised to {RAISED} tokens at run time: at most {self.peak_raised}",
            f"a task holding a token asked for a second: refused: {self.second_token_refused}",
            f"anyio's worker-thread limiter (to_thread.run_sync): {self.thread_tokens:g} tokens",
        ]


class Gauge:
    """Counts the jobs running now and the most that ever ran at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def job(self, slot: AbstractAsyncContextManager[object] | None) -> None:
        if slot is None:
            await self._work()
        else:
            async with slot:
                await self._work()

    async def _work(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await anyio.sleep(0.002)  # a query, say: other jobs run meanwhile
        self.now -= 1


async def _through_a_buffer(slot: AbstractAsyncContextManager[object] | None) -> int:
    """A dispatcher reads jobs from a bounded buffer and starts a task for each."""
    gauge = Gauge()
    send, receive = anyio.create_memory_object_stream[int](BUFFER)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def dispatch() -> None:
                async with receive:
                    async for _ in receive:
                        tg.start_soon(gauge.job, slot)

            tg.start_soon(dispatch)
            async with send:
                for n in range(JOBS):
                    await send.send(n)  # the buffer holds at most BUFFER of them
    return gauge.peak


async def _second_token() -> bool:
    limiter = anyio.CapacityLimiter(2)
    async with limiter:
        try:
            await limiter.acquire()  # the same borrower again: a bug, not a wait
        except RuntimeError:
            return True
        limiter.release()
    return False


async def demonstrate() -> LimitingOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    raised = anyio.CapacityLimiter(LIMIT)
    raised.total_tokens = RAISED  # e.g. the database now allows more connections
    return LimitingOutcome(
        backend=backend,
        peak_buffer_only=await _through_a_buffer(None),
        peak_limiter=await _through_a_buffer(anyio.CapacityLimiter(LIMIT)),
        peak_semaphore=await _through_a_buffer(anyio.Semaphore(LIMIT)),
        peak_raised=await _through_a_buffer(raised),
        second_token_refused=await _second_token(),
        thread_tokens=anyio.to_thread.current_default_thread_limiter().total_tokens,
    )


LESSON = Lesson(
    name="limiting-concurrency",
    title="Limiting concurrency: CapacityLimiter and Semaphore, and why a buffer is not one",
    idea=(
        "A bounded buffer limits how much work waits, not how much runs. To cap the work "
        "running at once, each piece holds a token from a CapacityLimiter or a Semaphore "
        "while it runs."
    ),
    demonstrate=demonstrate,
    differences=(
        "The same through anyio; trio.CapacityLimiter is the original. asyncio has "
        "asyncio.Semaphore but no capacity limiter: nothing refuses a task a second token, "
        "and the size cannot change in use."
    ),
)
