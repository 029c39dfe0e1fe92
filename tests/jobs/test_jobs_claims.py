"""At most once per fire time (issue 15, item 1), through the JobStore interface.

A recording store stands in for a real one: the tests see what the scheduler saves and
when, in memory, so they run on both backends in virtual time. The SQLite store and a
real ``kill -9`` are in ``test_jobs_crash.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from jobtools import EPOCH, Recorder, RecordingStore, new_scheduler, virtual_time

from eventsched import (
    EventScheduler,
    EventType,
    JobStore,
    MemoryJobStore,
    MissReason,
    SavedJob,
)
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


def with_store(store: JobStore) -> EventScheduler:
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    return scheduler


def test_the_stores_are_job_stores() -> None:
    assert isinstance(MemoryJobStore(), JobStore)
    assert isinstance(RecordingStore(), JobStore)


@virtual_time
async def test_a_run_starts_only_after_its_claim_is_saved() -> None:
    """When the job's code runs, the store already holds its fire time as running."""
    store = RecordingStore()
    scheduler = with_store(store)
    seen: list[SavedJob] = []
    run_date = EPOCH + timedelta(seconds=1)

    async def job() -> None:
        seen.append(store.state("once"))

    scheduler.add_job(job, "date", run_date=run_date, id="once")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30)
    (during,) = seen
    assert during.running == (run_date,)
    assert during.last_fire_time == run_date
    assert during.next_fire_time is None
    assert store.state("once").running == ()  # the outcome cleared the claim


@virtual_time
async def test_the_claims_of_one_pass_are_one_save() -> None:
    """Twenty jobs due at once: their claims go to the store in one transaction."""
    store = RecordingStore()
    scheduler = with_store(store)
    run_date = EPOCH + timedelta(seconds=1)

    async def job() -> None:
        pass

    for n in range(20):
        scheduler.add_job(job, "date", run_date=run_date, id=f"job{n}")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 20, limit=30)
    claiming = [
        save for save in store.saves if any(s is not None and s.running for s in save.values())
    ]
    assert len(claiming) == 1
    assert sorted(claiming[0]) == sorted(f"job{n}" for n in range(20))


@virtual_time
async def test_a_run_cut_short_by_a_crash_is_reported_interrupted_not_run() -> None:
    """A saved claim with no outcome: JOB_MISSED (interrupted) at start, never run again."""
    fire_time = EPOCH - timedelta(seconds=5)
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    scheduler = new_scheduler()
    # The fingerprint of the same job, as a previous process saved it.
    scheduler.add_job(job, "date", run_date=fire_time, id="once")
    fingerprint = scheduler.jobs._entries["once"].fingerprint
    store = RecordingStore({"once": SavedJob(fingerprint, fire_time, None, running=(fire_time,))})
    scheduler.configure_jobs(store=store)
    recorder = Recorder(scheduler)
    async with scheduler:
        (missed,) = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30)
        assert scheduler.get_jobs() == []  # its schedule is over: nothing left to run
    assert missed.data["reason"] == MissReason.INTERRUPTED
    assert list(missed.data["fire_times"]) == [fire_time.isoformat()]
    assert ran == []
    assert recorder.of(EventType.JOB_STARTED) == []
    assert scheduler.job_statistics().missed["interrupted"] == 1
    assert store.state("once").running == ()  # reported once, not at every start


@virtual_time
async def test_a_claim_the_store_cannot_save_does_not_run() -> None:
    """A failing save: the run does not start (at most once) and is reported not_saved."""
    store = RecordingStore()
    store.failing = True
    scheduler = with_store(store)
    ran: list[datetime] = []

    async def job() -> None:
        ran.append(EPOCH)

    scheduler.add_job(job, "date", run_date=EPOCH + timedelta(seconds=1), id="once")
    recorder = Recorder(scheduler)
    async with scheduler:
        (missed,) = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30)
        store.failing = False
    assert missed.data["reason"] == MissReason.NOT_SAVED
    assert ran == []
    assert store.state("once").running == ()


@virtual_time
async def test_a_fire_time_another_process_claimed_does_not_run_here() -> None:
    """A shared store refuses the claim (compare-and-set lost): this process skips it."""
    store = RecordingStore()
    store.refuse = frozenset({"shared"})
    scheduler = with_store(store)
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    scheduler.add_job(job, "interval", seconds=1, id="shared")
    scheduler.add_job(job, "interval", seconds=1, id="mine")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 3, limit=30)
    assert {e.data["job_id"] for e in recorder.of(EventType.JOB_STARTED)} == {"mine"}
    assert recorder.of(EventType.JOB_MISSED) == []


async def test_a_store_is_locked_loaded_and_closed_in_order() -> None:
    calls: list[str] = []

    class Tracing(MemoryJobStore):
        async def lock(self) -> None:
            calls.append("lock")

        async def load(self) -> dict[str, SavedJob]:
            calls.append("load")
            return {}

        async def close(self) -> None:
            calls.append("close")

    scheduler = EventScheduler()
    scheduler.configure_jobs(store=Tracing(), clock=VirtualClock())
    async with scheduler:
        pass
    assert calls == ["lock", "load", "close"]


def test_a_store_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match="not a JobStore"):
        EventScheduler().configure_jobs(store=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        EventScheduler().configure_jobs(store=MemoryJobStore(), state_file="x.sqlite")


async def test_a_job_removed_before_start_leaves_the_store() -> None:
    store = RecordingStore({"gone": SavedJob("interval", None, EPOCH)})
    scheduler = with_store(store)

    async def job() -> None:
        pass

    scheduler.add_job(job, "interval", seconds=1, id="gone")
    scheduler.remove_job("gone")
    async with scheduler:
        pass
    assert "gone" not in await store.load()
