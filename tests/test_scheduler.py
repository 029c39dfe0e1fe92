"""EventScheduler itself: constructor checks and limits, its one lifecycle, stopping it."""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    MAX_GRACE_PERIOD,
    MAX_QUEUE_SIZE,
    MAX_WORKERS,
    Event,
    EventScheduler,
    EventType,
    SchedulerState,
    SchedulerStateError,
)
from eventsched.testing import assert_accounted, capture_events

pytestmark = pytest.mark.anyio


async def _run_until_quit(scheduler: EventScheduler) -> list[str]:
    """Run ``scheduler`` under ``run()``, emit ``quit`` (its handler is to stop it) and
    wait for ``run()`` to return; the reasons its SHUTDOWN_REQUESTED events gave."""
    with (
        anyio.fail_after(10),
        capture_events(scheduler, EventType.SHUTDOWN_REQUESTED) as notices,
    ):
        async with anyio.create_task_group() as tg:
            await tg.start(functools.partial(scheduler.run, handle_signals=False, watchdog=False))
            assert scheduler.state is SchedulerState.RUNNING
            await scheduler.emit("quit")
    return [event.data["reason"] for event in notices]


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


def test_the_limits_are_the_constants_the_command_line_uses() -> None:
    """workers, queue_size and grace_period are refused past their one defined limit."""
    assert (MAX_WORKERS, MAX_QUEUE_SIZE, MAX_GRACE_PERIOD) == (1000, 10_000_000, 3600.0)
    EventScheduler(workers=MAX_WORKERS, queue_size=MAX_QUEUE_SIZE, grace_period=MAX_GRACE_PERIOD)
    with pytest.raises(ValueError, match=r"workers=1001 must be an integer <= 1000"):
        EventScheduler(workers=MAX_WORKERS + 1)
    with pytest.raises(ValueError, match=r"queue_size=10000001 must be an integer <= 10000000"):
        EventScheduler(queue_size=MAX_QUEUE_SIZE + 1)
    with pytest.raises(ValueError, match=r"grace_period=3601 must be at most 3600 seconds"):
        EventScheduler(grace_period=3601)


def test_the_state_is_the_one_lifecycle_state() -> None:
    """SchedulerState is kept as a name of the shared lifecycle State."""
    from eventsched._lifecycle import State

    assert SchedulerState is State
    assert EventScheduler().state is State.CREATED
