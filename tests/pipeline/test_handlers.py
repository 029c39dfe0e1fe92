"""Handlers: subscription forms, sync and async, isolation of failures, timeouts, lineage."""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import anyio
import anyio.to_thread
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    ALL_EVENTS,
    Event,
    EventScheduler,
    EventType,
    SchedulerState,
    Statistics,
    current_event,
)
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


async def test_subscribe_by_type_to_all_and_without_decorator() -> None:
    """Handlers get their type's events; "*" gets every event; both forms subscribe."""
    scheduler = EventScheduler()
    by_type: list[str] = []
    everything: list[str] = []

    @scheduler.on(EventType.JOB_FAILED)
    async def on_failed(event: Event) -> None:
        by_type.append(event.data["job_id"])

    async def on_any(event: Event) -> None:
        everything.append(str(event.type))

    assert scheduler.on(ALL_EVENTS, on_any) is on_any
    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit(EventType.JOB_FAILED, {"job_id": "a"})
            await scheduler.emit("job_failed", {"job_id": "b"})  # a StrEnum equals its value
            await scheduler.emit("other")
    assert by_type == ["a", "b"]
    assert everything == ["job_failed", "job_failed", "other", "shutdown_requested"]


async def test_off_unsubscribes() -> None:
    """After off(), a handler receives nothing more."""
    scheduler = EventScheduler()
    seen: list[int] = []

    async def handler(event: Event) -> None:
        seen.append(event.data["i"])
        if event.data["i"] == 0:
            assert scheduler.off("n", handler)

    scheduler.on("n", handler)
    with anyio.fail_after(5):
        async with scheduler:
            for i in range(3):
                await scheduler.emit("n", {"i": i})
    assert seen == [0]
    assert not scheduler.off("n", handler)


async def test_sync_handlers_run_in_a_worker_thread() -> None:
    """A plain function handler runs off the event loop thread, with the event in context."""
    scheduler = EventScheduler()
    calls: list[tuple[bool, str | None]] = []
    loop_thread = threading.get_ident()

    def sync_handler(event: Event) -> None:
        current = current_event()
        calls.append((threading.get_ident() != loop_thread, current and current.id))

    scheduler.on("n", sync_handler)
    with anyio.fail_after(5):
        async with scheduler:
            event = Event.create("n")
            await scheduler.emit(event)
    assert calls == [(True, event.id)]


async def test_partials_and_callable_objects_of_async_functions_are_async() -> None:
    """functools.partial of a coroutine function and objects with async __call__ are awaited."""
    scheduler = EventScheduler()
    seen: list[str] = []

    async def tagged(tag: str, event: Event) -> None:
        seen.append(tag)

    class Handler:
        async def __call__(self, event: Event) -> None:
            seen.append("object")

    scheduler.on("n", functools.partial(tagged, "partial"))
    scheduler.on("n", Handler())
    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("n")
    assert seen == ["partial", "object"]


async def test_failing_handlers_are_isolated() -> None:
    """With 1% of events failing a handler, every other event is handled and nothing stops."""
    scheduler = EventScheduler(queue_size=100, overflow="block", workers=2)
    handled: list[int] = []
    also_ran: list[int] = []

    async def sometimes_fails(event: Event) -> None:
        if event.data["i"] % 100 == 7:
            raise RuntimeError(f"boom {event.data['i']}")
        handled.append(event.data["i"])

    async def second(event: Event) -> None:
        also_ran.append(event.data["i"])

    scheduler.on("n", sometimes_fails)
    scheduler.on("n", second)
    with anyio.fail_after(10):
        async with scheduler:
            for i in range(1000):
                await scheduler.emit("n", {"i": i})
    stats = scheduler.statistics()
    assert sorted(handled) == [i for i in range(1000) if i % 100 != 7]
    assert sorted(also_ran) == list(range(1000))  # a failure does not skip the next handler
    assert stats.failed == 10
    assert stats.handler_errors == 10
    assert stats.handled == 990 + 1  # and SHUTDOWN_REQUESTED
    assert_accounted(stats)


async def test_failing_sync_handler_is_counted() -> None:
    """An exception in a sync handler's thread is counted like an async one."""
    scheduler = EventScheduler()

    def fails(event: Event) -> None:
        raise ValueError("sync boom")

    scheduler.on("n", fails)
    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("n")
    assert scheduler.statistics().failed == 1
    assert_accounted(scheduler.statistics())


@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
async def test_handler_timeout_counts_as_timed_out() -> None:
    """A handler past its timeout is cancelled; the event counts as timed out, not failed."""
    scheduler = EventScheduler(handler_timeout=0.05)
    finished: list[int] = []

    async def slow_on_odd(event: Event) -> None:
        if event.data["i"] % 2:
            await anyio.sleep_forever()
        finished.append(event.data["i"])

    scheduler.on("n", slow_on_odd)
    scheduler.on("fast", slow_on_odd, timeout=10)  # per-handler override
    with anyio.fail_after(10):
        async with scheduler:
            for i in range(6):
                await scheduler.emit("n", {"i": i})
    stats = scheduler.statistics()
    assert finished == [0, 2, 4]
    assert stats.timed_out == 3
    assert stats.handler_timeouts == 3
    assert stats.failed == 0
    assert_accounted(stats)


async def test_follow_up_events_carry_the_correlation_id() -> None:
    """Events a handler emits carry the handled event's correlation id and name it as cause."""
    scheduler = EventScheduler()
    chain: list[Event] = []
    done = anyio.Event()

    async def first(event: Event) -> None:
        chain.append(event)
        await scheduler.emit("second")

    async def second(event: Event) -> None:
        chain.append(event)
        scheduler.emit_nowait("third")

    async def third(event: Event) -> None:
        chain.append(event)
        done.set()

    scheduler.on("first", first)
    scheduler.on("second", second)
    scheduler.on("third", third)
    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("first", correlation_id="order-42")
            await done.wait()
    assert [e.correlation_id for e in chain] == ["order-42"] * 3
    assert chain[1].causation_id == chain[0].id
    assert chain[2].causation_id == chain[1].id


async def test_accounting_adds_up_while_handlers_run() -> None:
    """A snapshot taken inside a handler (one event in flight) already adds up."""
    scheduler = EventScheduler()
    snapshots: list[Statistics] = []

    async def look(event: Event) -> None:
        snapshots.append(scheduler.statistics())

    scheduler.on("n", look)
    with anyio.fail_after(5):
        async with scheduler:
            for _ in range(3):
                scheduler.emit_nowait("n")
    assert [s.in_flight for s in snapshots] == [1, 1, 1]
    assert [s.still_queued for s in snapshots] == [2, 1, 0]
    for snapshot in snapshots:
        assert_accounted(snapshot)
        assert snapshot.unaccounted == 0


async def test_an_abandoned_sync_handler_keeps_its_own_event() -> None:
    """After a timeout abandons a sync handler's thread, that thread still sees its own
    event, and what it emits carries that event's lineage, not the next event's."""
    # Real time: in virtual time a thread at work lets the mock clock jump past every
    # deadline. One worker, so that "second" runs on the worker the timeout freed.
    scheduler = EventScheduler(workers=1)
    release, emitted = threading.Event(), threading.Event()
    seen: list[str | None] = []
    children: list[Event] = []
    child_handled = anyio.Event()

    @scheduler.on("first", timeout=0.05)
    def slow(event: Event) -> None:
        assert release.wait(10)
        current = current_event()
        seen.append(current and current.id)
        scheduler.emit_nowait("child")
        emitted.set()

    @scheduler.on("second")
    async def second(event: Event) -> None:
        # The worker's own slot holds this event now; let the abandoned thread go on.
        release.set()
        assert await anyio.to_thread.run_sync(emitted.wait, 10)

    @scheduler.on("child")
    async def child(event: Event) -> None:
        children.append(event)
        child_handled.set()

    first = Event.create("first", correlation_id="A")
    with anyio.fail_after(20):
        async with scheduler:
            await scheduler.emit(first)
            await scheduler.emit("second", correlation_id="B")
            await child_handled.wait()
    assert seen == [first.id]
    assert children[0].correlation_id == "A"
    assert children[0].causation_id == first.id
    assert scheduler.statistics().timed_out == 1


async def test_a_plain_callable_returning_a_coroutine_is_awaited() -> None:
    """``lambda e: notify(e)`` runs notify on the loop on every backend, counted handled."""
    scheduler = EventScheduler()
    ran: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    async def notify(event: Event) -> None:
        ran.append((event.id, threading.get_ident() == loop_thread))

    scheduler.on("n", lambda event: notify(event))
    with anyio.fail_after(5):
        async with scheduler:
            event = Event.create("n")
            await scheduler.emit(event)
    assert ran == [(event.id, True)]
    stats = scheduler.statistics()
    assert stats.failed == 0
    assert_accounted(stats)


async def _raise_stray_cancellation(backend: str) -> None:
    """What a handler sees when something it awaits was cancelled by another task."""
    if backend == "asyncio":
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future  # CancelledError, though nothing cancels this task
    raise asyncio.CancelledError  # trio: the same error, raised by the handler's own code


async def test_a_stray_cancelled_error_is_a_failure_not_the_end_of_the_handler_task(
    anyio_backend_name: str,
) -> None:
    """A CancelledError that no cancellation of the task caused counts as a failure.

    Passed on, it would end the handler task as if shutdown had cancelled it: intake
    closed while the scheduler still said running, and the queue never drained.
    """
    scheduler = EventScheduler(workers=1)
    handled: list[str] = []
    drained = anyio.Event()

    async def stray_or_not(event: Event) -> None:
        if event.data["stray"]:
            await _raise_stray_cancellation(anyio_backend_name)
        handled.append(event.type)

    async def also(event: Event) -> None:
        handled.append("also")

    scheduler.on("lone", stray_or_not)  # a lone async handler: the fast path
    scheduler.on("pair", stray_or_not)
    scheduler.on("pair", also)  # several handlers
    scheduler.on("timed", stray_or_not, timeout=5)  # a timeout scope around it

    @scheduler.on("drained")
    async def on_drained(event: Event) -> None:
        drained.set()

    with anyio.fail_after(5):
        async with scheduler:
            for kind in ("lone", "pair", "timed"):
                assert await scheduler.emit(kind, {"stray": True})
                assert await scheduler.emit(kind, {"stray": False})
            assert await scheduler.emit("drained")
            await drained.wait()  # one handler task: everything before it is done
            assert scheduler.state is SchedulerState.RUNNING
            assert await scheduler.emit("lone", {"stray": False})
    stats = scheduler.statistics()
    assert handled == ["lone", "also", "pair", "also", "timed", "lone"]
    assert stats.failed == 3
    assert stats.handler_errors == 3
    assert stats.aborted_in_flight == 0
    assert stats.still_queued == 0
    assert_accounted(stats)


def test_a_mock_handler_is_registered_as_a_sync_callable() -> None:
    """A Mock has a callable ``.func`` (every attribute of a Mock is a Mock): only real
    partials are unwrapped, so registering one ends, and it runs as a sync handler."""
    scheduler = EventScheduler()
    handler = MagicMock()
    registering = threading.Thread(target=scheduler.on, args=("n", handler), daemon=True)
    registering.start()
    registering.join(5)
    assert not registering.is_alive(), "registering a MagicMock never ended"
    (registration,) = scheduler._registry.all()
    assert registration.is_async is False
    async_mock = AsyncMock()
    scheduler.on("m", async_mock)
    assert [h.is_async for h in scheduler._registry.all()] == [False, True]


def test_the_routing_table_never_loses_a_subscribed_type_while_it_changes() -> None:
    """on()/off() may run on another thread while a worker reads the table: at no step
    of a change may a type that keeps its handlers be missing from it (a worker reading
    then would find no route and skip the handlers)."""
    scheduler = EventScheduler()
    registry = scheduler._registry
    gaps: list[str] = []

    class Watched(type(registry.routes)):  # type: ignore[misc]
        def check(self, step: str) -> None:
            for event_type in ("a", "b"):
                if event_type not in self:
                    gaps.append(f"{event_type} missing after {step}")

        def clear(self) -> None:
            super().clear()
            self.check("clear")

        def update(self, *args: Any, **kwargs: Any) -> None:
            super().update(*args, **kwargs)
            self.check("update")

        def __delitem__(self, key: Any) -> None:
            super().__delitem__(key)
            self.check(f"del {key}")

    async def noop(event: Event) -> None:
        pass

    registry.routes = Watched()
    scheduler.on("a", noop)
    scheduler.on("b", noop)
    gaps.clear()  # before both were subscribed, one was missing by rights
    scheduler.on("c", noop)
    scheduler.off("c", noop)
    scheduler.on(ALL_EVENTS, noop)
    assert gaps == []
    assert set(registry.routes) == {"a", "b"}


async def test_statistics_from_another_thread_are_consistent() -> None:
    """statistics() from a thread is a snapshot taken on the loop: it always adds up.

    A fast thread switch interval makes a read caught halfway through an update of the
    loop thread likely, as it happens now and then at the default interval.
    """
    scheduler = EventScheduler(queue_size=64, overflow="drop_newest")
    done = threading.Event()
    snapshots: list[Statistics] = []

    def read() -> None:
        while not done.is_set():
            snapshots.append(scheduler.statistics())

    @scheduler.on("n")
    async def handler(event: Event) -> None:
        pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with anyio.fail_after(30):
            async with scheduler, anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, read)
                try:
                    for i in range(20_000):
                        await scheduler.emit("n", {"i": i})
                finally:
                    done.set()
    finally:
        sys.setswitchinterval(interval)
    assert len(snapshots) > 10
    assert [s.unaccounted for s in snapshots if s.unaccounted] == []
