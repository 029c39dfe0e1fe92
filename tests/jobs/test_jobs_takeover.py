"""A shared store's takeover at shutdown: a dead process's runs, once taken, are reported.

A store shared by processes (it has ``watch``, as ``PostgresJobStore``) marks a dead
process's unfinished runs ``interrupted`` in a poll, and the job scheduler reports them
(``JOB_MISSED``, reason ``interrupted``). Here the poll is a fake held at a gate: it
took the runs over while the scheduler was running, and the stop comes before it
returns. Virtual time on trio, real time on asyncio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractContextManager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from jobtools import EPOCH, Recorder, RecordingStore, virtual_time

from eventsched import EventScheduler, EventType
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

LIMIT = 30  # seconds (virtual on trio)
#: The dead process's run of "job" that the poll takes over.
TAKEN = EPOCH + timedelta(seconds=1)


class TakingOverStore(RecordingStore):
    """Shared (it has ``watch``): its one poll takes over :data:`TAKEN` and is held in
    the database until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.polling = anyio.Event()
        self.gate = anyio.Event()
        self.jobs: list[str] = []

    async def watch(
        self,
        changed: Callable[[Any], Awaitable[None]],
        takeover: Callable[[], AbstractContextManager[Collection[str]]],
    ) -> None:
        with takeover() as jobs:
            self.jobs = list(jobs)
            self.polling.set()
            await self.gate.wait()  # the poll's transaction, committed
            await changed(SimpleNamespace(rows={}, versions={}, interrupted={"job": (TAKEN,)}))
        await anyio.sleep_forever()


async def _noop() -> None:
    pass


@virtual_time
async def test_a_takeover_in_progress_when_the_stop_comes_is_reported(anyio_backend: Any) -> None:
    """The shutdown waits for the poll and its report (it closed intake and cancelled
    the poll: the runs stayed ``interrupted`` in the database with no report, seen with
    real processes in tests/postgres/test_processes.py under load)."""
    store = TakingOverStore()
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=VirtualClock())
    scheduler.add_job(_noop, "date", run_date=EPOCH + timedelta(days=1), id="job")
    recorder = Recorder(scheduler)
    with anyio.fail_after(LIMIT):
        async with scheduler:
            await store.polling.wait()
            assert store.jobs == ["job"]  # while running, it takes over the job's runs
            scheduler.stop()
            await anyio.wait_all_tasks_blocked()  # the shutdown goes as far as it can
            store.gate.set()
    missed = [
        (e.data["reason"], list(e.data["fire_times"])) for e in recorder.of(EventType.JOB_MISSED)
    ]
    assert missed == [("interrupted", [TAKEN.isoformat()])]
