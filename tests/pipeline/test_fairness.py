"""Fairness: neither a busy handler task nor a busy emitter can starve other tasks."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from eventsched import CHECKPOINT_EVERY, Event, EventScheduler, InvalidEventError

pytestmark = pytest.mark.anyio

BATCHES = 10
# Each checkpoint lets every other ready task run once before this one runs again on
# asyncio (FIFO ready queue). trio runs ready tasks in batches in random order, so two
# runs of CHECKPOINT_EVERY can meet across a batch boundary with no probe between them.
WORST_CASE_RUN = 2 * CHECKPOINT_EVERY


async def test_a_worker_yields_at_least_every_checkpoint_every_events() -> None:
    """Handlers that never yield still let another task run once per CHECKPOINT_EVERY events."""
    scheduler = EventScheduler(queue_size=BATCHES * CHECKPOINT_EVERY)
    turns_seen: list[int] = []
    turns = 0
    all_handled = anyio.Event()

    async def never_yields(event: Event) -> None:
        turns_seen.append(turns)
        if len(turns_seen) == BATCHES * CHECKPOINT_EVERY:
            all_handled.set()

    scheduler.on("n", never_yields)
    with anyio.fail_after(10):
        async with scheduler, anyio.create_task_group() as tg:

            async def probe() -> None:
                nonlocal turns
                while True:
                    turns += 1
                    await anyio.lowlevel.checkpoint()

            tg.start_soon(probe)
            for _ in range(BATCHES * CHECKPOINT_EVERY):
                assert scheduler.emit_nowait("n")
            await all_handled.wait()
            tg.cancel_scope.cancel()
    longest_run = max(sum(1 for _ in group) for _, group in itertools.groupby(turns_seen))
    assert len(turns_seen) == BATCHES * CHECKPOINT_EVERY
    assert longest_run <= WORST_CASE_RUN


async def emitting_loop(scheduler: EventScheduler, emit: Callable[[], Awaitable[None]]) -> None:
    """Await ``emit()`` in a tight loop beside a probe task that counts its turns: the
    loop lets the probe run at least once per WORST_CASE_RUN emits."""
    turns = 0
    seen_by_emit: list[int] = []

    async def probe() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with scheduler, anyio.create_task_group() as tg:
            tg.start_soon(probe)
            for _ in range(BATCHES * CHECKPOINT_EVERY):
                seen_by_emit.append(turns)
                await emit()
            tg.cancel_scope.cancel()
    runs = [sum(1 for _ in group) for _, group in itertools.groupby(seen_by_emit)]
    assert max(runs) <= WORST_CASE_RUN
    assert len(runs) >= BATCHES * CHECKPOINT_EVERY // WORST_CASE_RUN


async def test_an_emitting_loop_yields_every_checkpoint_every_emits() -> None:
    """A producer awaiting emit() in a tight loop yields once per CHECKPOINT_EVERY emits."""
    scheduler = EventScheduler(queue_size=BATCHES * CHECKPOINT_EVERY + 1)

    async def emit() -> None:
        await scheduler.emit("n")

    await emitting_loop(scheduler, emit)


async def test_a_loop_of_refused_emits_yields_every_checkpoint_every_emits() -> None:
    """A producer that catches each refusal and goes on still yields once per
    CHECKPOINT_EVERY emits: refused emits count toward the yield as accepted ones do."""
    scheduler = EventScheduler()

    async def emit() -> None:
        with pytest.raises(InvalidEventError):
            await scheduler.emit("n", {"not json": object()})

    await emitting_loop(scheduler, emit)
    assert scheduler.statistics().rejected == {"invalid": BATCHES * CHECKPOINT_EVERY}
