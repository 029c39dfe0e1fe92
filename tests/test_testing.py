"""The public test helpers of ``eventsched.testing``."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from eventsched import Event, EventScheduler, EventType
from eventsched.testing import assert_accounted, capture_events

pytestmark = pytest.mark.anyio


async def test_capture_events_records_what_the_scheduler_handles_in_order() -> None:
    """Every handled event by default, the runtime's own included; one type when asked."""
    scheduler = EventScheduler()
    with capture_events(scheduler) as everything, capture_events(scheduler, "b") as only_b:
        with anyio.fail_after(10):
            async with scheduler:
                await scheduler.emit("a", {"n": 1})
                await scheduler.emit("b", {"n": 2})
                await scheduler.emit("a", {"n": 3})
    assert [(e.type, e.data.get("n")) for e in everything] == [
        ("a", 1),
        ("b", 2),
        ("a", 3),
        (EventType.SHUTDOWN_REQUESTED, None),
    ]
    assert [e.data["n"] for e in only_b] == [2]
    assert_accounted(scheduler.statistics())


async def test_capture_events_unsubscribes_when_the_block_ends() -> None:
    """After the block the recorder is gone: later events are not recorded."""
    scheduler = EventScheduler()
    handled = anyio.Event()

    @scheduler.on("x")
    async def mark(event: Event) -> None:
        if event.data["n"] == 2:
            handled.set()

    with anyio.fail_after(10):
        async with scheduler:
            with capture_events(scheduler, "x") as seen:
                await scheduler.emit("x", {"n": 1})
                while not seen:
                    await anyio.lowlevel.checkpoint()
            await scheduler.emit("x", {"n": 2})
            await handled.wait()
    assert [e.data["n"] for e in seen] == [1]
