"""The demo's pieces, in process: its burst under each overflow policy."""

from __future__ import annotations

import anyio
import pytest

from eventsched import Event, EventScheduler
from eventsched.cli._demo import BURST_EXTRA, DemoEvent, emit_burst
from eventsched.cli._settings import Settings

QUEUE = 5


def settings(overflow: str) -> Settings:
    # Built directly: only the two fields the burst reads matter here.
    return Settings.model_construct(queue_size=QUEUE, overflow=overflow)


@pytest.mark.parametrize("overflow", ["block", "drop_newest", "drop_oldest", "reject"])
@pytest.mark.anyio
async def test_burst_honours_the_overflow_policy(overflow: str) -> None:
    """Under ``block`` the burst waits for room and nothing is dropped (it used emit_nowait).

    The handler waits until the burst is over, so under the other policies the events
    beyond the queue's capacity (less the one a worker may hold) are dropped or refused.
    """
    scheduler = EventScheduler(queue_size=QUEUE, overflow=overflow)
    burst_over = anyio.Event()
    handled = 0

    @scheduler.on(DemoEvent.BURST_ITEM)
    async def item(event: Event) -> None:
        nonlocal handled
        if overflow != "block":
            await burst_over.wait()
        handled += 1

    with anyio.fail_after(10):
        async with scheduler:
            await emit_burst(scheduler, settings(overflow))
            burst_over.set()
    stats = scheduler.statistics()
    assert stats.unaccounted == 0
    lost = stats.dropped_total + stats.rejected_total
    if overflow == "block":
        assert lost == 0
        assert handled == QUEUE + BURST_EXTRA
    else:
        assert BURST_EXTRA - 1 <= lost <= BURST_EXTRA
        assert (stats.rejected_total > 0) == (overflow == "reject")


@pytest.mark.anyio
async def test_completed_and_failed_durations_share_one_format() -> None:
    """The demo writes a job's duration as the job scheduler does: ms below 1 s, else s.

    It used to write "completed in 2500.000 ms" beside the scheduler's "failed after 2.500 s".
    """
    from loguru import logger

    from eventsched import EventType
    from eventsched.cli._demo import build_scheduler

    scheduler = build_scheduler(
        Settings.model_construct(
            queue_size=QUEUE,
            overflow="drop_newest",
            workers=1,
            grace_period=1.0,
            state_file=None,
            demo_message="hi",
        )
    )
    lines: list[str] = []
    logger.enable("eventsched")
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    try:
        with anyio.fail_after(10):
            async with scheduler:
                for duration in (0.0000874, 2.5):
                    data = {"job_id": "x", "fire_time": "t", "duration": duration, "result": "1"}
                    await scheduler.emit(EventType.JOB_COMPLETED, data)
    finally:
        logger.remove(sink)
        logger.disable("eventsched")
    completed = [line for line in lines if line.startswith("Job x completed")]
    assert completed == ["Job x completed in 0.087 ms", "Job x completed in 2.500 s"]
