"""The bounded queue: each overflow policy, its counts, and the drop reports."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from loguru import logger

from conftest import VIRTUAL_TIME
from eventsched import (
    Event,
    EventScheduler,
    EventType,
    InvalidEventError,
    OverflowPolicy,
    QueueFullError,
)
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


async def test_drop_newest_counts_every_refused_event() -> None:
    """With the queue full, drop_newest refuses new events and counts each as queue_full."""
    scheduler = EventScheduler(queue_size=10)
    seen: list[int] = []
    scheduler.on("n", lambda e: seen.append(e.data["i"]))
    with anyio.fail_after(5):
        async with scheduler:
            # No checkpoint between these: the handler task cannot run yet.
            results = [scheduler.emit_nowait("n", {"i": i}) for i in range(25)]
    assert results == [True] * 10 + [False] * 15
    stats = scheduler.statistics()
    assert dict(stats.dropped) == {"queue_full": 15}
    assert sorted(seen) == list(range(10))
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


async def test_bad_data_is_refused_and_counted() -> None:
    """Invalid data raises InvalidEventError at emit or create, and is counted once as rejected."""
    scheduler = EventScheduler(max_event_bytes=100)
    with anyio.fail_after(5):
        async with scheduler:
            with pytest.raises(InvalidEventError):
                await scheduler.emit("n", {"x": object()})  # type: ignore[dict-item]
            with pytest.raises(InvalidEventError, match="limit of 100 bytes"):
                scheduler.emit_nowait("n", {"x": "y" * 200})
            with pytest.raises(InvalidEventError):
                Event.create("n", [1])  # type: ignore[arg-type]
            big = Event.create("n", {"x": "y" * 200})  # fine by the default limit...
            with pytest.raises(InvalidEventError, match="max_event_bytes"):
                await scheduler.emit(big)  # ...but not by this scheduler's
            assert await scheduler.emit("n", {"ok": True})
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"invalid": 4}
    assert stats.handled == 2  # the good one and SHUTDOWN_REQUESTED
    assert_accounted(stats)


async def test_ready_made_events_are_checked_by_their_exact_size_and_validated() -> None:
    """A ready-made event passes when its exact size fits, whatever its upper bound said;
    one built with the constructor or _replace is validated and copied like new data."""
    scheduler = EventScheduler(max_event_bytes=1000)
    received: list[Event] = []
    scheduler.on("n", received.append)
    fits = Event.create("n", {"s": "a" * 500})  # 508 bytes; its upper bound is ~3000
    raw_data: dict[str, object] = {"b": [1]}
    raw = Event("n", raw_data, "raw-1", "raw-1")  # type: ignore[arg-type]
    with anyio.fail_after(5):
        async with scheduler:
            assert await scheduler.emit(fits)
            assert scheduler.emit_nowait(fits)
            assert await scheduler.emit(raw)
            raw_data["b"].append(2)  # type: ignore[attr-defined]
            with pytest.raises(InvalidEventError, match="1008 bytes of data as JSON"):
                await scheduler.emit(Event.create("n", {"s": "a" * 1000}))
            with pytest.raises(InvalidEventError, match="JSON cannot represent"):
                scheduler.emit_nowait(fits._replace(data={"x": float("nan")}))
            with pytest.raises(InvalidEventError, match="event type"):
                await scheduler.emit(fits._replace(type=["n"]))
    assert received[2].data == {"b": (1,)}
    assert received[2].id == "raw-1"
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"invalid": 3}
    assert_accounted(stats)


async def test_emits_after_shutdown_began_are_refused_and_counted() -> None:
    """Once intake closes, emits return False and count as rejected: shutting_down."""
    scheduler = EventScheduler()
    late: list[bool] = []

    async def on_shutdown(event: Event) -> None:
        late.append(await scheduler.emit("follow_up"))

    scheduler.on(EventType.SHUTDOWN_REQUESTED, on_shutdown)
    with anyio.fail_after(5):
        async with scheduler:
            pass
    assert not scheduler.emit_nowait("after")
    assert not await scheduler.emit("after")
    assert late == [False]
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"shutting_down": 3}
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


async def test_emit_from_a_sync_handler_thread_keeps_the_correlation() -> None:
    """A sync handler (worker thread) can emit; the event is routed to the loop and correlated."""
    scheduler = EventScheduler()
    threads: list[bool] = []
    children: list[Event] = []

    def sync_handler(event: Event) -> None:
        threads.append(threading.current_thread() is not threading.main_thread())
        assert scheduler.emit_nowait("child", {"n": 1})

    got_child = anyio.Event()

    async def on_child(event: Event) -> None:
        children.append(event)
        got_child.set()

    scheduler.on("parent", sync_handler)
    scheduler.on("child", on_child)
    with anyio.fail_after(5):
        async with scheduler:
            parent = Event.create("parent", correlation_id="trace-7")
            await scheduler.emit(parent)
            await got_child.wait()
    assert threads == [True]
    assert children[0].correlation_id == "trace-7"
    assert children[0].causation_id == parent.id
    assert_accounted(scheduler.statistics())


async def test_emit_from_a_foreign_thread_is_routed_to_the_loop() -> None:
    """A thread that anyio did not start can emit too; under block it waits for room."""
    scheduler = EventScheduler(queue_size=1, overflow="block")
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.data["i"])

    scheduler.on("n", slow)

    def produce() -> None:
        for i in range(50):
            assert scheduler.emit_nowait("n", {"i": i})

    with anyio.fail_after(10):
        async with scheduler:
            thread = threading.Thread(target=produce)
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
    assert sorted(seen) == list(range(50))
    assert scheduler.statistics().dropped_total == 0
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


async def test_a_blocked_emit_from_a_timed_out_sync_handler_is_the_same_on_both_backends() -> None:
    """Under block, a sync handler's emit outlives the handler's timeout and gets in.

    On asyncio a call from a worker thread runs inside the cancel scopes of the task
    waiting for that thread: without a shield the handler's timeout raised
    CancelledError in the thread, although the event was placed a moment later.
    """
    scheduler = EventScheduler(queue_size=1, overflow="block", workers=1)
    results: list[bool] = []
    finished = threading.Event()

    def fans_out(event: Event) -> None:  # sync: in a worker thread
        try:
            results.append(scheduler.emit_nowait("child"))  # room: in at once
            results.append(scheduler.emit_nowait("child"))  # full: waits past the timeout
        finally:
            finished.set()

    scheduler.on("fan", fans_out, timeout=0.2)
    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("fan")
            # The handler task moves on after 0.2 s and takes the first child, which
            # makes room for the second. Real time: the thread is real.
            assert await anyio.to_thread.run_sync(finished.wait, 5)
    stats = scheduler.statistics()
    assert results == [True, True]
    assert stats.timed_out == 1
    assert stats.handled == 3  # both children and SHUTDOWN_REQUESTED
    assert_accounted(stats)


async def test_a_ready_made_event_of_a_bad_type_is_refused_at_emit() -> None:
    """An event whose type _replace made unusable is refused and counted, not routed."""
    scheduler = EventScheduler()
    bad = Event.create("n")._replace(type=["not", "hashable"])
    with anyio.fail_after(5):
        async with scheduler:
            with pytest.raises(InvalidEventError, match="event type must be a str"):
                await scheduler.emit(bad)
            with pytest.raises(InvalidEventError, match="event type must be a str"):
                scheduler.emit_nowait(bad)
            assert await scheduler.emit("n")
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"invalid": 2}
    assert stats.handled == 2
    assert_accounted(stats)


async def test_a_refusal_is_counted_by_the_scheduler_emitted_to() -> None:
    """With two schedulers running, a bad emit counts where it was made, not in the other.

    Event.create itself, which has no scheduler, still counts in the innermost one.
    """
    outer, inner = EventScheduler(), EventScheduler()
    with anyio.fail_after(5):
        async with outer, inner:
            with pytest.raises(InvalidEventError):
                await outer.emit("n", {"bad": object()})
            with pytest.raises(InvalidEventError):
                outer.emit_nowait("n", {"bad": object()})
            with pytest.raises(InvalidEventError):
                Event.create("n", {"bad": object()})
    assert dict(outer.statistics().rejected) == {"invalid": 2}
    assert dict(inner.statistics().rejected) == {"invalid": 1}
    assert_accounted(outer.statistics())
    assert_accounted(inner.statistics())


async def test_emits_before_start_are_refused_as_not_running() -> None:
    """Before start: refused with a reason of their own, and the shutdown's log line kept."""
    records: list[str] = []
    sink = logger.add(lambda message: records.append(str(message)), format="{message}")
    logger.enable("eventsched")
    try:
        scheduler = EventScheduler()
        assert scheduler.emit_nowait("early") is False
        assert await scheduler.emit("early") is False
        with anyio.fail_after(5):
            async with scheduler:
                pass
        assert scheduler.emit_nowait("late") is False
    finally:
        logger.remove(sink)
        logger.disable("eventsched")
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"not_running": 2, "shutting_down": 1}
    assert sum("not running yet" in line for line in records) == 1
    assert sum("Intake is closed" in line for line in records) == 1
    assert_accounted(stats)
