"""The ``jobs`` workload: many interval jobs at once, their CPU, lateness and fire times.

Two sizes: :attr:`~BenchConfig.jobs` interval jobs and a tenth of them, each job every
:attr:`~BenchConfig.job_interval` seconds, their first fire times spread evenly over one
interval (as an application's jobs, added at different moments, would be). Over
:attr:`~BenchConfig.job_seconds` the workload measures the process's CPU time as a share
of one core; for every fire time inside that window, whether it ran and how late (the
wall time at the job's first line minus its fire time); and the fire times the scheduler
reported missed, by reason. APScheduler 3's ``AsyncIOScheduler`` runs the same jobs in
the same process as a reference (asyncio and uvloop only: it cannot run on trio). At the
larger size eventsched runs them once more with an SQLite state file, so that what the
file costs is read against the row without one of the same repetition.

Usable alone: ``eventsched bench --workloads jobs --jobs 20000``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._events import _handling
from .._jobs._runslot import RunSlot
from .._scheduler import EventScheduler

if TYPE_CHECKING:
    # Typing only: benchmarks/bench_jobs_runs.py loads this module into an older
    # eventsched (the commit a change is measured against), which needs only the
    # scheduler at run time.
    from ._config import BenchConfig
    from ._workloads import Runner

__all__ = [
    "JOB_MISS_REASONS",
    "LEAD",
    "LEAD_PER_JOB",
    "JobsRow",
    "apscheduler_row",
    "eventsched_row",
    "jobs",
]

#: Seconds from adding the jobs to the first fire time, plus :data:`LEAD_PER_JOB` per
#: job: no fire time may pass before its scheduler runs (adding 10,000 jobs takes a
#: while). 50 us per job was too little on a loaded machine: APScheduler, started
#: after the whole 4 s window had passed, had no fire time to run in it.
LEAD: Final = 0.2
LEAD_PER_JOB: Final = 100e-6
#: The reasons for a missed fire time that have a row each, with the row's word. The
#: others need a job store, a crash or a shutdown inside the window, which the workload
#: has none of; were one counted, it would still be taken off the unreported ones.
#: ``handed_back``: not a miss, a fire time whose run had not begun at the stop (back to
#: the schedule, for the next start); eventsched only.
JOB_MISS_REASONS: Final = {
    "coalesced": "coalesced",
    "misfire": "misfired",
    "max_instances": "max inst.",
    "handed_back": "handed back",
}
#: A run this close before its fire time (by the float arithmetic on microsecond
#: fire times) is that fire time's run, not the previous one's a whole interval late.
_EARLY: Final = 1e-4

#: Reasons APScheduler does not report (it drops coalesced fire times silently, and
#: has no hand-back): its rows have no figure for them rather than a 0.
EVENTSCHED_ONLY: Final = ("coalesced", "handed_back")

_wall = time.time
_cpu = time.process_time


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass(slots=True)
class JobsRow:
    """What one row measured: its CPU share and, for the fire times in its window,
    the lateness of each run, how many there were and how many ran, and the misses
    its scheduler reported while they were due (by reason)."""

    share: float
    lateness: list[float]
    fires: int
    ran: int
    missed: dict[str, int] = field(default_factory=dict)

    @property
    def unreported(self) -> int:
        """Fire times in the window that neither ran nor were reported missed."""
        return self.fires - self.ran - sum(self.missed.values())


class _Window:
    """The measured seconds, and the runs of the fire times inside them.

    A run belongs to the latest fire time of its job at or before it starts, so a run
    later than a whole interval is counted against the wrong fire time; a scheduler
    that late has missed the window's point anyway.
    """

    def __init__(self, count: int, interval: float, seconds: float) -> None:
        now = _wall()
        self.interval = interval
        # On whole microseconds, as the schedulers' datetimes keep them.
        self.begin = round(now + LEAD + LEAD_PER_JOB * count, 6)
        self.end = self.begin + seconds
        self.starts = [round(self.begin + k * interval / count, 6) for k in range(count)]
        #: The first moment counted: ``begin``, or when the scheduler started if that
        #: was later (on a loaded machine, adding the jobs and starting can outlast the
        #: lead; both schedulers skip the fire times that passed before they started).
        self.first = self.begin
        self.fires = self._count()
        self.lateness: list[float] = []
        self._fired: list[float] = []  # the fire time of each lateness
        self.all_ran = anyio.Event()

    def scheduler_started(self) -> None:
        """The scheduler runs now: fire times from now on are its to run (and those it
        ran before this was called, the others on a loaded machine, are forgotten)."""
        now = _wall()
        if now > self.first:
            self.first = now
            self.fires = self._count()
            kept = [
                (at, late) for at, late in zip(self._fired, self.lateness, strict=True) if at >= now
            ]
            self._fired = [at for at, _ in kept]
            self.lateness = [late for _, late in kept]

    def _count(self) -> int:
        if self.first >= self.end:
            return 0
        return sum(self._before(s, self.end) - self._before(s, self.first) for s in self.starts)

    def _before(self, start: float, moment: float) -> int:
        """How many of a job's fire times fall before ``moment``, by the same sum as
        job() uses, so that both agree at the window's edges."""
        n = max(0, math.ceil((moment - start) / self.interval))
        while n > 0 and start + (n - 1) * self.interval >= moment:
            n -= 1
        while start + n * self.interval < moment:
            n += 1
        return n

    def first_fire(self, k: int) -> datetime:
        return datetime.fromtimestamp(self.starts[k], UTC)

    def inside(self, fire_time: float) -> bool:
        return self.first <= fire_time < self.end

    async def job(self, k: int) -> None:
        now = _wall()
        start = self.starts[k]
        # The job's fire times are start + i * interval: which one this run is for.
        i = int((now - start + _EARLY) // self.interval)
        self._ran(now, start + i * self.interval)

    async def run_of_eventsched(self, k: int) -> None:
        """job() for eventsched, which says which fire time a run is for: exact even
        when runs are later than an interval (job() then counts one against the next
        fire time, and that one's run against the one after)."""
        now = _wall()
        slot = _handling.get()
        if isinstance(slot, RunSlot):
            self._ran(now, slot.fire_time.timestamp())

    def _ran(self, now: float, fire_time: float) -> None:
        if self.first <= fire_time < self.end:
            self._fired.append(fire_time)
            lateness = self.lateness
            lateness.append(now - fire_time)
            if len(lateness) == self.fires:
                self.all_ran.set()

    async def measure(self) -> float:
        """Sleep through the window; the CPU share of one core the process used in it.

        Returns once every fire time in the window ran, or one interval after its end
        (a scheduler that far behind has missed the rest).
        """
        await anyio.sleep(max(0.0, self.begin - _wall()))
        cpu, start = _cpu(), _wall()
        await anyio.sleep(max(0.0, self.end - _wall()))
        share = (_cpu() - cpu) / (_wall() - start)
        with anyio.move_on_after(max(0.0, self.end + self.interval - _wall())):
            await self.all_ran.wait()
        return share

    def row(self, share: float, missed: dict[str, int]) -> JobsRow:
        return JobsRow(share, self.lateness, self.fires, len(self.lateness), missed)


def _add_jobs(add_job: Any, window: _Window, count: int, interval: float, job: Any = None) -> None:
    """The same jobs, by the same call, in eventsched and in APScheduler 3."""
    for k in range(count):
        add_job(
            window.job if job is None else job,
            "interval",
            seconds=interval,
            start_date=window.first_fire(k),
            id=f"bench-{k}",
            args=(k,),
        )


def _collect_leftovers() -> None:
    """Collect what the rows before left (one process runs several, in turn): without
    it, when a row's full collection came depended on the garbage of the rows before it
    (a 10,000-job row after three others: p99 75 ms on asyncio, against 5.4 ms alone in
    a fresh process), not on the scheduler measured. Every row alike, APScheduler's too."""
    gc.collect()


@contextlib.contextmanager
def _frozen(freeze: bool) -> Iterator[None]:
    """With ``freeze``: the objects alive now (the jobs) left out of the collector's
    full collections for the row, as an application tuned for latency would
    (docs/jobs.md); the row's own garbage is collected as usual."""
    if not freeze:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _count_misses(scheduler: EventScheduler, window: _Window, missed: dict[str, int]) -> None:
    """Count, by reason, the fire times in the window that ``scheduler`` reports missed.

    Every miss passes through ``Runs.missed_event`` with its fire times (its public
    counters have no fire times, and a ``JOB_MISSED`` handler would receive a list cut
    at ten, through a queue that may be full exactly when misses happen). Counting by
    fire time, not by the moment a miss is found, keeps the rows' sums exact: a miss
    found after the window, or of a fire time before it, is not the window's.
    """
    runs = scheduler.jobs._runs
    report = runs.missed_event

    def counted(job: Any, miss: Any, now: datetime, running: int | None = None) -> Any:
        for one in [miss] if hasattr(miss, "reason") else miss:
            inside = sum(window.inside(at.timestamp()) for at in one.fire_times)
            if inside:
                missed[str(one.reason)] = missed.get(str(one.reason), 0) + inside
        return report(job, miss, now, running)

    # A claimed fire time whose run had not begun at the stop goes back to the
    # schedule (a later start runs it): not a miss, but not run in the window either.
    hand_back = runs.hand_back

    def handed_back(job: Any, fire_time: datetime) -> None:
        if window.inside(fire_time.timestamp()):
            missed["handed_back"] = missed.get("handed_back", 0) + 1
        hand_back(job, fire_time)

    runs.missed_event = counted  # type: ignore[method-assign]
    runs.hand_back = handed_back  # type: ignore[method-assign]


def eventsched_row(
    count: int,
    interval: float,
    seconds: float,
    *,
    state_file: str | None = None,
    freeze: bool = False,
) -> Callable[[], Coroutine[Any, Any, JobsRow]]:
    """The row of eventsched (with an SQLite ``state_file``, if given)."""

    async def main() -> JobsRow:
        _collect_leftovers()
        window = _Window(count, interval, seconds)
        scheduler = EventScheduler()
        _add_jobs(scheduler.add_job, window, count, interval, window.run_of_eventsched)
        if state_file is not None:
            scheduler.configure_jobs(state_file=state_file)

        missed: dict[str, int] = {}
        _count_misses(scheduler, window, missed)
        with _frozen(freeze):
            async with scheduler:
                window.scheduler_started()
                share = await window.measure()
        return window.row(share, missed)

    return main


def apscheduler_row(
    count: int, interval: float, seconds: float, *, freeze: bool = False
) -> Callable[[], Coroutine[Any, Any, JobsRow]]:
    """The row of APScheduler 3's ``AsyncIOScheduler`` (asyncio only)."""

    async def main() -> JobsRow:
        import asyncio
        import logging

        from apscheduler.events import (  # type: ignore[import-untyped]
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

        # APScheduler logs every run at INFO; with logging unconfigured that costs a
        # record per run that eventsched's rows do not pay.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        _collect_leftovers()
        window = _Window(count, interval, seconds)
        missed = {"misfire": 0, "max_instances": 0}

        # APScheduler reports these two; a fire time it coalesces it drops silently
        # (so the row's coalesced fire times show as unreported).
        def listen(event: Any) -> None:
            if event.code == EVENT_JOB_MISSED:
                times, reason = [event.scheduled_run_time], "misfire"
            else:
                times, reason = event.scheduled_run_times, "max_instances"
            missed[reason] += sum(window.inside(at.timestamp()) for at in times)

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        scheduler.add_listener(listen, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        _add_jobs(scheduler.add_job, window, count, interval)
        with _frozen(freeze):
            scheduler.start()
            window.scheduler_started()
            try:
                share = await window.measure()
            finally:
                scheduler.shutdown(wait=False)
        return window.row(share, {reason: n for reason, n in missed.items() if n})

    return main


def _with_state_file(
    count: int, interval: float, seconds: float, *, freeze: bool = False
) -> Callable[[], Coroutine[Any, Any, JobsRow]]:
    """eventsched's row with an SQLite state file (new, in a directory of its own)."""

    async def main() -> JobsRow:
        with tempfile.TemporaryDirectory(prefix="eventsched-bench-") as directory:
            path = os.path.join(directory, "jobs.sqlite")
            row = eventsched_row(count, interval, seconds, state_file=path, freeze=freeze)
            return await row()

    return main


def jobs(run: Runner, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """Per size, eventsched then APScheduler: CPU share, lateness p50/p99 (ms), and the
    window's fire times: how many, how many ran, missed by reason, unreported. At the
    larger size, then eventsched with a state file (``state_``): its cost is read
    against the row without one of the same repetition (docs/guide.md, "Persistence
    and job stores")."""
    rows: dict[str, Callable[..., Callable[[], Coroutine[Any, Any, JobsRow]]]] = {
        "": eventsched_row
    }
    if on_asyncio:
        rows["aps_"] = apscheduler_row
    results: dict[str, float] = {}
    for size, count in (("tenth", max(1, config.jobs // 10)), ("many", config.jobs)):
        sized = {**rows, "state_": _with_state_file} if size == "many" else rows
        for prefix, build in sized.items():
            row: JobsRow = run(
                build(count, config.job_interval, config.job_seconds, freeze=config.job_gc_freeze)
            )
            key = f"jobs.{prefix}{size}"
            if not row.lateness:
                raise RuntimeError(f"{key}: no run started in the window")
            results[f"{key}_cpu_share"] = row.share
            results[f"{key}_p50"] = _quantile(row.lateness, 0.50) * 1e3
            results[f"{key}_p99"] = _quantile(row.lateness, 0.99) * 1e3
            results[f"{key}_fires"] = row.fires
            results[f"{key}_ran"] = row.ran
            for reason in JOB_MISS_REASONS:
                # APScheduler reports no coalesced fire time: no figure rather than 0.
                if prefix != "aps_" or reason not in EVENTSCHED_ONLY:
                    results[f"{key}_{reason}"] = row.missed.get(reason, 0)
            results[f"{key}_unreported"] = row.unreported
    return results
