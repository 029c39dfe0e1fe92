"""Lesson: checkpoints and fairness.

An event loop is cooperative: a task runs until it reaches a *checkpoint*, an await
that actually hands control back to the scheduler. Between checkpoints nothing else
runs on that loop: no other task, no timer, not even cancellation.

Whether an ``await`` is a checkpoint depends on the call:

* anyio's (and trio's) ``send()`` and ``receive()`` always pass through the scheduler,
  even when there is room: fair, and a place where cancellation is noticed;
* ``asyncio.Queue.put()`` does not yield when there is room (asyncio only);
* ``send_nowait()`` never yields: it is a plain function call;
* trio's own blocking calls always checkpoint, even when they need not wait: taking an
  uncontended ``trio.Lock``, waiting on a ``trio.Event`` that is already set. Their
  asyncio counterparts return at once without yielding (fast, and unfair).

Passing through the scheduler costs a few microseconds per item. The *nowait-first*
pattern (try ``send_nowait``; await ``send`` only when the buffer is full; drain with
``receive_nowait``; await ``receive`` only when it is empty) skips that cost, and that
is how eventsched's own queue works. The price: a task that never reaches a checkpoint
starves everyone else, so code in that style must checkpoint on purpose
(``await anyio.lowlevel.checkpoint()``) every so often: eventsched does it every
``CHECKPOINT_EVERY`` events.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import sniffio

from ._base import Lesson

ITEMS = 1000
"""Items sent while we count how often another task got to run."""
PIPELINE_ITEMS = 20_000
"""Items through producer -> consumer for the cost comparison."""
CHUNKS = 200
"""Pieces of CPU work in the starvation part."""


@dataclass(frozen=True, slots=True)
class CheckpointsOutcome:
    """What the demonstration measured."""

    backend: str
    ticks_during_send: int
    """How often another task ran while we did ``await send()`` ITEMS times (with room)."""
    ticks_during_send_nowait: int
    """The same during ITEMS ``send_nowait()`` calls."""
    ticks_during_queue_put: int | None
    """The same during ITEMS ``await asyncio.Queue.put()`` (asyncio only; None on trio)."""
    ticks_during_lock: int
    """Turns another task got during ITEMS acquisitions of the backend's own uncontended
    Lock (``asyncio.Lock`` or ``trio.Lock``)."""
    ticks_during_event: int
    """The same during ITEMS waits on the backend's own Event, already set."""
    rate_always_await: float
    """Items/s, producer -> consumer, ``await send`` / ``async for``."""
    rate_nowait_first: float
    """Items/s, same pipeline, nowait-first on both sides."""
    rate_asyncio_queue: float | None
    """Items/s, same pipeline on ``asyncio.Queue`` (asyncio only)."""
    ticks_during_greedy: int
    """How often another task ran during CHUNKS pieces of work with no checkpoint."""
    ticks_during_cooperative: int
    """The same with a checkpoint after every piece."""
    greedy_ms: float
    """How long the others were starved by the greedy task."""

    @property
    def speedup(self) -> float:
        """How much faster nowait-first is than awaiting every send and receive."""
        return self.rate_nowait_first / self.rate_always_await

    @property
    def claim(self) -> str:
        text = (
            "await send() lets other tasks run at every call, send_nowait() never does; "
            "nowait-first is faster than awaiting every send and receive; a task that never "
            "reaches a checkpoint lets no other task run, one that checkpoints shares the loop."
        )
        if self.backend == "asyncio":
            text += (
                " asyncio.Queue.put() with room, an uncontended asyncio.Lock and a set "
                "asyncio.Event do not yield."
            )
        else:
            text += " trio's own uncontended Lock and set Event yield every time."
        return text

    @property
    def headline(self) -> str:
        lock = "trio.Lock" if self.backend == "trio" else "asyncio.Lock"
        return (
            f"another task ran {self.ticks_during_send} times during {ITEMS} await send(), "
            f"{self.ticks_during_send_nowait} during send_nowait(), "
            f"{self.ticks_during_lock} during {ITEMS} uncontended {lock}, "
            f"{self.ticks_during_greedy} during greedy work"
        )

    @property
    def held(self) -> bool:
        held = (
            self.ticks_during_send >= ITEMS // 2
            and self.ticks_during_send_nowait == 0
            and self.speedup > 1.0
            and self.ticks_during_greedy == 0
            and self.ticks_during_cooperative >= CHUNKS // 2
        )
        if self.backend == "asyncio":
            return (
                held
                and self.ticks_during_queue_put == 0
                and self.ticks_during_lock == 0
                and self.ticks_during_event == 0
            )
        return (
            held and self.ticks_during_lock >= ITEMS // 2 and self.ticks_during_event >= ITEMS // 2
        )

    def figures(self) -> list[str]:
        lines = [
            f"another task ran {self.ticks_during_send} times during {ITEMS} `await send()` "
            f"with room in the buffer, {self.ticks_during_send_nowait} times during "
            f"{ITEMS} `send_nowait()`",
            f"another task ran {self.ticks_during_lock} times during {ITEMS} `async with` "
            f"an uncontended {self.backend}.Lock, {self.ticks_during_event} times during "
            f"{ITEMS} waits on a set {self.backend}.Event",
        ]
        if self.ticks_during_queue_put is not None:
            lines.append(
                f"another task ran {self.ticks_during_queue_put} times during {ITEMS} "
                "`await asyncio.Queue.put()` with room"
            )
        else:
            lines.append("asyncio.Queue: skipped, it belongs to asyncio and cannot run on trio")
        lines.append(
            f"producer -> consumer, {PIPELINE_ITEMS} items: await every send/receive "
            f"{self.rate_always_await / 1000:.0f}k items/s, nowait-first "
            f"{self.rate_nowait_first / 1000:.0f}k items/s ({self.speedup:.1f}x)"
            + (
                f", asyncio.Queue {self.rate_asyncio_queue / 1000:.0f}k items/s"
                if self.rate_asyncio_queue is not None
                else ""
            )
        )
        lines.append(
            f"{CHUNKS} pieces of work without a checkpoint: another task ran "
            f"{self.ticks_during_greedy} times in {self.greedy_ms:.0f} ms; with a checkpoint "
            f"after each: {self.ticks_during_cooperative} times"
        )
        return lines


# -- A task that counts how often it gets to run ----------------------------------------


class Ticker:
    """Another task on the loop: it counts its turns, one per checkpoint it gets."""

    def __init__(self) -> None:
        self.ticks = 0
        self.started = anyio.Event()

    async def run(self) -> None:
        self.started.set()
        while True:
            await anyio.lowlevel.checkpoint()
            self.ticks += 1


async def _turns_of_others(work: Callable[[], Awaitable[None]]) -> int:
    """How many turns a ticker task got while ``work`` ran."""
    ticker = Ticker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker.run)
        await ticker.started.wait()
        before = ticker.ticks
        await work()
        turns = ticker.ticks - before
        tg.cancel_scope.cancel()
    return turns


# -- 1. Which awaits yield? --------------------------------------------------------------


async def _send_all() -> None:
    send, receive = anyio.create_memory_object_stream[int](ITEMS)  # always room
    with send, receive:
        for i in range(ITEMS):
            await send.send(i)  # passes through the scheduler every time


async def _send_nowait_all() -> None:
    send, receive = anyio.create_memory_object_stream[int](ITEMS)
    with send, receive:
        for i in range(ITEMS):
            send.send_nowait(i)  # a plain call: never yields


async def _queue_put_all() -> None:
    import asyncio

    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=ITEMS)
    for i in range(ITEMS):
        await queue.put(i)  # looks like a checkpoint, is not one when there is room


async def _native_lock_all() -> None:
    lock = _native().Lock()
    for _ in range(ITEMS):
        async with lock:  # nobody else wants it
            pass


async def _native_event_all() -> None:
    event = _native().Event()
    event.set()
    for _ in range(ITEMS):
        await event.wait()  # already set: nothing to wait for


def _native() -> Any:
    """The running backend's own module (``asyncio`` or ``trio``), for its primitives."""
    return importlib.import_module(sniffio.current_async_library())


# -- 2. What the checkpoints cost --------------------------------------------------------


async def _pipeline_always_await() -> None:
    send, receive = anyio.create_memory_object_stream[int](100)

    async def consume() -> None:
        async with receive:
            async for _ in receive:
                pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        async with send:
            for i in range(PIPELINE_ITEMS):
                await send.send(i)


async def _pipeline_nowait_first() -> None:
    send, receive = anyio.create_memory_object_stream[int](100)

    async def consume() -> None:
        async with receive:
            while True:
                try:
                    receive.receive_nowait()  # take what is there without yielding
                except anyio.WouldBlock:
                    try:
                        await receive.receive()  # empty: now wait (and yield)
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        async with send:
            for i in range(PIPELINE_ITEMS):
                try:
                    send.send_nowait(i)  # room: no trip through the scheduler
                except anyio.WouldBlock:
                    await send.send(i)  # full: wait for room (and yield)


async def _pipeline_asyncio_queue() -> None:
    import asyncio

    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=100)

    async def consume() -> None:
        while await queue.get() is not None:
            pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(PIPELINE_ITEMS):
            await queue.put(i)
        await queue.put(None)


async def _rate(pipeline: Callable[[], Awaitable[None]]) -> float:
    """Items per second, best of three runs (the machine is shared, noise is high)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        await pipeline()
        best = min(best, time.perf_counter() - start)
    return PIPELINE_ITEMS / best


# -- 3. A task that never checkpoints ----------------------------------------------------


def _piece_of_work() -> int:
    return sum(range(5000))  # CPU work, no await anywhere


async def _greedy() -> None:
    for _ in range(CHUNKS):
        _piece_of_work()  # nobody else runs until this loop ends


async def _cooperative() -> None:
    for _ in range(CHUNKS):
        _piece_of_work()
        await anyio.lowlevel.checkpoint()  # let the others have a turn


async def demonstrate() -> CheckpointsOutcome:
    """Run the three parts on the current backend."""
    on_asyncio = sniffio.current_async_library() == "asyncio"
    start = time.perf_counter()
    greedy_ticks = await _turns_of_others(_greedy)
    greedy_ms = (time.perf_counter() - start) * 1000
    return CheckpointsOutcome(
        backend=sniffio.current_async_library(),
        ticks_during_send=await _turns_of_others(_send_all),
        ticks_during_send_nowait=await _turns_of_others(_send_nowait_all),
        ticks_during_queue_put=await _turns_of_others(_queue_put_all) if on_asyncio else None,
        ticks_during_lock=await _turns_of_others(_native_lock_all),
        ticks_during_event=await _turns_of_others(_native_event_all),
        rate_always_await=await _rate(_pipeline_always_await),
        rate_nowait_first=await _rate(_pipeline_nowait_first),
        rate_asyncio_queue=await _rate(_pipeline_asyncio_queue) if on_asyncio else None,
        ticks_during_greedy=greedy_ticks,
        ticks_during_cooperative=await _turns_of_others(_cooperative),
        greedy_ms=greedy_ms,
    )


LESSON = Lesson(
    name="checkpoints",
    title="Checkpoints and fairness: which awaits yield, what it costs, who starves",
    idea=(
        "Tasks take turns only at checkpoints, awaits that really go through the "
        "scheduler. anyio's send() always does; asyncio.Queue.put() does not when there is "
        "room; send_nowait() never does. Skipping checkpoints is fast (nowait-first) but a "
        "task that never reaches one starves every other task on the loop."
    ),
    demonstrate=demonstrate,
    differences=(
        "anyio streams behave alike on both. trio's own calls always checkpoint (counted "
        "above for trio.Lock and trio.Event); asyncio's Queue.put with room, uncontended "
        "Lock and set Event return without yielding, which is fast and unfair. "
        "asyncio.Queue exists only on asyncio, so that part is skipped on trio."
    ),
)
