"""Triggers: interval, cron and date jobs fire when their trigger says; bad arguments
are clear errors.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from apscheduler.triggers.date import DateTrigger
from jobtools import (
    EPOCH,
    Recorder,
    StubEmitter,
    _async_noop,
    close_to,
    fire_times,
    new_scheduler,
    virtual_time,
)
from virtualloop import BOTH_VIRTUAL

import eventsched
import eventsched.testing
from eventsched import (
    EventScheduler,
    EventType,
    JobScheduler,
)
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_interval_job_fires_once_per_interval() -> None:
    """An interval job fires one interval after start, then every interval, in order,
    each exactly on time (virtual time on both backends: in real time, a loaded machine
    stalling the loop past two fire times coalesces them, rightly, and fails the test)."""
    unit = 1.0
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    ran_at: list[datetime] = []

    async def tick() -> int:
        ran_at.append(clock.now())
        return len(ran_at)

    scheduler.add_job(tick, "interval", seconds=unit, id="tick")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 5, limit=40 * unit)
    expected = [EPOCH + timedelta(seconds=k * unit) for k in range(1, 6)]
    assert all(map(close_to, fire_times(done[:5]), expected))
    assert [e.data["result"] for e in done[:5]] == ["1", "2", "3", "4", "5"]
    for at, due in zip(ran_at, expected, strict=False):
        assert 0 <= (at - due).total_seconds() < 1e-5
    for started, completed in zip(recorder.of(EventType.JOB_STARTED), done, strict=False):
        assert started.correlation_id == completed.correlation_id
        assert recorder.events.index(started) < recorder.events.index(completed)


@virtual_time
async def test_cron_job_fires_on_whole_seconds(unit: float) -> None:
    """A cron job with second='*' fires exactly on each whole second."""
    scheduler = new_scheduler(VirtualClock(EPOCH - timedelta(seconds=0.05)))
    scheduler.add_job(_async_noop, "cron", second="*", id="each_second")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=5)
    assert fire_times(done[:2]) == [EPOCH, EPOCH + timedelta(seconds=1)]


@virtual_time
async def test_date_job_runs_once_then_leaves_the_schedule(unit: float) -> None:
    """A date job runs once at its run date and is then no longer scheduled."""
    scheduler = new_scheduler()
    run_date = EPOCH + timedelta(seconds=3 * unit)
    scheduler.add_job(_async_noop, "date", run_date=run_date, id="once")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
        assert scheduler.get_jobs() == []
        await anyio.sleep(3 * unit)  # time passes: nothing more may happen
    assert fire_times(done) == [run_date]
    assert len(recorder.of(EventType.JOB_STARTED)) == 1


@pytest.mark.parametrize(
    ("trigger", "options", "error", "match"),
    [
        ("hourly", {}, ValueError, "'hourly' is not one of"),
        ("interval", {"minute": 5}, TypeError, r"unknown option\(s\) \['minute'\]"),
        ("cron", {"crontab": "* * * * *", "hour": 1}, ValueError, "cannot be combined"),
        ("cron", {"crontab": "* * *"}, ValueError, "Wrong number of fields"),
        (DateTrigger(EPOCH), {"seconds": 1}, TypeError, "trigger instance"),
        ("interval", {"seconds": 1, "max_instances": 0}, ValueError, "max_instances=0"),
        ("interval", {"seconds": 1, "timeout": -1}, ValueError, "timeout=-1"),
        ("interval", {"seconds": 1, "timezone": "Mars/Olympus"}, ValueError, "Mars/Olympus"),
        # APScheduler would make these one second, or spin on a negative one.
        ("interval", {"seconds": -1}, ValueError, "must be positive"),
        ("interval", {"seconds": 0}, ValueError, "must be positive"),
        ("interval", {"seconds": 1e-9}, ValueError, "must be positive"),
        ("interval", {"minutes": 1, "seconds": -60}, ValueError, "must be positive"),
        ("interval", {}, ValueError, "must be positive"),
        ("interval", {"seconds": float("inf")}, ValueError, r"\{'seconds': inf\}"),
        ("interval", {"seconds": "10"}, TypeError, r"seconds='10' must be a number"),
        ("cron", {"crontab": 5}, TypeError, "crontab=5 must be a string"),
    ],
)
def test_bad_job_arguments_are_clear_errors(
    trigger: Any, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Unknown triggers, options or values raise at add_job, naming what is wrong."""
    with pytest.raises(error, match=match) as raised:
        JobScheduler(StubEmitter()).add_job(_async_noop, trigger, id="x", **options)
    assert "1970" not in str(raised.value)  # the internal placeholder start_date


async def test_a_job_never_starts_before_its_fire_time_in_real_time() -> None:
    """On the real clocks (loop and wall), every run starts at or after its fire time."""
    scheduler = EventScheduler()
    starts: list[tuple[float, datetime]] = []
    done = anyio.Event()

    async def record() -> None:
        event = eventsched.current_event()
        assert event is not None
        starts.append((time.time(), datetime.fromisoformat(event.data["fire_time"])))
        if len(starts) == 5:
            done.set()

    scheduler.add_job(record, "interval", seconds=0.02, id="punctual")
    with anyio.fail_after(10):
        async with scheduler:
            await done.wait()
    for started, fire_time in starts:
        # Microsecond datetimes against float seconds: allow one microsecond.
        assert started >= fire_time.timestamp() - 1e-6, (started, fire_time)
