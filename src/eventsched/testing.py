"""Helpers for testing code that uses eventsched: virtual time, recorded events, accounting.

:func:`capture_events` records the events a scheduler handles, as structlog's
``capture_logs`` records log entries::

    with capture_events(scheduler, "order_placed") as seen:
        async with scheduler:
            await scheduler.emit("order_placed", {"id": 1})
    assert [event.data["id"] for event in seen] == [1]

:func:`assert_accounted` checks the two identities of a :class:`~eventsched.Statistics`
snapshot (every accepted event handled, failed, timed out, aborted or still queued),
naming the figures when they do not add up.

A job scheduler reads wall time from a :class:`~eventsched.Clock`. Give it a
:class:`VirtualClock` and run under trio's ``MockClock(autojump_threshold=0)``: the
loop clock jumps ahead whenever every task waits, so a simulated day passes in a
fraction of a second, with every fire time exact.

With pytest and anyio's plugin, in your ``conftest.py`` (or one test module)::

    import pytest
    from eventsched.testing import virtual_time_backend

    @pytest.fixture
    def anyio_backend():
        return virtual_time_backend()

and in a test::

    import anyio
    from eventsched import EventScheduler, EventType
    from eventsched.testing import VirtualClock

    @pytest.mark.anyio
    async def test_report_runs_every_hour():
        scheduler = EventScheduler()
        scheduler.configure_jobs(clock=VirtualClock())
        scheduler.add_job(make_report, "cron", minute=0, id="report")
        async with scheduler:
            await anyio.sleep(24 * 3600)  # instant
        assert scheduler.job_statistics().runs_completed == 24

Without pytest: ``run_in_virtual_time(main)``.

Caveat: anything that runs in a worker thread (sync jobs and handlers, the state
file) leaves every task waiting, so the mock clock may jump while the thread works:
keep virtual-time tests to async jobs, and test persistence in real time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import trio.testing

from ._clock import DEFAULT_EPOCH, Clock, SystemClock, VirtualClock
from ._events import Event, EventTypeLike
from ._pipeline import ALL_EVENTS, Statistics

if TYPE_CHECKING:
    from ._scheduler import EventScheduler

__all__ = [
    "DEFAULT_EPOCH",
    "Clock",
    "SystemClock",
    "VirtualClock",
    "assert_accounted",
    "capture_events",
    "run_in_virtual_time",
    "virtual_time_backend",
]

T = TypeVar("T")


def virtual_time_backend() -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value: trio with a fresh ``MockClock(autojump_threshold=0)``."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def run_in_virtual_time(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` under trio in virtual time and return its result."""
    return trio.run(func, *args, clock=trio.testing.MockClock(autojump_threshold=0))


def assert_accounted(stats: Statistics) -> None:
    """Assert that both identities of the accounting hold for this snapshot.

    ``emitted = accepted + dropped + rejected`` and
    ``accepted = handled + failed + timed_out + aborted_in_flight + in_flight + still_queued``.
    """
    outcomes = stats.finished + stats.in_flight + stats.still_queued
    intake = stats.accepted + stats.dropped_total + stats.rejected_total
    assert stats.emitted == intake, f"emitted {stats.emitted} != {intake} ({stats})"
    assert stats.accepted == outcomes, f"accepted {stats.accepted} != {outcomes} ({stats})"


@contextlib.contextmanager
def capture_events(
    scheduler: EventScheduler, event_type: EventTypeLike = ALL_EVENTS
) -> Iterator[list[Event]]:
    """Record the events ``scheduler`` handles, in the order its handler tasks take them.

    Subscribes a recorder to ``event_type`` (every event by default, the runtime's own
    ``SHUTDOWN_REQUESTED`` and ``EVENTS_DROPPED`` included) for the ``with`` block and
    yields the list it appends to; the recorder is unsubscribed when the block ends.
    Enter it before the scheduler starts to see every event. The recorder is an async
    handler like any other: each recorded event counts as handled.
    """
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    scheduler.on(event_type, record)
    try:
        yield events
    finally:
        scheduler.off(event_type, record)
