"""The ``jobs`` workload: many interval jobs at once, their CPU and their start lateness.

Two sizes: :attr:`~BenchConfig.jobs` interval jobs and a tenth of them, each job every
:attr:`~BenchConfig.job_interval` seconds, their first fire times spread evenly over one
interval (as an application's jobs, added at different moments, would be). Over
:attr:`~BenchConfig.job_seconds` the workload measures the process's CPU time as a share
of one core, and each run's lateness: the wall time at the job's first line minus its
fire time. APScheduler 3's ``AsyncIOScheduler`` runs the same jobs in the same process
as a reference (asyncio and uvloop only: it cannot run on trio).

Usable alone: ``eventsched bench --workloads jobs --jobs 20000``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final

import anyio

from .._scheduler import EventScheduler
from ._config import BenchConfig
from ._workloads import Runner

__all__ = ["LEAD", "LEAD_PER_JOB", "jobs"]

#: Seconds from adding the jobs to the first fire time, plus :data:`LEAD_PER_JOB` per
#: job: no fire time may pass before its scheduler runs (adding 10,000 jobs takes a while).
LEAD: Final = 0.2
LEAD_PER_JOB: Final = 50e-6

_wall = time.time
_cpu = time.process_time


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class _Window:
    """The measured seconds: CPU share over them, and the lateness of runs inside them."""

    def __init__(self, count: int, interval: float, seconds: float) -> None:
        now = _wall()
        self.interval = interval
        self.begin = now + LEAD + LEAD_PER_JOB * count
        self.end = self.begin + seconds
        self.starts = [self.begin + k * interval / count for k in range(count)]
        self.lateness: list[float] = []

    def first_fire(self, k: int) -> datetime:
        return datetime.fromtimestamp(self.starts[k], UTC)

    async def job(self, k: int) -> None:
        now = _wall()
        if self.begin <= now < self.end:
            # The job's own fire times are start + i * interval: how far past the last.
            self.lateness.append((now - self.starts[k]) % self.interval)

    async def measure(self) -> float:
        """Sleep through the window; the CPU share of one core the process used in it."""
        await anyio.sleep(max(0.0, self.begin - _wall()))
        cpu, start = _cpu(), _wall()
        await anyio.sleep(max(0.0, self.end - _wall()))
        return (_cpu() - cpu) / (_wall() - start)


def _add_jobs(add_job: Any, window: _Window, count: int, interval: float) -> None:
    """The same jobs, by the same call, in eventsched and in APScheduler 3."""
    for k in range(count):
        add_job(
            window.job,
            "interval",
            seconds=interval,
            start_date=window.first_fire(k),
            id=f"bench-{k}",
            args=(k,),
        )


def _eventsched(count: int, interval: float, seconds: float) -> Any:
    async def main() -> tuple[float, list[float]]:
        window = _Window(count, interval, seconds)
        scheduler = EventScheduler()
        _add_jobs(scheduler.add_job, window, count, interval)
        async with scheduler:
            share = await window.measure()
        return share, window.lateness

    return main


def _apscheduler(count: int, interval: float, seconds: float) -> Any:
    async def main() -> tuple[float, list[float]]:
        import asyncio
        import logging

        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

        # APScheduler logs every run at INFO; with logging unconfigured that costs a
        # record per run that eventsched's rows do not pay.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        window = _Window(count, interval, seconds)
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        _add_jobs(scheduler.add_job, window, count, interval)
        scheduler.start()
        try:
            share = await window.measure()
        finally:
            scheduler.shutdown(wait=False)
        return share, window.lateness

    return main


def jobs(run: Runner, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """CPU share and lateness p50/p99 (ms) of each size, eventsched then APScheduler."""
    rows: dict[str, Callable[[int, float, float], Callable[[], Coroutine[Any, Any, Any]]]] = {
        "": _eventsched
    }
    if on_asyncio:
        rows["aps_"] = _apscheduler
    results: dict[str, float] = {}
    for size, count in (("tenth", max(1, config.jobs // 10)), ("many", config.jobs)):
        for prefix, build in rows.items():
            share, lateness = run(build(count, config.job_interval, config.job_seconds))
            if not lateness:
                raise RuntimeError(f"jobs.{prefix}{size}: no run started in the window")
            results[f"jobs.{prefix}{size}_cpu_share"] = share
            results[f"jobs.{prefix}{size}_p50"] = _quantile(lateness, 0.50) * 1e3
            results[f"jobs.{prefix}{size}_p99"] = _quantile(lateness, 0.99) * 1e3
    return results
