"""The bounded queue: each overflow policy, its counts, and the drop reports."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    Event,
    EventScheduler,
    EventType,
    InvalidEventError,
    OverflowPolicy,
    QueueFullError,
)
from eventsched.testing import assert_accounted, capture_events

pytestmark = pytest.mark.anyio


async def test_drop_newest_counts_every_refused_event() -> None:
    """With the queue full, drop_newest refuses new events and counts each as queue_full."""
    scheduler = EventScheduler(queue_size=10)
    with anyio.fail_after(5), capture_events(scheduler, "n") as seen:
        async with scheduler:
            # No checkpoint between these: the handler task cannot run yet.
            results = [scheduler.emit_nowait("n", {"i": i}) for i in range(25)]
    assert results == [True] * 10 + [False] * 15
    stats = scheduler.statistics()
    assert dict(stats.dropped) == {"queue_full": 15}
    assert [event.data["i"] for event in seen] == list(range(10))
    assert stats.queue_high_water == 10
    assert_accounted(stats)


async def test_drop_oldest_keeps_exactly_the_newest() -> None:
    """drop_oldest evicts the oldest buffered events: the newest queue_size ones are handled."""
    scheduler = EventScheduler(queue_size=8, overflow="drop_oldest")
    seen: list[int] = []

    async def record(event: Event) -> None:
        seen.append(event.data["i"])

    scheduler.on("n", record)
    with anyio.fail_after(5):
        async with scheduler:
            assert all(scheduler.emit_nowait("n", {"i": i}) for i in range(30))
    stats = scheduler.statistics()
    assert seen == list(range(22, 30))
    assert dict(stats.dropped) == {"evicted": 22}
    assert stats.accepted == 8 + 1 + 1  # the survivors, the drop report, SHUTDOWN_REQUESTED
    assert_accounted(stats)


async def test_block_loses_nothing() -> None:
    """Under block, a producer far faster than the handler waits instead of losing events."""
    scheduler = EventScheduler(queue_size=4, overflow=OverflowPolicy.BLOCK, workers=2)
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.data["i"])

    scheduler.on("n", slow)
    with anyio.fail_after(10):
        async with scheduler:
            for i in range(500):
                assert await scheduler.emit("n", {"i": i})
    stats = scheduler.statistics()
    assert sorted(seen) == list(range(500))
    assert stats.dropped_total == 0
    assert stats.queue_high_water == 4
    assert_accounted(stats)


async def test_block_serves_waiting_emitters_in_order() -> None:
    """Emitters blocked on a full queue get in first come, first served."""
    scheduler = EventScheduler(queue_size=1, overflow="block")
    gate = anyio.Event()
    seen: list[int] = []

    async def gated(event: Event) -> None:
        await gate.wait()
        seen.append(event.data["i"])

    scheduler.on("n", gated)
    with anyio.fail_after(5):
        async with scheduler, anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(scheduler.emit, "n", {"i": i})
                await anyio.wait_all_tasks_blocked()
            gate.set()
    assert seen == list(range(6))
    assert_accounted(scheduler.statistics())


def held_until(scheduler: EventScheduler) -> anyio.Event:
    """Subscribe a handler of "n" that waits for the returned gate."""
    gate = anyio.Event()

    async def gated(event: Event) -> None:
        await gate.wait()

    scheduler.on("n", gated)
    return gate


async def fill_behind_the_held_handler(scheduler: EventScheduler) -> None:
    """With one handler task and a queue of one: the handler holds one "n", one more fills
    the queue, so the next emit finds no room."""
    assert await scheduler.emit("n")  # taken by the handler, which then waits
    await anyio.wait_all_tasks_blocked()
    assert await scheduler.emit("n")  # fills the queue


async def test_block_timeout_counts_a_drop() -> None:
    """Under block with a timeout, an emitter that never finds room gives up and counts a drop."""
    scheduler = EventScheduler(queue_size=1, overflow="block", block_timeout=0.05)
    gate = held_until(scheduler)
    with anyio.fail_after(5):
        async with scheduler:
            await fill_behind_the_held_handler(scheduler)
            assert not await scheduler.emit("n")  # waits 0.05 s, then gives up
            gate.set()
    stats = scheduler.statistics()
    assert dict(stats.dropped) == {"block_timeout": 1}
    assert stats.handled == 4  # two events, the drop report, SHUTDOWN_REQUESTED
    assert_accounted(stats)


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_an_emitter_cancelled_while_waiting_for_room_counts_a_drop() -> None:
    """Under block, an emitter that gives up (its own timeout) counts a drop, reason cancelled.

    Not a refusal for shutting down: the scheduler was running and accepting all along.
    """
    scheduler = EventScheduler(queue_size=1, overflow="block")
    gate = held_until(scheduler)
    with anyio.fail_after(5):
        async with scheduler:
            await fill_behind_the_held_handler(scheduler)
            with anyio.move_on_after(0.05) as scope:
                await scheduler.emit("n")  # waits for room until its caller gives up
            assert scope.cancelled_caught
            stats = scheduler.statistics()
            assert dict(stats.dropped) == {"cancelled": 1}
            assert dict(stats.rejected) == {}
            assert_accounted(stats)
            gate.set()
    assert_accounted(scheduler.statistics())


async def test_emit_nowait_under_block_on_the_loop_drops() -> None:
    """Sync code on the loop cannot wait: under block, emit_nowait on a full queue is a drop."""
    scheduler = EventScheduler(queue_size=2, overflow="block")
    with anyio.fail_after(5):
        async with scheduler:
            assert [scheduler.emit_nowait("n") for _ in range(3)] == [True, True, False]
    assert dict(scheduler.statistics().dropped) == {"queue_full": 1}
    assert_accounted(scheduler.statistics())


async def test_reject_raises_the_named_error() -> None:
    """Under reject, a full queue raises QueueFullError naming the event; it counts as rejected."""
    scheduler = EventScheduler(queue_size=2, overflow="reject")
    with anyio.fail_after(5):
        async with scheduler:
            scheduler.emit_nowait("n")
            await scheduler.emit("n")
            with pytest.raises(QueueFullError, match=r"full \(2 events\).*'reject'"):
                await scheduler.emit("n")
            with pytest.raises(QueueFullError):
                scheduler.emit_nowait("n")
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"queue_full": 2}
    assert stats.dropped_total == 0
    assert_accounted(stats)


async def test_drop_report_arrives_even_when_the_queue_stays_full() -> None:
    """EVENTS_DROPPED carries the count and reasons, and is itself never dropped."""
    scheduler = EventScheduler(queue_size=5, drop_report_interval=60)
    reports: list[Event] = []
    scheduler.on(EventType.EVENTS_DROPPED, reports.append)
    with anyio.fail_after(5):
        async with scheduler:
            for _ in range(20):
                scheduler.emit_nowait("n")
            # Let the reporter run while the queue is still full: it must wait, not drop.
            await anyio.wait_all_tasks_blocked()
            for _ in range(5):
                scheduler.emit_nowait("n")  # also full: counted, reported at shutdown
    stats = scheduler.statistics()
    assert len(reports) == 1  # one per interval; the rest are in the summary
    assert reports[0].data["count"] == 15
    assert reports[0].data["by_reason"] == {"queue_full": 15}
    assert stats.dropped_total == 15 + stats.dropped_total - 15
    assert_accounted(stats)


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_drop_reports_are_rate_limited() -> None:
    """Drops within one interval are gathered into one report; later ones into the next."""
    scheduler = EventScheduler(queue_size=2, drop_report_interval=1.0)
    reports: list[int] = []
    second = anyio.Event()

    # Async on purpose: under a MockClock a thread's work takes no virtual time, so
    # the clock may jump past a sync handler still running in its worker thread.
    async def on_report(event: Event) -> None:
        reports.append(event.data["count"])
        if len(reports) == 2:
            second.set()

    scheduler.on(EventType.EVENTS_DROPPED, on_report)
    with anyio.fail_after(10):
        async with scheduler:
            for _burst in range(3):
                for _ in range(10):
                    scheduler.emit_nowait("n")
                # Each burst is handled well within the interval (1 s).
                await anyio.wait_all_tasks_blocked()
            await second.wait()
    assert reports == [8, 16]  # the first burst at once, the next two gathered
    assert_accounted(scheduler.statistics())


async def test_accounting_adds_up_while_an_emitter_waits_for_room() -> None:
    """An emit blocked on a full queue is in no figure until it has an outcome."""
    scheduler = EventScheduler(queue_size=1, overflow="block")
    gate = held_until(scheduler)
    with anyio.fail_after(5):
        async with scheduler, anyio.create_task_group() as tg:
            await scheduler.emit("n")  # the handler takes it and waits
            await anyio.wait_all_tasks_blocked()
            await scheduler.emit("n")  # fills the queue
            tg.start_soon(scheduler.emit, "n")  # waits for room
            await anyio.wait_all_tasks_blocked()
            waiting = scheduler.statistics()
            assert waiting.emitted == 2
            assert_accounted(waiting)
            gate.set()
    assert scheduler.statistics().handled == 4  # three events and SHUTDOWN_REQUESTED
    assert_accounted(scheduler.statistics())


async def test_a_producer_that_catches_queue_full_still_lets_handlers_run() -> None:
    """Refused emits count toward the checkpoint batch too.

    A producer that catches QueueFullError (or InvalidEventError) and goes on would
    otherwise never yield: the handlers would never run and the loop would be held.
    """
    scheduler = EventScheduler(queue_size=2, overflow="reject")
    handled: list[int] = []

    async def handler(event: Event) -> None:
        handled.append(event.data["i"])

    scheduler.on("n", handler)
    with anyio.fail_after(10):
        async with scheduler:
            refused = invalid = 0
            # Bounded by a count, not a clock: without the fix nothing ever yields, so
            # no timeout could fire.
            for i in range(20_000):
                if len(handled) >= 10:
                    break
                try:
                    await scheduler.emit("n", {"i": i})
                except QueueFullError:
                    refused += 1
                try:
                    await scheduler.emit("n", {"bad": object()})
                except InvalidEventError:
                    invalid += 1
    assert len(handled) >= 10
    assert refused > 0
    stats = scheduler.statistics()
    assert stats.rejected["queue_full"] == refused
    assert stats.rejected["invalid"] == invalid
    assert_accounted(stats)
