"""Job run lateness and duration: fixed-bucket histograms, counted at each run.

Time-based tests run on asyncio in real time (generous bounds) and on trio in virtual
time (exact). ``unit`` is one interval: 1 s of virtual time on trio, 50 ms of real time
on asyncio.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from jobtools import Recorder, is_virtual, new_scheduler, unit_of, virtual_time

from eventsched import EventType, RunHistogram
from eventsched._jobs._timings import DURATION_BUCKETS, LATENESS_BUCKETS, Buckets


def test_a_value_goes_to_the_first_bucket_whose_bound_holds_it() -> None:
    buckets = Buckets((0.1, 1.0, 10.0))
    for seconds in (0.0, 0.1, 0.5, 1.0, 1.5, 10.0, 11.0, 1e9):
        buckets.observe(seconds)
    histogram = buckets.snapshot()
    assert histogram.counts == (2, 2, 2, 2)  # a value equal to a bound is in its bucket
    assert histogram.count == 8
    assert histogram.sum == pytest.approx(1e9 + 24.1)
    assert histogram.cumulative() == [(0.1, 2), (1.0, 4), (10.0, 6), (math.inf, 8)]


def test_an_empty_histogram_has_every_bucket_at_zero() -> None:
    histogram = Buckets(LATENESS_BUCKETS).snapshot()
    assert histogram == RunHistogram(LATENESS_BUCKETS, (0,) * (len(LATENESS_BUCKETS) + 1), 0.0)
    assert histogram.cumulative()[-1] == (math.inf, 0)


@pytest.mark.parametrize("bounds", [(1.0, 0.5), (1.0, 1.0)])
def test_bounds_must_ascend(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        Buckets(bounds)


def _bucket_of(bounds: tuple[float, ...], seconds: float) -> int:
    return next((i for i, bound in enumerate(bounds) if seconds <= bound), len(bounds))


@pytest.mark.anyio
@virtual_time
async def test_every_run_is_timed_once(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    """Each started run adds one lateness; each run that ended adds its duration."""
    unit = unit_of(anyio_backend)
    scheduler = new_scheduler()
    took = 3 * unit

    async def slow() -> None:
        await anyio.sleep(took)

    async def broken() -> None:
        raise ValueError("fails at once")

    scheduler.add_job(slow, "interval", seconds=10 * unit, id="slow")
    scheduler.add_job(broken, "interval", seconds=10 * unit, id="broken")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=600 * unit, job_id="slow")
        await recorder.wait_count(EventType.JOB_FAILED, 2, limit=600 * unit, job_id="broken")
    # Stopped: every run has ended (a run aborted by shutdown has a lateness, no duration).
    timings = scheduler.job_timings()
    stats = scheduler.job_statistics()
    finished = stats.runs_completed + stats.runs_failed
    assert timings.duration.count == finished >= 4
    assert timings.lateness.count == stats.runs_started
    assert timings.lateness.bounds == LATENESS_BUCKETS
    assert timings.duration.bounds == DURATION_BUCKETS
    completed = [e.data["duration"] for e in recorder.of(EventType.JOB_COMPLETED)]
    failed = [e.data["duration"] for e in recorder.of(EventType.JOB_FAILED)]
    # The durations are the ones the JOB_* events report, bucket by bucket.
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    for seconds in completed + failed:
        expected[_bucket_of(DURATION_BUCKETS, seconds)] += 1
    if len(completed) + len(failed) == finished:  # no run ended after the snapshot
        assert list(timings.duration.counts) == expected
        assert timings.duration.sum == pytest.approx(sum(completed) + sum(failed))
    assert all(seconds >= took for seconds in completed)
    if is_virtual(anyio_backend):
        # Virtual time: every run starts at its fire time, and a sleep takes exactly it.
        assert timings.lateness.counts[0] == timings.lateness.count
        assert timings.lateness.sum == pytest.approx(0.0, abs=1e-3)
        assert sorted(completed) == pytest.approx([took] * len(completed))
