"""Retries with backoff: each retry a run of its own, in virtual time on asyncio and trio."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest
from jobtools import EPOCH, Recorder, new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import Backoff, EventType, JobStatistics, format_summary
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio
both_virtual = pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)


def _flaky(clock: VirtualClock, fail: int, calls: list[datetime]):  # type: ignore[no-untyped-def]
    async def job() -> str:
        calls.append(clock.now())
        if len(calls) <= fail:
            raise ConnectionError(f"attempt {len(calls)} failed")
        return "ok"

    return job


@both_virtual
async def test_failed_run_is_retried_after_each_backoff_delay_in_one_chain() -> None:
    """Two failures, then success: attempts at 0, +2 s, +2+6 s; one correlation id."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    calls: list[datetime] = []
    backoff = Backoff(initial=2, factor=3, max_delay=100)
    scheduler.add_job(_flaky(clock, 2, calls), "date", id="flaky", retries=3, retry_backoff=backoff)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=60)
    assert calls == [EPOCH, EPOCH + timedelta(seconds=2), EPOCH + timedelta(seconds=8)]
    started = recorder.of(EventType.JOB_STARTED)
    failed = recorder.of(EventType.JOB_FAILED)
    retries = recorder.of(EventType.JOB_RETRY)
    completed = recorder.of(EventType.JOB_COMPLETED)
    assert [e.data["attempt"] for e in started] == [1, 2, 3]
    assert [e.data["attempt"] for e in failed] == [1, 2]
    assert [(e.data["attempt"], e.data["delay"]) for e in retries] == [(2, 2.0), (3, 6.0)]
    assert retries[0].data["error"] == "attempt 1 failed"
    assert completed[0].data["attempt"] == 3
    # Every attempt's fire time is the first one's; all share its correlation id.
    assert {e.data["fire_time"] for e in started + retries + completed} == {EPOCH.isoformat()}
    chain = {e.correlation_id for e in started + failed + retries + completed}
    assert chain == {started[0].correlation_id}
    # A retry's JOB_STARTED names its JOB_RETRY as the cause.
    assert [e.causation_id for e in started[1:]] == [r.id for r in retries]
    stats = scheduler.job_statistics()
    assert (stats.runs_started, stats.runs_retried) == (3, 2)
    assert (stats.runs_completed, stats.runs_failed, stats.runs_aborted) == (1, 2, 0)
    assert scheduler.statistics().unaccounted == 0


@both_virtual
async def test_retries_run_out_and_the_schedule_goes_on() -> None:
    """retries=2 with a fixed 1.5 s delay: three attempts per fire time, then the next one."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    calls: list[datetime] = []
    scheduler.add_job(
        _flaky(clock, 100, calls), "interval", seconds=10, id="down", retries=2, retry_backoff=1.5
    )
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_FAILED, 6, limit=60)
    offsets = [(at - EPOCH).total_seconds() for at in calls]
    assert offsets == [10, 11.5, 13, 20, 21.5, 23]
    retries = recorder.of(EventType.JOB_RETRY)
    assert [e.data["attempt"] for e in retries] == [2, 3, 2, 3]
    assert {e.data["delay"] for e in retries} == {1.5}
    assert scheduler.job_statistics().runs_retried == 4


@both_virtual
async def test_a_timeout_is_a_failure_that_is_retried() -> None:
    """A run cut short by its timeout is retried like one that raised."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    calls: list[datetime] = []

    async def slow_then_fast() -> None:
        calls.append(clock.now())
        if len(calls) == 1:
            await anyio.sleep(100)

    scheduler.add_job(slow_then_fast, "date", id="slow", timeout=5, retries=1, retry_backoff=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=60)
    failed = recorder.of(EventType.JOB_FAILED)
    assert [e.data["reason"] for e in failed] == ["timeout"]
    assert recorder.of(EventType.JOB_RETRY)[0].data["error"] == failed[0].data["error"]
    assert calls == [EPOCH, EPOCH + timedelta(seconds=6)]
    assert scheduler.job_statistics().runs_timed_out == 1


@both_virtual
async def test_a_waiting_retry_holds_its_instance_slot() -> None:
    """While a retry waits, fire times of the job are missed (max_instances), not overlapped."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    calls: list[datetime] = []
    scheduler.add_job(
        _flaky(clock, 1, calls), "interval", seconds=2, id="j", retries=1, retry_backoff=5
    )
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=60)
        assert scheduler.get_job("j").running == 0
    offsets = [(at - EPOCH).total_seconds() for at in calls]
    # 2: fails; the retry waits until 7: fire times 4 and 6 are missed; 8 runs.
    assert offsets == [2, 7, 8]
    missed = recorder.of(EventType.JOB_MISSED)
    assert [e.data["reason"] for e in missed] == ["max_instances", "max_instances"]
    assert [e.data["first_fire_time"] for e in missed] == [
        (EPOCH + timedelta(seconds=s)).isoformat() for s in (4, 6)
    ]


@both_virtual
async def test_shutdown_aborts_a_waiting_retry_at_once_and_counts_it(job_log: list[str]) -> None:
    """A retry due in 1000 s does not hold shutdown up: it ends at once, counted aborted."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    calls: list[datetime] = []
    scheduler.add_job(_flaky(clock, 1, calls), "date", id="j", retries=1, retry_backoff=1000)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_RETRY, 1, limit=60)
        assert scheduler.job_statistics().running == 1
    # At once, not after the grace period (5 s) that would cancel it otherwise.
    assert (clock.now() - EPOCH).total_seconds() < 1
    assert len(calls) == 1
    stats = scheduler.job_statistics()
    assert (stats.runs_started, stats.runs_retried, stats.runs_aborted) == (2, 1, 1)
    assert stats.runs_started == stats.runs_completed + stats.runs_failed + stats.runs_aborted
    assert stats.running == 0
    aborted = [line for line in job_log if "waiting to retry at shutdown" in line]
    assert len(aborted) == 1
    assert "attempt 2" in aborted[0]


def test_backoff_delays_grow_to_the_cap_and_jitter_stays_below() -> None:
    """initial * factor ** (n - 1), capped; jitter only takes away, never past the cap."""
    backoff = Backoff(initial=1, factor=2, max_delay=10)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert Backoff(initial=3, factor=1).delay(50) == 3
    assert Backoff(initial=1, factor=10, max_delay=60).delay(10**6) == 60
    jittered = Backoff(initial=8, factor=1, max_delay=8, jitter=0.5)
    delays = {jittered.delay(1) for _ in range(200)}
    assert all(4 <= d <= 8 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries=-1"),
        ({"retries": 1.5}, "retries=1.5"),
        ({"retries": 0, "retry_backoff": 2}, "needs retries="),
        ({"retries": 1, "retry_backoff": -1}, "retry_backoff=-1"),
        ({"retries": 1, "retry_backoff": "1s"}, "retry_backoff='1s'"),
    ],
)
def test_bad_retry_options_are_refused_naming_the_argument(
    options: dict[str, object], message: str
) -> None:
    scheduler = new_scheduler()
    with pytest.raises(ValueError, match=message):
        scheduler.add_job(_flaky(VirtualClock(), 0, []), "date", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": -1}, "initial=-1"),
        ({"factor": 0.5}, "factor=0.5"),
        ({"jitter": 2}, "jitter=2"),
        ({"initial": 10, "max_delay": 5}, "max_delay=5"),
    ],
)
def test_bad_backoff_is_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**options)


def test_summary_names_retries_and_manual_runs_among_the_runs_started() -> None:
    scheduler = new_scheduler()
    jobs = JobStatistics(
        jobs=1,
        running=0,
        runs_started=5,
        runs_completed=5,
        runs_failed=0,
        runs_timed_out=0,
        runs_aborted=0,
        missed={},
        runs_retried=2,
        runs_manual=1,
    )
    rows = format_summary(scheduler.statistics(), jobs)
    started = [row for row in rows if row.startswith("job runs started")]
    assert len(started) == 1
    assert started[0].endswith("  5 (2 retries, 1 manual)")
