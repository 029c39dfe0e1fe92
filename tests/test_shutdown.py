"""Structured shutdown in-process: drain within the grace period, then cancel, all counted."""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    Event,
    EventScheduler,
    EventType,
    SchedulerState,
    SchedulerStateError,
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


async def _run_until_quit(scheduler: EventScheduler) -> list[str]:
    """Run ``scheduler`` under ``run()``, emit ``quit`` (its handler is to stop it) and
    wait for ``run()`` to return; the reasons its SHUTDOWN_REQUESTED events gave."""
    reasons: list[str] = []

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def on_shutdown(event: Event) -> None:
        reasons.append(event.data["reason"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(functools.partial(scheduler.run, handle_signals=False, watchdog=False))
            assert scheduler.state is SchedulerState.RUNNING
            await scheduler.emit("quit")
    return reasons


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_stop_from_a_handler_ends_run() -> None:
    """run() returns the final statistics after a handler calls stop()."""
    scheduler = EventScheduler()

    @scheduler.on("quit")
    async def quit_(event: Event) -> None:
        scheduler.stop(reason="asked to")

    reasons = await _run_until_quit(scheduler)
    stats = scheduler.statistics()
    assert reasons == ["asked to"]
    assert stats.handled == 2
    assert scheduler.state is SchedulerState.STOPPED
    assert_accounted(stats)


async def test_an_error_in_the_block_cancels_at_once_and_propagates() -> None:
    """If the body of ``async with`` raises, handlers are cancelled without grace; all counted."""
    scheduler = EventScheduler(grace_period=60)
    started = anyio.Event()

    async def hangs(event: Event) -> None:
        started.set()
        await anyio.sleep_forever()

    scheduler.on("hang", hangs)

    async def fail_inside() -> None:
        async with scheduler:
            await scheduler.emit("hang")
            scheduler.emit_nowait("queued")
            await started.wait()
            raise ZeroDivisionError("in the body")

    with anyio.fail_after(5), pytest.raises(ZeroDivisionError, match="in the body"):
        await fail_inside()
    stats = scheduler.statistics()
    assert stats.aborted_in_flight == 1
    assert stats.still_queued == 1
    assert_accounted(stats)


async def test_outer_cancellation_aborts_and_accounts() -> None:
    """Cancelled from outside (a timeout around the block), the scheduler still accounts."""
    scheduler = EventScheduler(grace_period=60)

    async def hangs(event: Event) -> None:
        await anyio.sleep_forever()

    scheduler.on("hang", hangs)
    with anyio.move_on_after(0.1) as scope:
        async with scheduler:
            await scheduler.emit("hang")
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    stats = scheduler.statistics()
    assert stats.aborted_in_flight == 1
    assert_accounted(stats)


async def test_state_moves_forward_and_a_scheduler_runs_once() -> None:
    """CREATED -> RUNNING -> STOPPED; entering a stopped scheduler again is refused."""
    scheduler = EventScheduler()
    states = [scheduler.state]
    with anyio.fail_after(5):
        async with scheduler:
            states.append(scheduler.state)
    states.append(scheduler.state)
    assert states == [SchedulerState.CREATED, SchedulerState.RUNNING, SchedulerState.STOPPED]
    with pytest.raises(SchedulerStateError, match="stopped; create a new one"):
        async with scheduler:
            pass


async def test_a_second_entry_while_the_first_is_starting_is_refused() -> None:
    """Two tasks entering one scheduler at once: one runs it, the other is refused."""
    scheduler = EventScheduler()
    outcomes: list[str] = []

    async def enter() -> None:
        try:
            async with scheduler:
                outcomes.append("ran")
        except SchedulerStateError as error:
            outcomes.append(str(error))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(enter)
            tg.start_soon(enter)
    assert sorted(outcomes) == [
        "ran",
        "this EventScheduler is starting; create a new one to run again",
    ]
    assert scheduler.state is SchedulerState.STOPPED
    assert_accounted(scheduler.statistics())


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_stop_before_start_is_honoured_once_running() -> None:
    """stop() that wins the race against run() shuts the scheduler down once it runs."""
    scheduler = EventScheduler()
    reasons: list[str] = []

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def on_shutdown(event: Event) -> None:
        reasons.append(event.data["reason"])

    scheduler.stop(reason="stopped early")
    scheduler.stop(reason="the first reason is kept")
    assert scheduler.state is SchedulerState.CREATED
    with anyio.fail_after(10):
        stats = await scheduler.run(handle_signals=False, watchdog=False)
    assert reasons == ["stopped early"]
    assert scheduler.state is SchedulerState.STOPPED
    assert_accounted(stats)


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


async def test_stop_from_a_sync_handler_or_another_thread_ends_run() -> None:
    """stop() is safe in any handler: a sync one runs in a worker thread.

    The stop is handed to the event loop (trio refuses to set its Event from another
    thread, and on asyncio that would not reliably wake the lifecycle task).
    """
    scheduler = EventScheduler()

    @scheduler.on("quit")
    def quit_(event: Event) -> None:  # sync: in a worker thread
        scheduler.stop(reason="from a thread")

    reasons = await _run_until_quit(scheduler)
    stats = scheduler.statistics()
    assert reasons == ["from a thread"]
    assert (stats.handled, stats.failed) == (2, 0)
    assert scheduler.state is SchedulerState.STOPPED
    # Once stopped, from a plain thread: nothing to do, and no error.
    await anyio.to_thread.run_sync(scheduler.stop)
    assert_accounted(stats)


async def test_bad_settings_are_refused_with_their_name() -> None:
    """Invalid constructor values raise ValueError naming the setting and what is allowed."""
    with pytest.raises(ValueError, match="overflow='sometimes' is not one of: drop_newest"):
        EventScheduler(overflow="sometimes")
    with pytest.raises(ValueError, match="queue_size=0 must be an integer >= 1"):
        EventScheduler(queue_size=0)
    with pytest.raises(ValueError, match="grace_period=-1 must be a finite number"):
        EventScheduler(grace_period=-1)
