"""Helpers of the job tests: a recorder of handled events, a scheduler on a virtual clock."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest

from conftest import VIRTUAL_TIME
from eventsched import (
    Event,
    EventScheduler,
    JobStateError,
    MemoryJobStore,
    SavedJob,
)
from eventsched._events import _handling
from eventsched._jobs._runslot import RunSlot
from eventsched.testing import DEFAULT_EPOCH, VirtualClock

EPOCH = DEFAULT_EPOCH
virtual_time = pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
pytestmark = pytest.mark.anyio


def is_virtual(anyio_backend: tuple[str, dict[str, Any]]) -> bool:
    return "clock" in anyio_backend[1]


class Recorder:
    """Every event a scheduler handles, with a bounded wait for a condition on them."""

    def __init__(self, scheduler: EventScheduler) -> None:
        self.events: list[Event] = []
        self._changed: anyio.Event | None = None
        scheduler.on("*", self._record)

    async def _record(self, event: Event) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    def of(self, event_type: str, job_id: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.type == event_type and (job_id is None or e.data.get("job_id") == job_id)
        ]

    async def wait_for(self, condition: Callable[[], bool], limit: float) -> None:
        with anyio.fail_after(limit):
            while True:
                changed = self._changed = anyio.Event()
                if condition():
                    return
                await changed.wait()

    async def wait_count(
        self, event_type: str, count: int, limit: float, job_id: str | None = None
    ) -> list[Event]:
        await self.wait_for(lambda: len(self.of(event_type, job_id)) >= count, limit)
        return self.of(event_type, job_id)


class RecordingStore(MemoryJobStore):
    """A memory store that keeps every save (with the wall time it returned at), can be
    told to fail them or refuse some jobs, and calls ``after_save`` once one is saved.

    A subclass of the memory store is durable for the job scheduler: it is saved as
    it changes, and claimed ahead (``_jobs/_claims.CLAIM_LEAD``).
    """

    def __init__(self, saved: Mapping[str, SavedJob] | None = None) -> None:
        super().__init__()
        self._states.update(saved or {})
        self.saves: list[dict[str, SavedJob | None]] = []
        self.failing = False
        self.refuse: frozenset[str] = frozenset()
        self.after_save: Callable[[dict[str, SavedJob | None]], None] | None = None

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        if self.failing:
            raise JobStateError("the disk is full")
        self.saves.append(dict(changes))
        await super().save(changes)
        if self.after_save is not None:
            self.after_save(dict(changes))
        return self.refuse & set(changes)

    def state(self, job_id: str) -> SavedJob:
        return self._states[job_id]

    def claims(self) -> list[dict[str, SavedJob | None]]:
        """The saves that claimed a fire time."""
        return [s for s in self.saves if any(v is not None and v.running for v in s.values())]


def fire_times(events: list[Event]) -> list[datetime]:
    return [datetime.fromisoformat(e.data["fire_time"]) for e in events]


def new_scheduler(clock: VirtualClock | None = None, **options: Any) -> EventScheduler:
    scheduler = EventScheduler(**options)
    scheduler.configure_jobs(clock=clock or VirtualClock())
    return scheduler


def close_to(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) < 1e-5


async def _async_noop() -> None:
    pass


class StubEmitter:
    """Stands in for an EventScheduler where no event loop is needed."""

    max_event_bytes = 65536

    async def emit(self, event: Event) -> bool:
        raise AssertionError("not running")


def unit_of(anyio_backend: tuple[str, dict[str, Any]]) -> float:
    """One interval, as the ``unit`` fixture of tests/conftest.py gives it."""
    return 1.0 if is_virtual(anyio_backend) else 0.05


async def run_child(
    args: list[str], *, until: str, times: int = 1, kill: bool
) -> tuple[list[str], int]:
    """Run ``python ARGS``, collecting its output lines until ``times`` of them start
    with ``until``; then SIGKILL it (``kill``) or let it end. Its lines and exit code."""
    lines: list[str] = []
    buffer = ""
    async with await anyio.open_process(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        try:
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    buffer += chunk.decode()
                    *complete, buffer = buffer.split("\n")
                    lines.extend(complete)
                    if sum(line.startswith(until) for line in lines) >= times:
                        break
                if kill:
                    process.send_signal(signal.SIGKILL)
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    return lines, code


def json_events(lines: list[str]) -> list[dict[str, Any]]:
    """The events a child printed as JSON lines."""
    return [json.loads(line) for line in lines if line.startswith("{")]


async def lateness_of_runs(
    store: MemoryJobStore, *, jobs: int, apart: float, runs: int
) -> tuple[EventScheduler, list[float]]:
    """Seconds late of the first ``runs`` runs of ``jobs`` interval jobs every second,
    their first fire times ``apart`` seconds apart, on ``store``, in virtual time
    (trio-virtual or asyncio on the virtual loop); and the scheduler, stopped."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.configure_jobs(store=store)
    late: list[float] = []
    done = anyio.Event()

    async def job() -> None:
        slot = _handling.get()
        assert isinstance(slot, RunSlot)
        late.append((clock.now() - slot.fire_time).total_seconds())
        if len(late) == runs:
            done.set()

    for n in range(jobs):
        start = EPOCH + timedelta(seconds=1 + n * apart)
        scheduler.add_job(job, "interval", seconds=1, start_date=start, id=f"j{n}")
    async with scheduler:
        with anyio.fail_after(60):
            await done.wait()
    assert len(late) >= runs
    return scheduler, late
