"""Sync handlers in batches (issue 18): order, timeouts, failures and shutdown per event.

A handler task hands the events waiting for a lone sync handler to a thread of its own
in one batch; each event must still get its own outcome, timeout and place in line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest

from eventsched import Event, EventScheduler, current_event
from eventsched._invoke import _current_slots
from eventsched._threadbatch import BATCH_MAX
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for bookkeeping a thread does after the user's code returned:
    there is no event to wait on, so look again until it is true."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (set by a thread, no event to await)
            await anyio.sleep(0.005)


async def test_a_batch_keeps_the_order_of_events_and_of_other_routes() -> None:
    """Sync and async handlers interleaved: one worker handles them in emission order,
    the sync ones on one thread, each seeing its own event as current_event()."""
    scheduler = EventScheduler(queue_size=1000)
    order: list[int] = []
    threads: set[int] = set()
    current_ok: list[bool] = []

    def sync_handler(event: Event) -> None:
        threads.add(threading.get_ident())
        current_ok.append(current_event() is event)
        order.append(event.data["i"])

    async def async_handler(event: Event) -> None:
        order.append(event.data["i"])

    scheduler.on("s", sync_handler)
    scheduler.on("a", async_handler)
    n = 3 * BATCH_MAX
    with anyio.fail_after(30):
        async with scheduler:
            # Emitted without yielding, so that the worker finds long runs waiting.
            for i in range(n):
                assert scheduler.emit_nowait("a" if i % 50 == 49 else "s", {"i": i})
    assert order == list(range(n))
    assert all(current_ok)
    assert len(current_ok) == n - n // 50
    assert len(threads) == 1
    stats = scheduler.statistics()
    assert stats.handled == n + 1  # and SHUTDOWN_REQUESTED
    assert_accounted(stats)


async def test_each_call_of_a_batch_has_its_own_timeout() -> None:
    """The fourth call of a batch hangs past its timeout: it alone times out (abandoned),
    the events after it run on a new thread, in order, and the slot comes back."""
    release = threading.Event()
    seen: list[int] = []
    threads: list[int] = []

    def handler(event: Event) -> None:
        i = event.data["i"]
        threads.append(threading.get_ident())
        if i == 3:
            release.wait(30)  # bounded, so that a failing test cannot leave it forever
        seen.append(i)

    scheduler = EventScheduler(queue_size=100)
    scheduler.on("s", handler, timeout=0.2)
    try:
        with anyio.fail_after(30):
            async with scheduler:
                for i in range(10):
                    assert scheduler.emit_nowait("s", {"i": i})
            stats = scheduler.statistics()
            assert seen == [0, 1, 2, 4, 5, 6, 7, 8, 9]
            assert len(set(threads[:4])) == 1
            assert len(set(threads[4:])) == 1
            assert threads[0] != threads[4]
            assert (stats.timed_out, stats.handler_timeouts) == (1, 1)
            assert stats.handled == 9 + 1
            assert (stats.abandoned_calls, stats.abandoned_in_flight) == (1, 1)
            assert_accounted(stats)
    finally:
        release.set()
    await _until(lambda: scheduler.statistics().abandoned_in_flight == 0, "call returned")
    await _until(lambda: _current_slots().limiter.borrowed_tokens == 0, "slot released")
    assert seen[-1] == 3  # it did finish, and nothing else of its batch ran after it


async def test_failures_in_a_batch_are_counted_and_logged_per_event() -> None:
    """Every other call raises: each failure is its own, and the batch goes on."""
    seen: list[int] = []

    def handler(event: Event) -> None:
        seen.append(event.data["i"])
        if event.data["i"] % 2:
            raise ValueError(f"odd {event.data['i']}")

    scheduler = EventScheduler(queue_size=200)
    scheduler.on("s", handler)
    with anyio.fail_after(30):
        async with scheduler:
            for i in range(100):
                assert scheduler.emit_nowait("s", {"i": i})
    stats = scheduler.statistics()
    assert seen == list(range(100))
    assert (stats.failed, stats.handler_errors) == (50, 50)
    assert stats.handled == 50 + 1
    assert_accounted(stats)


async def test_a_sync_handler_returning_an_awaitable_is_awaited_in_its_place() -> None:
    """A call that returns a coroutine ends its batch; it is awaited before the next event."""
    order: list[str] = []

    async def later(i: int) -> None:
        await anyio.lowlevel.checkpoint()
        order.append(f"awaited {i}")

    def handler(event: Event) -> object:
        i = event.data["i"]
        order.append(f"called {i}")
        return later(i) if i == 2 else None

    scheduler = EventScheduler()
    scheduler.on("s", handler)
    with anyio.fail_after(30):
        async with scheduler:
            for i in range(5):
                assert scheduler.emit_nowait("s", {"i": i})
    assert order == [
        "called 0",
        "called 1",
        "called 2",
        "awaited 2",
        "called 3",
        "called 4",
    ]
    assert scheduler.statistics().handled == 5 + 1
    assert_accounted(scheduler.statistics())


async def test_shutdown_with_a_batch_in_flight_aborts_it_and_runs_no_more_of_it() -> None:
    """Past the grace period the call in progress is abandoned and the batch's other
    events are counted aborted in flight: none of them runs, even once the call returns."""
    release = threading.Event()
    started = threading.Event()
    seen: list[int] = []

    def handler(event: Event) -> None:
        seen.append(event.data["i"])
        started.set()
        release.wait(30)

    scheduler = EventScheduler(queue_size=100, grace_period=0.2)
    scheduler.on("s", handler)
    try:
        with anyio.fail_after(30):
            async with scheduler:
                for i in range(10):
                    assert scheduler.emit_nowait("s", {"i": i})
                assert await anyio.to_thread.run_sync(started.wait, 10)
            stats = scheduler.statistics()
            assert stats.aborted_in_flight == 10
            assert (stats.abandoned_calls, stats.abandoned_in_flight) == (1, 1)
            assert stats.handled == 0
            assert_accounted(stats)
    finally:
        release.set()
    await _until(lambda: scheduler.statistics().abandoned_in_flight == 0, "call returned")
    await _until(lambda: _current_slots().limiter.borrowed_tokens == 0, "slot released")
    assert seen == [0]


async def test_batch_threads_are_one_per_handler_task() -> None:
    """Four handler tasks with sync handlers: four threads at most, however many events."""
    threads: set[int] = set()
    lock = threading.Lock()

    def handler(event: Event) -> None:
        with lock:
            threads.add(threading.get_ident())

    scheduler = EventScheduler(queue_size=1000, workers=4, overflow="block")
    scheduler.on("s", handler)
    with anyio.fail_after(30):
        async with scheduler:
            for i in range(2000):
                assert await scheduler.emit("s", {"i": i})
    assert 1 <= len(threads) <= 4
    assert scheduler.statistics().handled == 2000 + 1
    assert_accounted(scheduler.statistics())


async def test_a_batched_sync_handler_calls_back_into_the_loop_with_a_token() -> None:
    """The batch thread is not an anyio worker thread: anyio.from_thread needs the loop's
    token there, the same on both backends (docs/guide.md says so)."""
    loop_thread = threading.get_ident()
    token = anyio.lowlevel.current_token()
    ran_in: list[int] = []
    refused: list[bool] = []

    def in_loop() -> int:
        return threading.get_ident()

    def handler(event: Event) -> None:
        ran_in.append(anyio.from_thread.run_sync(in_loop, token=token))
        try:
            anyio.from_thread.run_sync(in_loop)
        except RuntimeError:  # NoEventLoopError on asyncio, trio's own on trio
            refused.append(True)

    scheduler = EventScheduler()
    scheduler.on("s", handler)
    with anyio.fail_after(30):
        async with scheduler:
            for i in range(3):
                assert scheduler.emit_nowait("s", {"i": i})
    assert ran_in == [loop_thread] * 3
    assert refused == [True] * 3
    assert scheduler.statistics().handled == 3 + 1


_mark: ContextVar[int | None] = ContextVar("mark", default=None)


async def test_each_call_of_a_batch_has_its_own_context() -> None:
    """What one call sets in a ContextVar, the next call of the batch does not see (as
    with a thread hop per call)."""
    seen: list[int | None] = []

    def handler(event: Event) -> None:
        seen.append(_mark.get())
        _mark.set(event.data["i"])

    scheduler = EventScheduler()
    scheduler.on("s", handler)
    with anyio.fail_after(30):
        async with scheduler:
            for i in range(5):
                assert scheduler.emit_nowait("s", {"i": i})
    assert seen == [None] * 5
