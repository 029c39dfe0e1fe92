"""Lesson: testing time, a day of schedules in milliseconds.

Code that runs "every hour" or "at 09:30 on weekdays" is hard to test in real time:
nobody waits a day for a test. The fix is to make time itself injectable:

* the job scheduler reads wall time from a :class:`~eventsched.Clock`; in tests it gets
  a :class:`~eventsched.testing.VirtualClock`, which follows the event loop's clock;
* the event loop runs under trio's ``MockClock(autojump_threshold=0)``: whenever every
  task is waiting, the clock jumps straight to the next deadline.

So ``await anyio.sleep(24 * 3600)`` returns at once, with every cron fire time in
between having happened, in order, exactly on time. :func:`eventsched.testing.
run_in_virtual_time` (or ``virtual_time_backend()`` for pytest) sets this up.

Nothing in the scheduler knows it is being tested: no sleeps are patched, no
"if testing" branches exist. Virtual time only works for code that waits on the loop's
clock. A worker thread (a sync job) blocks in real time, and worse, the loop does not
count it as work: while the thread runs, every task is waiting, so the clock jumps to
the next deadline. A 0.1 s sync step under a one-hour timeout takes 0.1 s of real time
and an hour of virtual time. Keep such tests async, or give the thread no deadline to
race.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import sniffio

from .. import Event, EventScheduler, EventType
from ..testing import VirtualClock, run_in_virtual_time
from ._base import Lesson

DAY = 24 * 3600
THREAD_WORK = 0.1
"""Seconds of real time the sync step in a worker thread takes."""
HOUR = 3600
#: The schedules of our pretend application: (job id, cron fields, runs in one day).
SCHEDULES: tuple[tuple[str, dict[str, Any], int], ...] = (
    ("hourly-report", {"minute": 0}, 24),
    ("quarter-hour-sync", {"crontab": "*/15 * * * *"}, 96),
    ("weekday-digest", {"day_of_week": "mon-fri", "hour": 9, "minute": 30}, 1),
    ("nightly-backup", {"hour": 2, "minute": 0}, 1),
)


@dataclass(frozen=True, slots=True)
class JobDay:
    """One job's day."""

    job_id: str
    expected: int
    runs: int
    first: str
    last: str


@dataclass(frozen=True, slots=True)
class VirtualDayOutcome:
    """What the demonstration measured."""

    backend: str
    jobs: tuple[JobDay, ...]
    latest_start_s: float
    """Largest gap between a fire time and its run starting, in virtual seconds."""
    virtual_seconds: float
    """How much virtual time passed."""
    wall_seconds: float
    """How long that took for real."""
    thread_real_s: float
    """Real seconds a THREAD_WORK sync step in a worker thread took, in virtual time."""
    thread_virtual_s: float
    """Virtual seconds that passed meanwhile, under a one-hour timeout."""

    @property
    def claim(self) -> str:
        return (
            f"A day of {len(self.jobs)} cron schedules runs in virtual time in well under "
            "a second: every job runs exactly as often as its schedule says, each run "
            "starting exactly at its fire time. A sync step in a worker thread takes real "
            "time, and the virtual clock jumps to the next deadline while it runs."
        )

    @property
    def headline(self) -> str:
        return (
            f"{self.virtual_seconds / 3600:.0f} virtual hours in "
            f"{self.wall_seconds * 1000:.0f} ms, every job on time; a "
            f"{THREAD_WORK * 1000:.0f} ms thread took {self.thread_real_s * 1000:.0f} ms "
            f"real and {self.thread_virtual_s:.0f} s virtual"
        )

    @property
    def held(self) -> bool:
        return (
            all(job.runs == job.expected for job in self.jobs)
            and self.latest_start_s == 0
            and self.virtual_seconds >= DAY - 1
            and self.wall_seconds < 10  # a bound, generous for a shared machine
            and self.thread_real_s >= THREAD_WORK
            and self.thread_virtual_s >= HOUR
        )

    def figures(self) -> list[str]:
        lines = [
            f"{job.job_id}: {_runs(job.runs)} (schedule says {job.expected}), "
            f"first {job.first}, last {job.last}"
            for job in self.jobs
        ]
        lines.append(f"latest start after its fire time: {self.latest_start_s} s (virtual)")
        lines.append(
            f"{self.virtual_seconds / 3600:.1f} virtual hours in "
            f"{self.wall_seconds * 1000:.0f} ms of real time "
            f"({self.virtual_seconds / max(self.wall_seconds, 1e-9):,.0f}x)"
        )
        lines.append(
            f"time.sleep({THREAD_WORK}) in a worker thread, in virtual time, under "
            f"move_on_after({HOUR}): {self.thread_real_s:.2f} s of real time, "
            f"{self.thread_virtual_s:.0f} s of virtual time (the clock jumped to the "
            "deadline while the thread worked)"
        )
        return lines


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


async def _a_day() -> tuple[dict[str, list[datetime]], float, float]:
    """The test itself: schedule the jobs, let a virtual day pass, look at what ran."""
    clock = VirtualClock()  # starts on Monday 2030-01-07, 00:00 UTC
    scheduler = EventScheduler()
    scheduler.configure_jobs(clock=clock)
    fired: dict[str, list[datetime]] = defaultdict(list)
    latest_start = 0.0

    async def work() -> None:
        await anyio.lowlevel.checkpoint()  # an async job: it waits on the loop's clock

    @scheduler.on(EventType.JOB_STARTED)
    async def note_run(event: Event) -> None:
        nonlocal latest_start
        fire_time = datetime.fromisoformat(event.data["fire_time"])
        fired[event.data["job_id"]].append(fire_time)
        latest_start = max(latest_start, (clock.now() - fire_time).total_seconds())

    for job_id, fields, _ in SCHEDULES:
        scheduler.add_job(work, "cron", id=job_id, **fields)

    start = anyio.current_time()
    async with scheduler:
        await anyio.sleep(DAY - 1)  # 00:00:00 to 23:59:59: returns at once in virtual time
    return fired, latest_start, anyio.current_time() - start


async def _a_thread() -> tuple[float, float]:
    """The pitfall: sync work in a worker thread, under a deadline, in virtual time."""
    real, virtual = time.perf_counter(), anyio.current_time()
    with anyio.move_on_after(HOUR):  # stands for a timeout, or the next cron fire time
        await anyio.to_thread.run_sync(time.sleep, THREAD_WORK)
    return time.perf_counter() - real, anyio.current_time() - virtual


def _run_the_thread() -> tuple[float, float]:
    return run_in_virtual_time(_a_thread)


def _run_the_day() -> tuple[dict[str, list[datetime]], float, float, float]:
    started = time.perf_counter()
    fired, latest, virtual = run_in_virtual_time(_a_day)
    return fired, latest, virtual, time.perf_counter() - started


async def demonstrate() -> VirtualDayOutcome:
    """Run a virtual day of schedules (under trio's MockClock, in a worker thread)."""
    # Virtual time needs trio's MockClock, and trio.run cannot start inside a running
    # loop: so the day runs in a thread of its own, whichever backend this is.
    fired, latest, virtual, wall = await anyio.to_thread.run_sync(_run_the_day)
    thread_real, thread_virtual = await anyio.to_thread.run_sync(_run_the_thread)
    jobs = tuple(
        JobDay(
            job_id=job_id,
            expected=expected,
            runs=len(fired[job_id]),
            first=fired[job_id][0].strftime("%a %H:%M") if fired[job_id] else "-",
            last=fired[job_id][-1].strftime("%a %H:%M") if fired[job_id] else "-",
        )
        for job_id, _, expected in SCHEDULES
    )
    return VirtualDayOutcome(
        backend=sniffio.current_async_library(),
        jobs=jobs,
        latest_start_s=latest,
        virtual_seconds=virtual,
        wall_seconds=wall,
        thread_real_s=thread_real,
        thread_virtual_s=thread_virtual,
    )


LESSON = Lesson(
    name="testing-time",
    title="Testing time: a day of cron schedules in virtual time, in milliseconds",
    idea=(
        "Make time injectable and a day of schedules can be tested in milliseconds: the "
        "jobs read wall time from a VirtualClock that follows the loop's clock, and trio's "
        "MockClock jumps to the next deadline whenever every task is waiting. Nothing in "
        "the code under test changes. Sync work in a worker thread escapes it: it takes "
        "real time while the virtual clock jumps ahead."
    ),
    demonstrate=demonstrate,
    differences=(
        "Virtual time needs trio: anyio has no mock clock for asyncio. The scheduler code "
        "is the same on both, so test schedules under trio's MockClock (eventsched.testing) "
        "and the rest on both backends. On asyncio this lesson runs the day in a worker "
        "thread, under trio."
    ),
)
