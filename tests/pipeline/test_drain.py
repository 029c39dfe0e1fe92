"""Structured shutdown in-process: drain within the grace period, then cancel, all counted."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    Event,
    EventScheduler,
    SchedulerState,
)
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_graceful_shutdown_delivers_every_buffered_event() -> None:
    """Events buffered when shutdown starts all reach their handler before the grace ends."""
    scheduler = EventScheduler(queue_size=500, grace_period=5)
    seen: list[int] = []

    async def slowish(event: Event) -> None:
        await anyio.sleep(0.001)
        seen.append(event.data["i"])

    scheduler.on("n", slowish)
    with anyio.fail_after(10):
        async with scheduler:
            for i in range(300):
                scheduler.emit_nowait("n", {"i": i})
            started = anyio.current_time()
        elapsed = anyio.current_time() - started
    assert seen == list(range(300))
    assert elapsed < 5
    stats = scheduler.statistics()
    assert stats.aborted_in_flight == 0
    assert stats.still_queued == 0
    assert_accounted(stats)


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_a_hung_handler_is_cancelled_when_the_grace_period_ends() -> None:
    """A handler awaiting forever is cancelled at the end of the grace period and counted."""
    grace = 0.3
    scheduler = EventScheduler(grace_period=grace)
    cleaned_up: list[bool] = []

    async def hangs(event: Event) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned_up.append(True)

    scheduler.on("hang", hangs)
    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("hang")
            for i in range(5):
                scheduler.emit_nowait("queued", {"i": i})
            await anyio.wait_all_tasks_blocked()
            started = anyio.current_time()
        elapsed = anyio.current_time() - started
    stats = scheduler.statistics()
    assert grace <= elapsed < grace + 1.0
    assert cleaned_up == [True]
    assert stats.aborted_in_flight == 1
    # Never handled: the five queued events and SHUTDOWN_REQUESTED stay counted in the queue.
    assert stats.still_queued == 6
    assert stats.in_flight == 0
    assert_accounted(stats)
    assert scheduler.state is SchedulerState.STOPPED


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_handlers_waiting_for_room_under_block_do_not_hold_shutdown() -> None:
    """Under block, a handler stuck emitting into a full queue is released when shutdown begins.

    The one handler task is inside a handler that waits for room that only that task
    could make. Shutdown refuses the waiting emit (shutting_down), the handler
    finishes, and the queue drains well within the grace period: nothing is aborted.
    """
    grace = 5
    scheduler = EventScheduler(queue_size=2, overflow="block", workers=1, grace_period=grace)
    fan_out_results: list[bool] = []
    children: list[int] = []

    @scheduler.on("fan")
    async def fan(event: Event) -> None:
        for i in range(3):
            fan_out_results.append(await scheduler.emit("child", {"i": i}))

    @scheduler.on("child")
    async def child(event: Event) -> None:
        children.append(event.data["i"])

    with anyio.fail_after(grace + 5):
        async with scheduler:
            assert await scheduler.emit("fan")
            await anyio.wait_all_tasks_blocked()
            assert fan_out_results == [True, True]  # the third waits, and would forever
            started = anyio.current_time()
        elapsed = anyio.current_time() - started
    stats = scheduler.statistics()
    assert fan_out_results == [True, True, False]
    assert children == [0, 1]
    assert elapsed < grace
    assert dict(stats.rejected) == {"shutting_down": 1}
    assert (stats.aborted_in_flight, stats.still_queued) == (0, 0)
    assert stats.handled == 4  # fan, two children, SHUTDOWN_REQUESTED
    assert_accounted(stats)
