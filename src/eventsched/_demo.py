"""The demo behind ``python -m eventsched``: jobs, handlers, follow-up events, a burst.

What it shows, on whichever backend the settings choose:

* ``greeting`` at start-up: the original README's custom event (``DEMO_MESSAGE``);
* ``report`` every 2 s: an interval job whose completion a handler turns into a
  ``report_ready`` follow-up event (same correlation id, caused by the completion);
* ``flaky`` every 3 s: fails on every third run (the 2nd, 5th, ...), and the failure is handled;
* ``burst`` every 7 s: emits more events than the queue holds at once, so the overflow
  policy acts and drops are reported and counted;
* ``minutely``: a cron-style job at the start of every minute.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import anyio
from anyio.abc import TaskStatus
from loguru import logger

from ._events import Event, EventType
from ._exceptions import QueueFullError
from ._scheduler import EventScheduler
from ._settings import Settings
from ._stats import Statistics

__all__ = ["DemoEvent", "build_scheduler", "run_demo"]

log = logger.bind(component="demo")

#: How many events a burst emits beyond the queue's capacity.
BURST_EXTRA: Final = 50


class DemoEvent(StrEnum):
    """The demo's own event types (any ``Enum`` or string works as an event type)."""

    GREETING = "greeting"
    REPORT_READY = "report_ready"
    BURST_ITEM = "burst_item"


@dataclass(frozen=True, slots=True)
class _Job:
    id: str
    func: Callable[[], Awaitable[object]]
    trigger: str  # "interval" (every ``seconds``), "date" (once, after ``seconds``), "cron"
    seconds: float = 0.0


class DemoJobs:
    """Runs the demo's jobs in the scheduler's task group (a :class:`Service`).

    Each run starts a chain of events with its own correlation id: ``JOB_STARTED``,
    then ``JOB_COMPLETED`` or ``JOB_FAILED``, and whatever handlers emit in response.
    """

    name = "demo-jobs"

    def __init__(self, scheduler: EventScheduler, jobs: list[_Job]) -> None:
        self._scheduler = scheduler
        self._jobs = jobs
        self._stopping = False
        self._running = 0
        self._idle: anyio.Event | None = None

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as tg:
            for job in self._jobs:
                tg.start_soon(self._loop, job)
            task_status.started()

    def begin_shutdown(self) -> None:
        self._stopping = True

    async def wait_idle(self) -> None:
        while self._running:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def _loop(self, job: _Job) -> None:
        deadline = anyio.current_time()
        while not self._stopping:
            if job.trigger == "cron":  # at the start of every minute
                deadline = anyio.current_time() + 60.0 - math.fmod(time.time(), 60.0)
            else:
                deadline += job.seconds
            await anyio.sleep_until(deadline)
            if self._stopping:
                return
            await self._run_once(job)
            if job.trigger == "date":
                return

    async def _run_once(self, job: _Job) -> None:
        scheduler = self._scheduler
        self._running += 1
        try:
            started = Event.create(EventType.JOB_STARTED, {"job_id": job.id})
            chain = started.correlation_id
            await scheduler.emit(started)
            begun = time.perf_counter()
            try:
                await job.func()
            except Exception as exc:
                await scheduler.emit(
                    EventType.JOB_FAILED,
                    {"job_id": job.id, "error": type(exc).__name__, "message": str(exc)},
                    correlation_id=chain,
                    causation_id=started.id,
                )
            else:
                await scheduler.emit(
                    EventType.JOB_COMPLETED,
                    {"job_id": job.id, "duration": round(time.perf_counter() - begun, 6)},
                    correlation_id=chain,
                    causation_id=started.id,
                )
        finally:
            self._running -= 1
            if not self._running and self._idle is not None:
                self._idle.set()


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
        log.info("Job {} completed in {:.3f} ms", job_id, event.data["duration"] * 1000)
        if job_id == "report":
            # Created inside a handler: inherits this event's correlation id.
            await scheduler.emit(DemoEvent.REPORT_READY, {"job_id": job_id, "rows": 42})

    @scheduler.on(EventType.JOB_FAILED)
    async def job_failed(event: Event) -> None:
        data = event.data
        log.warning("Job {} failed: {}: {}", data["job_id"], data["error"], data["message"])

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

    async def report() -> None:
        await anyio.sleep(0.01)  # pretend to query something

    async def flaky() -> None:
        run = next(runs)
        if run % 3 == 2:
            raise RuntimeError(f"run {run} failed, as every third run does")

    async def burst() -> None:
        size = settings.queue_size + BURST_EXTRA
        log.info("Burst: emitting {} events into a queue of {}", size, settings.queue_size)
        for index in range(size):
            # Under overflow=reject a full queue raises; the scheduler counts it anyway.
            with contextlib.suppress(QueueFullError):
                scheduler.emit_nowait(DemoEvent.BURST_ITEM, {"index": index})

    async def greeting() -> None:
        # The original README's custom event, with its fixed correlation id.
        await scheduler.emit(
            DemoEvent.GREETING, {"message": settings.demo_message}, correlation_id="demo-123"
        )

    async def minutely() -> None:
        log.info("Minutely job: it is {}", time.strftime("%H:%M"))

    scheduler.add_service(
        DemoJobs(
            scheduler,
            [
                _Job("greeting", greeting, "date", 0.2),
                _Job("report", report, "interval", 2.0),
                _Job("flaky", flaky, "interval", 3.0),
                _Job("burst", burst, "interval", 7.0),
                _Job("minutely", minutely, "cron"),
            ],
        )
    )
    return scheduler


async def _stop_after(scheduler: EventScheduler, seconds: float) -> None:
    await anyio.sleep(seconds)
    scheduler.stop(reason=f"duration of {seconds:g}s reached")


async def run_demo(
    settings: Settings, customize: Callable[[EventScheduler], None] | None = None
) -> Statistics:
    """Run the demo until a signal, ``--duration`` or a stop; return the final figures."""
    log.info("Starting the scheduler application...")
    scheduler = build_scheduler(settings)
    if customize is not None:
        customize(scheduler)
    async with anyio.create_task_group() as tg:
        if settings.duration is not None:
            tg.start_soon(_stop_after, scheduler, settings.duration)
        stats = await scheduler.run()
        tg.cancel_scope.cancel()
    return stats
