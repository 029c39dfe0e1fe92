"""Faults of issue 15 in the pipeline: user exceptions that misbehave, the shutdown notice."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest

from conftest import logging_to
from eventsched import Event, EventScheduler, EventType, OverflowPolicy
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


class _Unprintable(Exception):
    """Neither str() nor repr() works: what a broken ``__str__`` aliased as ``__repr__`` gives."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ of this exception raises")

    __repr__ = __str__


@pytest.fixture
def records() -> Iterator[list[str]]:
    """Logging on, as an application has it: the library enabled, a sink attached."""
    lines: list[str] = []
    with logging_to(lambda message: lines.append(str(message)), format="{message}"):
        yield lines


@pytest.mark.parametrize("kind", ["async", "sync", "async with timeout"])
async def test_a_handler_exception_whose_str_raises_is_a_counted_failure(
    records: list[str], kind: str
) -> None:
    """With logging on, an exception whose __str__ raises fails its event; the rest go on."""
    scheduler = EventScheduler()
    after: list[int] = []

    async def async_boom(event: Event) -> None:
        raise _Unprintable

    def sync_boom(event: Event) -> None:
        raise _Unprintable

    async def fine(event: Event) -> None:
        after.append(event.data["i"])

    if kind == "sync":
        scheduler.on("boom", sync_boom)
    else:
        scheduler.on("boom", async_boom, timeout=5 if kind.endswith("timeout") else None)
    scheduler.on("ok", fine)
    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("boom")
            await scheduler.emit("boom")
            for i in range(3):
                await scheduler.emit("ok", {"i": i})
    stats = scheduler.statistics()
    assert stats.failed == 2
    assert stats.handler_errors == 2
    assert after == [0, 1, 2]
    assert_accounted(stats)
    failures = [line for line in records if "failed on event" in line]
    assert len(failures) == 2
    assert "_Unprintable" in failures[0]


@pytest.mark.parametrize("overflow", [policy.value for policy in OverflowPolicy])
async def test_shutdown_notice_gets_in_when_the_queue_is_full(overflow: str) -> None:
    """SHUTDOWN_REQUESTED is accepted even with the queue full at stop (never refused)."""
    scheduler = EventScheduler(queue_size=2, grace_period=0.2, overflow=overflow)
    release, started = anyio.Event(), anyio.Event()

    @scheduler.on("slow")
    async def slow(event: Event) -> None:
        started.set()
        await release.wait()  # only the end of the grace period ends this

    with anyio.fail_after(10):
        async with scheduler:
            assert await scheduler.emit("slow")
            await started.wait()  # one in the handler, two filling the queue
            assert await scheduler.emit("slow")
            assert await scheduler.emit("slow")
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {}
    # The notice is in the queue behind the two events the handler never reached.
    assert stats.still_queued == 3
    assert stats.aborted_in_flight == 1
    assert_accounted(stats)


async def test_handlers_see_the_shutdown_notice_when_the_queue_was_full() -> None:
    """A full queue at stop still delivers SHUTDOWN_REQUESTED once the drain reaches it."""
    scheduler = EventScheduler(queue_size=2, grace_period=10)
    release, started = anyio.Event(), anyio.Event()
    seen: list[str] = []

    @scheduler.on("slow")
    async def slow(event: Event) -> None:
        started.set()
        await release.wait()
        seen.append("slow")

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def notice(event: Event) -> None:
        seen.append(str(event.data["reason"]))

    with anyio.fail_after(10):
        async with scheduler:
            assert await scheduler.emit("slow")
            await started.wait()
            assert await scheduler.emit("slow")
            assert await scheduler.emit("slow")
            scheduler.stop(reason="test")
            await anyio.lowlevel.checkpoint()
            release.set()
    assert seen == ["slow", "slow", "slow", "test"]
    stats = scheduler.statistics()
    assert stats.handled == 4
    assert_accounted(stats)
