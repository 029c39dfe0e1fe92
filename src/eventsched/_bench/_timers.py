"""The timers workload: how late fire times are, a bare ``sleep_until`` loop against a job."""

from __future__ import annotations

from datetime import datetime

import anyio

from .._events import current_event
from .._scheduler import EventScheduler
from ._config import BenchConfig
from ._workloads import Runner, _interleaved, _per_trial, _quantile, _wall

__all__ = ["job_lateness", "timers"]


async def job_lateness(runs: int, interval: float) -> list[float]:
    """Seconds from each fire time of an interval job to the job's first line (wall clock).

    So it includes the run's task and its ``JOB_STARTED``; also used by
    ``benchmarks/bench_jobs.py``.
    """
    lateness: list[float] = []
    done = anyio.Event()

    async def job() -> None:
        now = _wall()
        event = current_event()
        assert event is not None
        lateness.append(now - datetime.fromisoformat(event.data["fire_time"]).timestamp())
        if len(lateness) >= runs:
            done.set()

    scheduler = EventScheduler()
    scheduler.add_job(job, "interval", seconds=interval, id="bench", max_instances=10)
    async with scheduler:
        with anyio.fail_after(runs * interval * 5 + 10):
            await done.wait()
    return lateness[:runs]


def timers(run: Runner, config: BenchConfig) -> dict[str, float]:
    """Lateness of fire times, p50/p99 in ms: a bare sleep_until loop, then an interval job.

    Both on the wall clock (as the job's fire times are): the bare loop converts each
    wall-clock deadline to the loop's clock and sleeps until it.
    """
    runs, interval = _per_trial(config.timer_runs, config.trials), config.timer_interval

    async def bare() -> list[float]:
        lateness = []
        first = _wall() + interval
        for k in range(runs):
            target = first + k * interval
            await anyio.sleep_until(anyio.current_time() + (target - _wall()))
            lateness.append(_wall() - target)
        return lateness

    async def scheduled() -> list[float]:
        return await job_lateness(runs, interval)

    trials = _interleaved(
        {"bare": lambda: list(run(bare)), "jobs": lambda: list(run(scheduled))}, config.trials
    )
    bare_samples = [sample for one in trials["bare"] for sample in one]
    job_samples = [sample for one in trials["jobs"] for sample in one]
    return {
        "timers.bare_p50": _quantile(bare_samples, 0.50) * 1e3,
        "timers.bare_p99": _quantile(bare_samples, 0.99) * 1e3,
        "timers.jobs_p50": _quantile(job_samples, 0.50) * 1e3,
        "timers.jobs_p99": _quantile(job_samples, 0.99) * 1e3,
    }
