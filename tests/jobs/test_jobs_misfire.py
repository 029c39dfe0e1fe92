"""Missed fire times: misfire grace, coalescing, max_instances; each reported, never silent.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest
from apscheduler.triggers.date import DateTrigger
from jobtools import EPOCH, Recorder, _async_noop, close_to, fire_times, new_scheduler, virtual_time

from eventsched import (
    EventType,
    MissReason,
)
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


@virtual_time
async def test_run_date_past_grace_is_reported_missed_or_coalesced(unit: float) -> None:
    """A late fire time beyond grace is JOB_MISSED (misfire), or runs once with coalesce."""
    scheduler = new_scheduler()
    past = EPOCH - timedelta(seconds=10)
    scheduler.add_job(
        _async_noop, DateTrigger(past), id="strict", coalesce=False, misfire_grace_time=1
    )
    scheduler.add_job(_async_noop, DateTrigger(past), id="lenient", coalesce=True)
    recorder = Recorder(scheduler)
    async with scheduler:
        missed = await recorder.wait_count(EventType.JOB_MISSED, 1, 30 * unit, "strict")
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, 30 * unit, "lenient")
    assert missed[0].data["reason"] == MissReason.MISFIRE
    assert missed[0].data["count"] == 1
    assert list(missed[0].data["fire_times"]) == [past.isoformat()]
    assert missed[0].data["misfire_grace_time"] == 1
    assert recorder.of(EventType.JOB_STARTED, "strict") == []
    assert recorder.of(EventType.JOB_MISSED, "lenient") == []
    stats = scheduler.job_statistics()
    assert stats.missed == {
        "misfire": 1,
        "coalesced": 0,
        "max_instances": 0,
        "interrupted": 0,
        "not_saved": 0,
        "shutdown": 0,
        "withdrawn": 0,
    }
    assert stats.runs_completed == 1


@virtual_time
@pytest.mark.parametrize("coalesce", [False, True], ids=["misfire", "coalesce"])
async def test_wall_clock_jump_reports_every_missed_fire_time(unit: float, coalesce: bool) -> None:
    """After the wall clock jumps 10 intervals, the missed fire times are all reported."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(
        _async_noop,
        "interval",
        seconds=unit,
        id="tick",
        coalesce=coalesce,
        misfire_grace_time=unit / 2,
    )
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
        clock.advance(10 * unit)  # as if the machine had slept
        missed = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit)
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
    expected = [EPOCH + timedelta(seconds=k * unit) for k in range(2, 12)]
    report = missed[0].data
    assert report["reason"] == (MissReason.COALESCED if coalesce else MissReason.MISFIRE)
    assert report["count"] == 10
    assert all(map(close_to, map(datetime.fromisoformat, report["fire_times"]), expected))
    # Either way the latest fire time (12 intervals in, on time) runs exactly once.
    assert close_to(fire_times(done)[1], EPOCH + timedelta(seconds=12 * unit))
    reason = "coalesced" if coalesce else "misfire"
    assert scheduler.job_statistics().missed[reason] == 10


@virtual_time
async def test_max_instances_skips_are_reported(unit: float) -> None:
    """A fire time while max_instances runs are going is skipped as JOB_MISSED."""
    scheduler = new_scheduler()
    release = anyio.Event()

    async def slow() -> None:
        await release.wait()

    scheduler.add_job(slow, "interval", seconds=unit, id="slow", max_instances=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        missed = await recorder.wait_count(EventType.JOB_MISSED, 2, limit=30 * unit)
        assert scheduler.get_job("slow").running == 1
        release.set()
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
    first = missed[0].data
    assert first["reason"] == MissReason.MAX_INSTANCES
    assert (first["running"], first["max_instances"], first["count"]) == (1, 1, 1)
    started = fire_times(recorder.of(EventType.JOB_STARTED))
    skipped = [datetime.fromisoformat(e.data["fire_times"][0]) for e in missed[:2]]
    assert set(started).isdisjoint(skipped)
    assert scheduler.job_statistics().missed["max_instances"] >= 2


@virtual_time
async def test_replacing_a_job_keeps_its_runs_in_progress_against_max_instances(
    unit: float,
) -> None:
    """A job replaced while its run is in progress: the new one does not start a second."""
    scheduler = new_scheduler()
    running: list[int] = []
    most = 0
    release = anyio.Event()

    async def slow() -> None:
        nonlocal most
        running.append(1)
        most = max(most, len(running))
        try:
            await release.wait()
        finally:
            running.pop()

    scheduler.add_job(slow, "interval", seconds=unit, id="slow", max_instances=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_STARTED, 1, limit=30 * unit)
        scheduler.add_job(
            slow, "interval", seconds=unit, id="slow", max_instances=1, replace_existing=True
        )
        await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit)
        assert scheduler.get_job("slow").running == 1
        release.set()
    assert most == 1
    missed = recorder.of(EventType.JOB_MISSED)
    assert missed[0].data["reason"] == MissReason.MAX_INSTANCES


@virtual_time
async def test_a_job_replaced_twice_still_counts_the_first_ones_run(unit: float) -> None:
    """Replaced twice while the first definition's run goes on: the third definition
    counts that run against its max_instances, and runs once it has ended."""
    scheduler = new_scheduler()
    release = anyio.Event()
    calls: list[str] = []

    async def slow() -> None:
        calls.append("slow")
        await release.wait()

    async def quick() -> None:
        calls.append("quick")

    scheduler.add_job(slow, "interval", seconds=unit, id="job", max_instances=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_STARTED, 1, limit=30 * unit)
        for func in (quick, quick):
            scheduler.add_job(
                func, "interval", seconds=unit, id="job", max_instances=1, replace_existing=True
            )
        await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit)
        assert scheduler.get_job("job").running == 1
        assert calls == ["slow"]
        release.set()
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
        assert scheduler.get_job("job").running == 0
    assert calls[:2] == ["slow", "quick"]
    missed = recorder.of(EventType.JOB_MISSED)
    assert {e.data["reason"] for e in missed} == {MissReason.MAX_INSTANCES}
