"""Jobs at scale: the timeline (a heap of fire times), what a pass or a change costs, and
what a start with many saved jobs writes.

A pass of the scheduler task takes only the due jobs off the timeline, and a change
wakes the task only when it brings a fire time earlier than the one it sleeps until.
``JobScheduler.passes`` counts the passes (wake-ups) and ``Timeline.popped`` the items
a pass looked at, so the tests count work rather than time it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, timedelta

import anyio
import anyio.lowlevel
import pytest
from jobtools import EPOCH, Recorder, _async_noop, new_scheduler, virtual_time

from eventsched import EventScheduler, EventType, MemoryJobStore, SavedJob
from eventsched._jobs._entry import Entry, new_entry
from eventsched._jobs._timeline import Timeline
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


def entry(id: str, seconds: float) -> Entry:
    job = new_entry(
        _async_noop,
        "interval",
        id=id,
        name=None,
        args=(),
        kwargs=None,
        max_instances=1,
        misfire_grace_time=None,
        coalesce=True,
        timeout=None,
        jitter=None,
        timezone=UTC,
        paused=False,
        trigger_args={"seconds": 1},
    )
    job.set_next(EPOCH + timedelta(seconds=seconds))
    return job


# -- the timeline alone --------------------------------------------------------------------


def test_pop_due_takes_only_the_due_jobs_earliest_first() -> None:
    timeline = Timeline()
    jobs = [entry(f"j{i}", s) for i, s in enumerate([5, 1, 3, 2, 4])]
    for job in jobs:
        timeline.push(job)
    due = timeline.pop_due(EPOCH + timedelta(seconds=2))
    assert [job.id for job in due] == ["j1", "j3"]
    assert timeline.popped == 2  # the other three were not looked at
    assert timeline.earliest() == EPOCH + timedelta(seconds=3)


def test_changed_paused_and_removed_jobs_leave_stale_items_that_are_skipped() -> None:
    timeline = Timeline()
    moved, paused, removed, kept = (
        entry(n, s) for n, s in [("m", 1), ("p", 2), ("r", 3), ("k", 4)]
    )
    for job in (moved, paused, removed, kept):
        timeline.push(job)
    moved.set_next(EPOCH + timedelta(seconds=10))
    timeline.push(moved)
    paused.paused = True
    removed.removed = True
    assert timeline.earliest() == EPOCH + timedelta(seconds=4)
    assert [job.id for job in timeline.pop_due(EPOCH + timedelta(seconds=60))] == ["k", "m"]


def test_jobs_queued_with_reserved_tickets_come_due_in_order_with_the_others() -> None:
    """The start-up's way in (``reserve`` then ``filling``, see _resume): into an
    empty timeline, and into one that holds jobs already; a ticket set aside and not
    used is never handed out again, and a job pushed after is ordered with the rest."""
    for before in ([], [("early", 0.5), ("middle", 2.5)]):
        timeline = Timeline()
        for name, seconds in before:
            timeline.push(entry(name, seconds))
        jobs = [entry(f"j{s}", s) for s in (3, 1, 2)]
        ticket = reserved = timeline.reserve(5)  # two of them left unused
        with timeline.filling() as (heap, queued):
            for job in jobs:
                ticket += 1
                job.ticket = ticket
                queued[ticket] = job
                heap.append((job.fire_at.timestamp(), ticket))  # type: ignore[union-attr]
        late = entry("late", 4)
        timeline.push(late)
        assert late.ticket > reserved + 5  # past every reserved ticket
        assert len({job.ticket for job in [*jobs, late]}) == 4
        due = timeline.pop_due(EPOCH + timedelta(seconds=60))
        expected = sorted(
            [*before, ("j1", 1), ("j2", 2), ("j3", 3), ("late", 4)], key=lambda p: p[1]
        )
        assert [job.id for job in due] == [name for name, _ in expected]


def test_stale_items_never_outnumber_the_jobs_for_long() -> None:
    """Re-pushing the same jobs over and over keeps the heap proportional to them."""
    timeline = Timeline()
    jobs = [entry(f"j{i}", i) for i in range(100)]
    for round in range(50):
        for job in jobs:
            job.set_next(EPOCH + timedelta(seconds=1000 - round))
            timeline.push(job)
            timeline.compact(jobs, len(jobs))
    assert len(timeline) <= 2 * len(jobs) + 1
    assert len(timeline.pop_due(EPOCH + timedelta(days=1))) == len(jobs)


def test_jobs_of_one_definition_share_one_fingerprint() -> None:
    """One string per definition, however many jobs (~120 bytes a job less), and the
    same object whatever built it: a start-up compares them by identity."""
    first, second = entry("a", 60), entry("b", 61)
    assert first.fingerprint is second.fingerprint
    # Built again from pieces, as a row read back is: still the one object.
    assert sys.intern("".join(list(first.fingerprint))) is first.fingerprint


# -- the scheduler task --------------------------------------------------------------------


@virtual_time
async def test_a_pass_looks_only_at_the_due_jobs(unit: float) -> None:
    """With 2,000 far-off jobs and one fast one, each pass pops O(due) items, not all."""
    scheduler = new_scheduler(VirtualClock())
    jobs = scheduler.jobs
    for i in range(2000):
        scheduler.add_job(_async_noop, "interval", hours=5, id=f"far{i}")
    scheduler.add_job(_async_noop, "interval", seconds=unit, id="fast")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=60 * unit)
        popped, passes = jobs._timeline.popped, jobs.passes
        await recorder.wait_count(EventType.JOB_COMPLETED, 11, limit=120 * unit)
        popped, passes = jobs._timeline.popped - popped, jobs.passes - passes
    # Ten fire times of "fast": about one pass and one item each. The bounds leave room
    # for a loaded machine (a late wake-up, an extra pass) but not for a scan of 2,000.
    assert 10 <= passes <= 40
    assert popped <= 3 * passes


@virtual_time
async def test_adding_a_later_job_does_not_wake_the_task(unit: float) -> None:
    """add_job, pause_job and remove_job of later jobs leave the sleeping task asleep."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    jobs = scheduler.jobs
    scheduler.add_job(_async_noop, "interval", seconds=100 * unit, id="first")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(unit)  # the task sleeps until "first" (100 units away)
        passes = jobs.passes
        for i in range(500):
            scheduler.add_job(_async_noop, "interval", seconds=200 * unit, id=f"later{i}")
            await anyio.lowlevel.checkpoint()
        for i in range(0, 500, 2):
            scheduler.pause_job(f"later{i}")
            scheduler.remove_job(f"later{i + 1}")
            await anyio.lowlevel.checkpoint()
        await anyio.sleep(unit)
        assert jobs.passes == passes
        # An earlier one wakes it, and runs on time.
        run_date = clock.now() + timedelta(seconds=2 * unit)
        scheduler.add_job(_async_noop, "date", run_date=run_date, id="soon")
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=60 * unit)
        assert jobs.passes > passes
    assert done[0].data["job_id"] == "soon"


@virtual_time
async def test_idle_scheduler_never_wakes(unit: float) -> None:
    scheduler = new_scheduler(VirtualClock())
    jobs = scheduler.jobs
    scheduler.add_job(_async_noop, "cron", year=2999, id="never-soon")
    async with scheduler:
        await anyio.sleep(unit)
        passes = jobs.passes
        await anyio.sleep(20 * unit)
        assert jobs.passes == passes


# -- the job store at start-up -------------------------------------------------------------


class WritesStore(MemoryJobStore):
    """A memory store that notes the ids each save writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        self.written.extend(changes)
        return await super().save(changes)


def add_saved_jobs(scheduler: EventScheduler, changed: str | None = None) -> None:
    for i in range(100):
        hours = 6 if f"i{i}" == changed else 5
        scheduler.add_job(_async_noop, "interval", hours=hours, id=f"i{i}")
        scheduler.add_job(_async_noop, "cron", hour=3, minute=i % 60, id=f"c{i}")


async def test_a_start_rewrites_only_the_rows_that_changed() -> None:
    """Jobs resuming their saved schedule unchanged cost the store no write."""
    clock = VirtualClock()
    store = WritesStore()
    first = new_scheduler(clock)
    first.configure_jobs(store=store)
    add_saved_jobs(first)
    async with first:
        await first.jobs.flush_state()
        schedule = {job.id: job.next_fire_time for job in first.get_jobs()}
    assert len(set(store.written)) == 200
    store.written.clear()

    second = new_scheduler(clock)
    second.configure_jobs(store=store)
    add_saved_jobs(second, changed="i7")
    second.remove_job("c9")
    async with second:
        await second.jobs.flush_state()
        resumed = {job.id: job.next_fire_time for job in second.get_jobs()}
    assert sorted(store.written) == ["c9", "i7"]  # the new trigger, the removed job
    del schedule["c9"], schedule["i7"], resumed["i7"]
    assert resumed == schedule
