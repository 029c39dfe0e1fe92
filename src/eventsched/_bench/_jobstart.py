"""The ``jobs`` workload's start-up row: a process started on a state file of saved jobs.

As a restarted application would: a new process adds its jobs (five times the
workload's :attr:`~BenchConfig.jobs`, hourly, as saved), enters the scheduler, and
saves its state; measured from entering the scheduler until that save has returned
(wall and CPU time, worker threads included), and the rows written meanwhile, which
should be none (nothing changed since the file was written). A process of its own, so
that no memory freed by another is reused (a new page costs ~3 us on a virtual
machine, and a start-up at 50,000 jobs touches thousands).

    python -m eventsched._bench._target jobs-start BACKEND COUNT PATH

The first run on a new ``PATH`` writes the file (every row new); the next ones measure.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._jobs._sqlite import SQLiteJobStore
from .._jobs._store import SavedJob
from .._scheduler import EventScheduler

__all__ = ["SAVED_PER_JOB", "job_start", "saved_start"]

#: Saved jobs of the start-up row per job of the workload's larger row: 50,000 at the
#: default 10,000 (the start-up docs/benchmarks.md follows since it was first measured).
SAVED_PER_JOB: Final = 5


class _CountingStore(SQLiteJobStore):
    """The state file, counting the rows it is asked to write."""

    __slots__ = ("rows",)

    def __init__(self, path: str) -> None:
        super().__init__(path, warn=False)
        self.rows = 0

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        self.rows += len(changes)
        return await super().save(changes)


async def _nothing() -> None:
    return None


async def saved_start(path: str, count: int) -> dict[str, float]:
    """Add ``count`` hourly jobs, start on the state file ``path`` and save: the wall and
    CPU seconds from entering the scheduler to the save's end, and the rows written."""
    store = _CountingStore(path)
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store)
    for n in range(count):
        scheduler.add_job(_nothing, "interval", hours=1, id=f"job-{n}")
    cpu, wall = time.process_time(), time.perf_counter()
    async with scheduler:
        await scheduler.jobs.flush_state()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"wall": wall, "cpu": cpu, "rows": float(store.rows)}


def job_start(
    backend: str, jobs: int, target: Callable[[list[str], str], dict[str, Any]]
) -> dict[str, float]:
    """The start-up row on ``backend``: a file written by one process, then one start on
    it measured in another. ``target`` runs ``_target`` with its arguments and returns
    its JSON (see :mod:`._child`)."""
    count = SAVED_PER_JOB * jobs
    with tempfile.TemporaryDirectory(prefix="eventsched-bench-") as directory:
        args = ["jobs-start", backend, str(count), f"{directory}/jobs.sqlite"]
        written = target(args, "jobs start-up target (writing)")
        if written["rows"] < count:
            raise RuntimeError(f"the start-up file has {written['rows']:.0f} of {count} rows")
        result = target(args, "jobs start-up target")
    return {
        "jobs.start_wall_ms": result["wall"] * 1e3,
        "jobs.start_cpu_ms": result["cpu"] * 1e3,
        "jobs.start_rows": result["rows"],
    }
