"""Emitting from threads: sync handlers' worker threads and threads of the user's own."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from eventsched import Event, EventScheduler
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


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
