"""Calling user code: sync calls that hang past their timeout stay bounded (issue 15, item 7).

A sync call cannot be interrupted, only abandoned. Abandoned calls keep their thread
slot until they really return; past MAX_ABANDONED_PER_CALLABLE of one callable still
running, its next calls are refused at once, so threads stay bounded and the
callables that do return keep running.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest

from eventsched import CallRefusedError, EventScheduler, abandoned_calls
from eventsched._invoke import (
    MAX_ABANDONED_PER_CALLABLE,
    MAX_USER_THREADS,
    CallTally,
    _current_slots,
    call_user,
    running_threads,
)
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for bookkeeping that a worker thread does after the user's code
    returned: there is no event to wait on, so look again until it is true."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (set by a worker thread, no event to await)
            await anyio.sleep(0.005)
    assert condition(), what


async def test_a_hung_sync_handler_holds_few_threads_and_healthy_ones_keep_running() -> None:
    """200 events to a handler that never returns (timeout 0.02 s): threads stay bounded,
    a healthy sync handler handles every one of its events, the counts add up."""
    release = threading.Event()
    peak_threads = 0
    healthy_seen: list[int] = []

    def hang(event: object) -> None:
        release.wait(60)  # bounded, so that a failing test cannot leave it forever

    def healthy(event: object) -> None:
        nonlocal peak_threads
        peak_threads = max(peak_threads, threading.active_count())
        healthy_seen.append(event.data["i"])  # type: ignore[attr-defined]

    before = threading.active_count()
    scheduler = EventScheduler(queue_size=1000)
    scheduler.on("hang", hang, timeout=0.02)
    scheduler.on("ok", healthy)
    try:
        with anyio.fail_after(30):
            async with scheduler:
                for i in range(200):
                    assert await scheduler.emit("hang", {"i": i})
                    assert await scheduler.emit("ok", {"i": i})
            stats = scheduler.statistics()
            # The healthy handler ran all along, on a thread of its own, while the hung
            # calls held at most MAX_ABANDONED_PER_CALLABLE more (plus a spare in the pool).
            assert healthy_seen == list(range(200))
            assert peak_threads - before <= MAX_ABANDONED_PER_CALLABLE + 2
            # Every call that started hangs, so exactly MAX_ABANDONED_PER_CALLABLE were
            # abandoned; a call whose timeout passed before its thread took it up (a
            # loaded machine) timed out too, but never ran, so it is not abandoned.
            assert stats.abandoned_calls == MAX_ABANDONED_PER_CALLABLE
            assert stats.abandoned_in_flight == MAX_ABANDONED_PER_CALLABLE
            assert stats.handler_timeouts >= MAX_ABANDONED_PER_CALLABLE
            assert stats.refused_calls + stats.handler_timeouts == 200
            assert stats.handler_errors == stats.refused_calls
            assert stats.failed == stats.refused_calls
            assert stats.timed_out == stats.handler_timeouts
            assert stats.handled == 200 + 1  # the healthy events and SHUTDOWN_REQUESTED
            assert_accounted(stats)
            assert abandoned_calls().in_flight >= MAX_ABANDONED_PER_CALLABLE
    finally:
        release.set()
    # Once the hung calls return, their slots and their place under the cap come back:
    # the same handler runs again.
    await _until(lambda: scheduler.statistics().abandoned_in_flight == 0, "calls returned")
    await _until(lambda: _current_slots().limiter.borrowed_tokens == 0, "slots released")
    again = EventScheduler()
    again.on("hang", hang, timeout=5)
    with anyio.fail_after(30):
        async with again:
            for i in range(10):
                assert await again.emit("hang", {"i": i})
    assert again.statistics().refused_calls == 0
    assert again.statistics().handler_errors == 0


async def test_refused_calls_start_no_thread_and_keys_unwrap_partials() -> None:
    """Job calls come as partials of the job's function: the cap applies to that function."""
    release = threading.Event()
    entered = threading.Semaphore(0)
    tally = CallTally()

    def stuck(tag: int) -> None:
        entered.release()
        release.wait(60)

    try:
        for tag in range(MAX_ABANDONED_PER_CALLABLE):
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        functools.partial(
                            call_user, functools.partial(stuck, tag), in_thread=True, tally=tally
                        )
                    )
                    # Cancelled once it runs in its thread, so that it is abandoned.
                    assert await anyio.to_thread.run_sync(entered.acquire, True, 10)
                    tg.cancel_scope.cancel()
        running = running_threads()
        for tag in range(20):
            with pytest.raises(CallRefusedError, match="stuck not called"):
                await call_user(functools.partial(stuck, tag), in_thread=True, tally=tally)
        assert running_threads() == running  # refused without a thread
        snapshot = tally.snapshot()
        assert (snapshot.total, snapshot.in_flight, snapshot.refused) == (
            MAX_ABANDONED_PER_CALLABLE,
            MAX_ABANDONED_PER_CALLABLE,
            20,
        )
    finally:
        release.set()
    await _until(lambda: tally.snapshot().in_flight == 0, "calls returned")
    await call_user(functools.partial(stuck, 0), in_thread=True, tally=tally)  # runs again


async def test_sync_calls_share_a_bounded_number_of_threads() -> None:
    """Past MAX_USER_THREADS calls at once, the next waits for a slot (no new thread)."""
    release = threading.Event()
    inside = 0
    most = 0
    lock = threading.Lock()

    def busy() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        release.wait(60)
        with lock:
            inside -= 1

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(MAX_USER_THREADS + 10):
                tg.start_soon(functools.partial(call_user, busy, in_thread=True))
            await _until(lambda: inside == MAX_USER_THREADS, "every slot taken")
            assert _current_slots().limiter.statistics().tasks_waiting == 10
            release.set()
    assert most == MAX_USER_THREADS
