"""Admission: what an emit refuses before the queue (bad data, bad types), and how it counts."""

from __future__ import annotations

import anyio
import pytest
from loguru import logger

from eventsched import Event, EventScheduler, EventType, InvalidEventError
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


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
    """Once intake closes, emits return False and count as rejected: shutting_down.

    A SHUTDOWN_REQUESTED handler's emit may come before intake closes (job runs may
    still finish and report then) or after: accepted and handled, or refused and
    counted, never lost."""
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
    assert len(late) == 1
    stats = scheduler.statistics()
    assert dict(stats.rejected) == {"shutting_down": 2 + late.count(False)}
    assert stats.handled == 1 + late.count(True)  # the notice, and the follow-up if taken
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
