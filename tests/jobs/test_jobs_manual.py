"""Run now (run_job) and preview (next_fire_times), in virtual time on asyncio and trio."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest
from jobtools import EPOCH, Recorder, _async_noop, fire_times, new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import EventType, JobBusyError, JobLookupError, SchedulerStateError
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio
both_virtual = pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)


def _at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@both_virtual
async def test_run_job_runs_now_marked_manual_and_leaves_the_schedule() -> None:
    """A manual run at 5 s of a 60 s interval job: counted, manual, next fire still 60 s."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(_async_noop, "interval", seconds=60, id="j")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(5)
        snapshot = scheduler.run_job("j")
        assert snapshot.next_fire_time == _at(60)
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=10)
        assert scheduler.get_job("j").next_fire_time == _at(60)
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=100)
    started = recorder.of(EventType.JOB_STARTED)
    assert [e.data["manual"] for e in started] == [True, False]
    assert [e.data["manual"] for e in recorder.of(EventType.JOB_COMPLETED)] == [True, False]
    assert fire_times(started) == [_at(5), _at(60)]
    assert started[0].correlation_id != started[1].correlation_id
    stats = scheduler.job_statistics()
    assert (stats.runs_started, stats.runs_manual, stats.runs_completed) == (2, 1, 2)


@both_virtual
async def test_a_failing_manual_run_is_reported_manual_and_retried() -> None:
    """JOB_FAILED says manual too; the job's retries apply to a manual run."""
    scheduler = new_scheduler()

    async def broken() -> None:
        raise RuntimeError("no")

    scheduler.add_job(broken, "interval", hours=1, id="j", retries=1, retry_backoff=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        scheduler.run_job("j")
        failed = await recorder.wait_count(EventType.JOB_FAILED, 2, limit=10)
    assert [(e.data["manual"], e.data["attempt"]) for e in failed] == [(True, 1), (True, 2)]


@both_virtual
async def test_run_job_respects_max_instances() -> None:
    """With max_instances runs in progress, run_job raises JobBusyError and starts nothing."""
    scheduler = new_scheduler()
    release = anyio.Event()

    async def blocks() -> None:
        await release.wait()

    scheduler.add_job(blocks, "interval", hours=1, id="j")
    recorder = Recorder(scheduler)
    async with scheduler:
        scheduler.run_job("j")
        await recorder.wait_count(EventType.JOB_STARTED, 1, limit=10)
        with pytest.raises(JobBusyError, match="max_instances=1"):
            scheduler.run_job("j")
        release.set()
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=10)
    stats = scheduler.job_statistics()
    assert (stats.runs_started, stats.runs_manual) == (1, 1)


@both_virtual
async def test_run_job_needs_a_running_scheduler_and_a_known_job() -> None:
    scheduler = new_scheduler()
    scheduler.add_job(_async_noop, "interval", hours=1, id="j")
    with pytest.raises(SchedulerStateError, match="running scheduler"):
        scheduler.run_job("j")
    async with scheduler:
        with pytest.raises(JobLookupError):
            scheduler.run_job("nope")
    with pytest.raises(SchedulerStateError, match="stopped"):
        scheduler.run_job("j")
    assert scheduler.job_statistics().runs_started == 0


def test_preview_before_start_assumes_a_start_now() -> None:
    """Interval: one interval after start; cron: its next times; date: its one time."""
    scheduler = new_scheduler(VirtualClock())
    scheduler.add_job(_async_noop, "interval", seconds=10, id="every10")
    scheduler.add_job(_async_noop, "cron", crontab="0 */6 * * *", id="cron")
    scheduler.add_job(_async_noop, "date", run_date=_at(30), id="once")
    before = scheduler.get_jobs()
    # The virtual clock reads the loop's clock: outside one, preview at the epoch.
    scheduler.configure_jobs(clock=_FixedClock(EPOCH))
    assert scheduler.next_fire_times("every10", 3) == [_at(10), _at(20), _at(30)]
    assert scheduler.next_fire_times("cron") == [_at(h * 3600) for h in (0, 6, 12, 18, 24)]
    assert scheduler.next_fire_times("once", 4) == [_at(30)]
    assert scheduler.get_jobs() == before  # nothing changed, nothing deferred was fixed
    with pytest.raises(ValueError, match="count=0"):
        scheduler.next_fire_times("every10", 0)
    with pytest.raises(JobLookupError):
        scheduler.next_fire_times("nope")


@both_virtual
async def test_preview_while_running_lists_the_fire_times_that_then_run() -> None:
    """The preview taken at 15 s is what runs next; a paused job's starts from now."""
    scheduler = new_scheduler()
    scheduler.add_job(_async_noop, "interval", seconds=10, id="j")
    scheduler.add_job(_async_noop, "interval", seconds=7, id="paused", paused=True)
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(15)
        preview = scheduler.next_fire_times("j", 4)
        # Its schedule (every 7 s from 7 s) as a resume now would take it up.
        paused = scheduler.next_fire_times("paused", 2)
        assert paused == [_at(21), _at(28)]
        assert recorder.of(EventType.JOB_STARTED, "paused") == []
        assert scheduler.resume_job("paused").next_fire_time == paused[0]
        await recorder.wait_count(EventType.JOB_COMPLETED, 5, limit=60, job_id="j")
    assert preview == [_at(20), _at(30), _at(40), _at(50)]
    assert fire_times(recorder.of(EventType.JOB_STARTED, "j"))[1:5] == preview


class _FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now
