"""The demo behind ``python -m eventsched``: jobs, handlers, follow-up events, a burst.

What it shows, on whichever backend the settings choose:

* ``greeting`` (a date job, once, half a second after start-up): the original README's custom event,
  carrying ``DEMO_MESSAGE``;
* ``report`` (interval, every 2 s): a handler turns its completion into a
  ``report_ready`` follow-up event with the same correlation id;
* ``flaky`` (interval, every 3 s): fails on every third run (the 2nd, 5th, ...), and
  a handler reacts to the failure;
* ``burst`` (interval, every 7 s): emits more events than the queue holds at once, so
  the overflow policy acts: under ``drop_newest``/``drop_oldest`` the drops are reported
  and counted, under ``reject`` the refusals are, and under ``block`` the burst waits
  for room (``await emit``), so nothing is dropped;
* ``minutely`` (cron, ``* * * * *``): at the start of every minute.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import anyio
from loguru import logger

# The public API only: the demo is an application of the library like any other.
from .. import Event, EventScheduler, EventType, QueueFullError
from .._jobs import format_duration
from ._settings import Settings

__all__ = ["BURST_EXTRA", "DemoEvent", "build_scheduler", "emit_burst"]

log = logger.bind(component="demo")

#: How many events a burst emits beyond the queue's capacity.
BURST_EXTRA: Final = 50


class DemoEvent(StrEnum):
    """The demo's own event types (any ``Enum`` or string works as an event type)."""

    GREETING = "greeting"
    REPORT_READY = "report_ready"
    BURST_ITEM = "burst_item"


def build_scheduler(settings: Settings) -> EventScheduler:
    """An :class:`EventScheduler` with the demo's handlers and jobs, not yet started."""
    scheduler = EventScheduler(
        queue_size=settings.queue_size,
        overflow=settings.overflow,
        workers=settings.workers,
        grace_period=settings.grace_period,
    )

    @scheduler.on(DemoEvent.GREETING)
    async def greet(event: Event) -> None:
        log.info("Received: {}", event.data["message"])

    @scheduler.on(EventType.JOB_COMPLETED)
    async def job_completed(event: Event) -> None:
        job_id = event.data["job_id"]
        # The job scheduler's own format, so "completed in" and "failed after" agree.
        log.info("Job {} completed in {}", job_id, format_duration(event.data["duration"]))
        if job_id == "report":
            # Created inside a handler: inherits this event's correlation id.
            rows = event.data.get("result")
            await scheduler.emit(DemoEvent.REPORT_READY, {"job_id": job_id, "rows": rows})

    @scheduler.on(EventType.JOB_FAILED)
    async def job_failed(event: Event) -> None:
        data = event.data
        log.warning(
            "Handler reacting to the failure of job {} ({}): would page someone now",
            data["job_id"],
            data.get("error_type", data.get("reason")),
        )

    @scheduler.on(DemoEvent.REPORT_READY)
    async def report_ready(event: Event) -> None:
        log.info("Report from job {} is ready ({} rows)", event.data["job_id"], event.data["rows"])

    @scheduler.on(DemoEvent.BURST_ITEM)
    async def burst_item(event: Event) -> None:
        await anyio.lowlevel.checkpoint()

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def shutdown_requested(event: Event) -> None:
        log.info("Handlers saw the shutdown request ({})", event.data["reason"])

    runs = itertools.count(1)

    async def report() -> int:
        await anyio.sleep(0.01)  # pretend to query something
        return 42

    async def flaky() -> None:
        run = next(runs)
        if run % 3 == 2:
            raise RuntimeError(f"run {run} failed, as every third run does")

    async def burst() -> None:
        await emit_burst(scheduler, settings)

    async def greeting() -> None:
        # The original README's custom event, with its fixed correlation id.
        await scheduler.emit(
            DemoEvent.GREETING, {"message": settings.demo_message}, correlation_id="demo-123"
        )

    async def minutely() -> None:
        log.info("Minutely job: it is {}", time.strftime("%H:%M"))

    if settings.state_file is not None:
        scheduler.configure_jobs(state_file=settings.state_file)
    scheduler.configure_jobs(timezone=settings.timezone)
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    scheduler.add_job(greeting, "date", run_date=soon, id="greeting")
    scheduler.add_job(report, "interval", seconds=2, id="report")
    scheduler.add_job(flaky, "interval", seconds=3, id="flaky")
    scheduler.add_job(burst, "interval", seconds=7, id="burst")
    scheduler.add_job(minutely, "cron", crontab="* * * * *", id="minutely")
    return scheduler


async def emit_burst(scheduler: EventScheduler, settings: Settings) -> None:
    """Emit :data:`BURST_EXTRA` more events than the queue holds, as fast as allowed."""
    size = settings.queue_size + BURST_EXTRA
    outcome = {
        "block": "it waits for room, so none is dropped",
        "reject": "the queue refuses the excess, counted as rejected",
    }.get(settings.overflow, "the excess is dropped, counted and reported")
    log.info(
        "Burst: emitting {} events into a queue of {} (overflow {}: {})",
        size,
        settings.queue_size,
        settings.overflow,
        outcome,
    )
    for index in range(size):
        # `emit`, not `emit_nowait`: only an awaited emit can wait for room, which is
        # what the block policy promises. Under reject a full queue raises; the
        # scheduler counts it anyway.
        with contextlib.suppress(QueueFullError):
            await scheduler.emit(DemoEvent.BURST_ITEM, {"index": index})
