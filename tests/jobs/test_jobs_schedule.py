"""The schedule: adding, pausing, resuming and removing jobs, the decorator, shutdown.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from jobtools import (
    Recorder,
    StubEmitter,
    _async_noop,
    fire_times,
    new_scheduler,
    virtual_time,
)

import eventsched
import eventsched.testing
from eventsched import (
    ConflictingIdError,
    EventScheduler,
    EventType,
    JobLookupError,
    JobScheduler,
)
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


@virtual_time
async def test_job_added_while_running_wakes_the_scheduler(unit: float) -> None:
    """A job added while the scheduler sleeps until a far fire time runs on time."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(_async_noop, "interval", hours=5, id="far")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(unit)
        run_date = clock.now() + timedelta(seconds=2 * unit)
        scheduler.add_job(_async_noop, "date", run_date=run_date, id="soon")
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
    assert done[0].data["job_id"] == "soon"
    assert fire_times(done) == [run_date]


@virtual_time
async def test_pause_resume_and_remove_while_running(unit: float) -> None:
    """A paused job does not fire, a resumed one fires again, a removed one never more."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(_async_noop, "interval", seconds=unit, id="tick")
    recorder = Recorder(scheduler)

    def runs() -> int:
        return len(recorder.of(EventType.JOB_STARTED))

    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
        paused = scheduler.pause_job("tick")
        assert (paused.paused, paused.next_fire_time) == (True, None)
        before, paused_at = runs(), clock.now()
        await anyio.sleep(5 * unit)  # the behaviour under test: nothing fires meanwhile
        assert runs() == before
        resumed = scheduler.resume_job("tick")
        assert resumed.next_fire_time is not None
        assert resumed.next_fire_time > paused_at
        await recorder.wait_count(EventType.JOB_STARTED, before + 1, limit=30 * unit)
        assert fire_times(recorder.of(EventType.JOB_STARTED))[-1] > paused_at
        scheduler.remove_job("tick")
        assert scheduler.get_jobs() == []
        after = runs()
        await anyio.sleep(5 * unit)
        assert runs() == after
        with pytest.raises(JobLookupError, match="'tick'"):
            scheduler.remove_job("tick")
    assert recorder.of(EventType.JOB_MISSED) == []


@virtual_time
async def test_shutdown_lets_runs_finish_within_grace_then_aborts_the_rest(unit: float) -> None:
    """At shutdown no new runs start; runs finish within the grace period or are aborted."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock, grace_period=4 * unit)

    async def quick() -> str:
        await anyio.sleep(unit)
        return "done"

    async def slow() -> None:
        await anyio.sleep(1000 * unit)

    scheduler.add_job(quick, "date", id="quick")
    scheduler.add_job(slow, "date", id="slow")
    scheduler.add_job(_async_noop, "interval", seconds=unit / 2, id="tick")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_STARTED, 2, limit=30 * unit)
        stopping_at = clock.now()
    assert [e.data["result"] for e in recorder.of(EventType.JOB_COMPLETED, "quick")] == ["'done'"]
    assert all(at <= stopping_at for at in fire_times(recorder.of(EventType.JOB_STARTED)))
    stats = scheduler.job_statistics()
    assert stats.runs_aborted == 1
    assert stats.running == 0
    assert stats.runs_started == stats.runs_completed + stats.runs_failed + stats.runs_aborted
    assert scheduler.statistics().unaccounted == 0
    assert recorder.of(EventType.JOB_COMPLETED, "slow") == []


async def test_duplicate_id_is_an_error_unless_replace_existing() -> None:
    """Adding a second job with the same id raises, unless replace_existing=True."""
    scheduler = EventScheduler()
    scheduler.add_job(_async_noop, "interval", seconds=10, id="demo_job")
    async with scheduler:
        with pytest.raises(ConflictingIdError, match="'demo_job'"):
            scheduler.add_job(_async_noop, "interval", seconds=20, id="demo_job")
        scheduler.add_job(_async_noop, "interval", seconds=20, id="demo_job", replace_existing=True)
        (job,) = scheduler.get_jobs()
        assert (job.id, job.trigger) == ("demo_job", "interval[0:00:20]")
        assert job.next_fire_time is not None


def test_decorator_schedules_the_function_and_returns_it() -> None:
    """@scheduler.job(...) schedules the function under its qualified name, unchanged."""
    scheduler = JobScheduler(StubEmitter())

    @scheduler.job("cron", crontab="*/5 * * * *", timezone="Europe/Paris")
    async def report() -> None:
        pass

    (job,) = scheduler.get_jobs()
    assert job.id.endswith("test_decorator_schedules_the_function_and_returns_it.<locals>.report")
    assert "Europe/Paris" not in job.trigger  # the fields, the zone is in the fingerprint
    assert job.next_fire_time is None  # not started yet
    assert callable(report)


def test_the_job_decorator_without_parentheses_is_an_error() -> None:
    """``@scheduler.job`` with no trigger would schedule nothing and replace the function."""
    scheduler = EventScheduler()
    with pytest.raises(TypeError, match=r"@job needs a trigger.*no parentheses"):

        @scheduler.job  # type: ignore[arg-type]
        async def report() -> None:
            pass

    assert scheduler.get_jobs() == []


def test_job_names_are_exported() -> None:
    """The job API is public from eventsched and eventsched.testing."""
    for name in ("JobScheduler", "Job", "JobStatistics", "MissReason", "JobStateError", "Clock"):
        assert name in eventsched.__all__
        assert hasattr(eventsched, name)
    for name in eventsched.testing.__all__:
        assert hasattr(eventsched.testing, name)


def test_snapshot_record_is_what_the_constructor_makes() -> None:
    # Snapshots are built through Job's slots (job_record), not its __init__: each value
    # must land in its own field, in Job's order.
    from dataclasses import fields
    from datetime import UTC, datetime

    from eventsched._jobs._records import Job, job_record

    values = (
        "id",
        "name",
        "trigger",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
        True,
        2,
        3,
        4,
        5,
        False,
        6.5,
        7.5,
        {"misfire": 8},
    )
    assert len(values) == len(fields(Job))
    record = job_record(*values)
    assert type(record) is Job
    assert record == Job(*values)
    assert repr(record) == repr(Job(*values))
    with pytest.raises(ValueError, match="shorter"):  # a field left out
        job_record(*values[:-1])
