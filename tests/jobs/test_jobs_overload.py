"""Overload, predictable and reported: misses counted per job and reason, one
``JOB_MISSED`` per job and pass, and the job scheduler's own events never crowding out
the user's (dropped as ``job_event`` when the queue is full, whatever the policy).
"""

from __future__ import annotations

import anyio
import pytest
from jobtools import Recorder, new_scheduler, virtual_time

from eventsched import Event, EventType, OverflowPolicy
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


@virtual_time
async def test_a_late_pass_reports_one_job_missed_per_job_with_all_its_reasons(
    unit: float,
) -> None:
    """The wall clock jumps 10 units: each job's due fire times make one JOB_MISSED in
    that pass, its count the sum of its reasons; the counters agree per job and in all."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    gate = anyio.Event()
    started = anyio.Event()

    async def stuck() -> None:  # max_instances=1: still running when the jump comes
        started.set()
        await gate.wait()

    async def quick() -> None:
        pass

    scheduler.add_job(stuck, "interval", seconds=unit, id="stuck")
    for n in range(3):
        scheduler.add_job(quick, "interval", seconds=unit, id=f"quick{n}")
    recorder = Recorder(scheduler)
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await started.wait()
            await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit, job_id="stuck")
            before = {
                job.id: len(recorder.of(EventType.JOB_MISSED, job.id))
                for job in scheduler.get_jobs()
            }
            clock.advance(10 * unit)
            for n in range(3):
                await recorder.wait_count(
                    EventType.JOB_MISSED,
                    before[f"quick{n}"] + 1,
                    limit=30 * unit,
                    job_id=f"quick{n}",
                )
            await recorder.wait_count(
                EventType.JOB_MISSED, before["stuck"] + 1, limit=30 * unit, job_id="stuck"
            )
            jobs = {job.id: job for job in scheduler.get_jobs()}
            stats = scheduler.job_statistics()
            gate.set()
    for n in range(3):
        (jump,) = recorder.of(EventType.JOB_MISSED, f"quick{n}")[before[f"quick{n}"] :][:1]
        assert jump.data["reason"] == "coalesced"
        assert jump.data["by_reason"] == {"coalesced": jump.data["count"]}
        assert jump.data["count"] >= 9
    # The stuck job: the jump's fire times are coalesced, and the one left to run is
    # over max_instances: both in one event.
    stuck_jump = recorder.of(EventType.JOB_MISSED, "stuck")[before["stuck"]]
    assert set(stuck_jump.data["by_reason"]) == {"coalesced", "max_instances"}
    assert stuck_jump.data["count"] == sum(stuck_jump.data["by_reason"].values())
    assert stuck_jump.data["running"] == 1
    # Per job and reason, the snapshot counts what the events reported; in all, the
    # statistics count the same.
    for job_id, job in jobs.items():
        reported: dict[str, int] = {}
        for event in recorder.of(EventType.JOB_MISSED, job_id):
            for reason, count in event.data["by_reason"].items():
                reported[reason] = reported.get(reason, 0) + count
        assert dict(job.missed) == reported
    totals: dict[str, int] = {}
    for job in jobs.values():
        for reason, count in job.missed.items():
            totals[reason] = totals.get(reason, 0) + count
    assert {r: n for r, n in stats.missed.items() if n} == totals


@pytest.mark.parametrize("policy", [OverflowPolicy.BLOCK, OverflowPolicy.DROP_OLDEST])
async def test_job_events_never_wait_for_or_evict_user_events(policy: OverflowPolicy) -> None:
    """A full queue (its handler stuck): a job still runs at once; its JOB_* events are
    dropped as job_event, the user's queued events stay (none evicted)."""
    scheduler = new_scheduler(queue_size=2, overflow=policy, workers=1)
    gate = anyio.Event()
    handling = anyio.Event()
    ran = anyio.Event()
    seen: list[Event] = []

    async def slow(event: Event) -> None:
        handling.set()
        await gate.wait()
        seen.append(event)

    async def job_seen(event: Event) -> None:
        seen.append(event)

    async def job() -> None:
        ran.set()

    scheduler.on("user", slow)
    scheduler.on(EventType.JOB_STARTED, job_seen)
    scheduler.on(EventType.JOB_COMPLETED, job_seen)
    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("user", {"n": 0})
            await handling.wait()  # the worker holds event 0
            await scheduler.emit("user", {"n": 1})
            await scheduler.emit("user", {"n": 2})  # the queue is full now
            scheduler.add_job(job, "date", id="now")
            await ran.wait()  # neither the pass nor the run waited for room
            await scheduler.jobs.wait_idle()
            stats = scheduler.statistics()
            gate.set()
    assert stats.dropped.get("job_event") == 2  # JOB_STARTED and JOB_COMPLETED
    assert stats.dropped.get("evicted", 0) == 0
    assert [e.data["n"] for e in seen if e.type == "user"] == [0, 1, 2]
    assert scheduler.job_statistics().runs_completed == 1
