"""What a run costs at scale: lanes instead of a task per run, one timer per slice of
wall time instead of one per run, no ``JOB_*`` event built that nobody would receive
(its lineage still there when asked for), the default store saved at close.

The tests count work (lane tasks spawned, events emitted), never time it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from jobtools import (
    EPOCH,
    RecordingStore,
    is_virtual,
    lateness_of_runs,
    new_scheduler,
    virtual_time,
)
from virtualloop import BOTH_VIRTUAL

from eventsched import (
    Event,
    EventScheduler,
    EventType,
    MemoryJobStore,
    SavedJob,
    SQLiteJobStore,
    current_event,
)
from eventsched._jobs import _alarms, _lanes, _parking
from eventsched._jobs._alarms import QUANTUM, Alarms
from eventsched._jobs._entry import Entry
from eventsched._jobs._lanes import MAX_IDLE, Lanes
from eventsched._jobs._parking import on_trio
from eventsched.testing import VirtualClock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.anyio


class Counting:
    """An async job that counts its runs and says when it has run ``target`` times."""

    def __init__(self, target: int) -> None:
        self.runs = 0
        self.target = target
        self.done = anyio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs >= self.target:
            self.done.set()


async def _twenty_jobs_five_runs_each(
    unit: float, scheduler: EventScheduler, inside: Callable[[], None] = lambda: None
) -> None:
    """Run 20 jobs firing together every ``unit``, until each has run 5 times; call
    ``inside`` then, the scheduler still running."""
    jobs = [Counting(5) for _ in range(20)]
    for n, job in enumerate(jobs):
        scheduler.add_job(job, "interval", seconds=unit, id=f"j{n}")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            for job in jobs:
                await job.done.wait()
        inside()


@virtual_time
async def test_runs_reuse_lanes_instead_of_a_task_each(unit: float) -> None:
    """20 jobs firing together, 5 times: at most 20 lane tasks for the 100 runs."""
    scheduler = new_scheduler()

    def check_lanes() -> None:
        lanes = scheduler.jobs._runs._lanes
        assert lanes is not None
        # A lane is spawned only when none is idle: never more than the most runs at
        # once (20), against 100 with a task per run.
        assert lanes.spawned <= 20

    await _twenty_jobs_five_runs_each(unit, scheduler, check_lanes)
    stats = scheduler.job_statistics()
    assert stats.runs_started == stats.runs_completed >= 100


@virtual_time
async def test_job_events_nobody_receives_are_not_built(unit: float) -> None:
    """No handler: runs, failures and misses are counted in JobStatistics, and no
    JOB_* event reaches the event ledger."""
    scheduler = new_scheduler()
    ok = Counting(3)
    gate = anyio.Event()

    async def slow() -> None:  # max_instances=1: its next fire times are missed
        await gate.wait()

    async def broken() -> None:
        raise ValueError("no")

    scheduler.add_job(ok, "interval", seconds=unit, id="ok")
    scheduler.add_job(slow, "interval", seconds=unit, id="slow")
    scheduler.add_job(broken, "date", id="broken")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await ok.done.wait()
        gate.set()
        scheduler.remove_job("ok")
        scheduler.remove_job("slow")
        await scheduler.jobs.wait_idle()
        # Taken before the scheduler stops (its SHUTDOWN_REQUESTED is an event).
        emitted = scheduler.statistics().emitted
    stats = scheduler.job_statistics()
    assert stats.runs_completed >= 3 + 1  # ok's runs and slow's one run
    assert stats.runs_failed == 1
    assert stats.missed["max_instances"] >= 1
    assert emitted == 0


@virtual_time
async def test_lineage_is_built_when_asked_for(unit: float) -> None:
    """Without a JOB_STARTED handler, a run still has one lineage: the job's events,
    current_event() and JOB_COMPLETED all name the same (unemitted) JOB_STARTED."""
    scheduler = new_scheduler()
    seen: list[Event | None] = []
    completed: list[Event] = []
    emitted: list[Event] = []
    done, reported = anyio.Event(), anyio.Event()

    async def job() -> None:
        seen.append(current_event())
        await scheduler.emit("report", {"n": 1})

    async def on_report(event: Event) -> None:
        emitted.append(event)
        reported.set()

    async def on_completed(event: Event) -> None:
        completed.append(event)
        done.set()

    scheduler.on("report", on_report)
    scheduler.on(EventType.JOB_COMPLETED, on_completed)
    scheduler.add_job(job, "date", id="traced")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await done.wait()
            await reported.wait()
        # The user's event and JOB_COMPLETED; JOB_STARTED was never emitted.
        assert scheduler.statistics().emitted == 2
    started = seen[0]
    assert started is not None
    assert started.type == EventType.JOB_STARTED
    assert (started.data["job_id"], started.data["run"]) == ("traced", 1)
    assert started.causation_id is None  # it begins the chain
    for event in (emitted[0], completed[0]):
        assert (event.correlation_id, event.causation_id) == (started.correlation_id, started.id)


async def test_a_run_handed_to_a_cancelled_lane_is_accounted_once() -> None:
    """A run handed to an idle lane that is cancelled before it begins the run goes to
    ``lost``; otherwise the run itself saw it. Never both, never neither."""
    began: list[datetime] = []
    lost: list[datetime] = []
    finished = anyio.Event()

    async def run(job: Entry, fire_time: datetime) -> None:
        began.append(fire_time)
        finished.set()

    def on_lost(job: Entry, fire_time: datetime) -> None:
        lost.append(fire_time)

    job = object()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            lanes = Lanes(group, run, on_lost)
            lanes.submit(job, EPOCH)  # type: ignore[arg-type]
            await finished.wait()
            while lanes.idle == 0:  # the lane goes back to wait for the next run
                await anyio.lowlevel.checkpoint()
            lanes.submit(job, EPOCH.replace(year=2001))  # type: ignore[arg-type]
            group.cancel_scope.cancel()
    assert lanes.spawned == 1
    assert began[0] == EPOCH
    assert sorted(began[1:] + lost) == [EPOCH.replace(year=2001)]


async def test_closing_ends_idle_lanes() -> None:
    """close(): idle lanes end, so the task group that holds them can finish."""
    ran: list[datetime] = []

    async def run(job: Entry, fire_time: datetime) -> None:
        ran.append(fire_time)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            lanes = Lanes(group, run, lambda job, at: None)
            for year in (2001, 2002, 2003):
                lanes.submit(object(), EPOCH.replace(year=year))  # type: ignore[arg-type]
            while lanes.idle < 3:
                await anyio.lowlevel.checkpoint()
            lanes.close()
    assert len(ran) == 3
    assert lanes.idle == 0


async def test_a_burst_leaves_at_most_max_idle_lanes() -> None:
    """Runs all in progress at once each get a lane; once they are over, MAX_IDLE lanes
    stay idle and the others end (an idle lane is objects every full collection of the
    garbage collector traverses)."""
    burst = MAX_IDLE + 10
    release = anyio.Event()
    done: list[datetime] = []

    async def run(job: Entry, fire_time: datetime) -> None:
        await release.wait()
        done.append(fire_time)  # the lane decides to idle or end right after this

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            lanes = Lanes(group, run, lambda job, at: None)
            for k in range(burst):
                lanes.submit(object(), EPOCH + timedelta(seconds=k))  # type: ignore[arg-type]
            release.set()
            while len(done) < burst:
                await anyio.lowlevel.checkpoint()
            assert (lanes.spawned, lanes.idle) == (burst, MAX_IDLE)
            lanes.submit(object(), EPOCH)  # type: ignore[arg-type]  # an idle lane takes it
            while len(done) < burst + 1:
                await anyio.lowlevel.checkpoint()
            assert (lanes.spawned, lanes.idle) == (burst, MAX_IDLE)
            lanes.close()
    assert lanes.idle == 0


@virtual_time
async def test_the_default_memory_store_is_saved_at_close(unit: float) -> None:
    """The plain MemoryJobStore is written once, at close, with the final schedule (no
    save per pass or per ended run: nothing reads it before then)."""
    store = MemoryJobStore()
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    job = Counting(3)
    scheduler.add_job(job, "interval", seconds=unit, id="j")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await job.done.wait()
        assert await store.load() == {}
        last = scheduler.get_job("j").last_fire_time
    saved = (await store.load())["j"]
    assert saved.last_fire_time is not None
    assert last is not None
    assert saved.last_fire_time >= last
    assert saved.running == ()


@virtual_time
async def test_runs_due_in_one_slice_share_a_timer(
    unit: float, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    """Ten runs whose fire times lie within one QUANTUM share one timer; each still
    starts at or after its own fire time, less than QUANTUM after it."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    started: dict[str, float] = {}
    done = anyio.Event()

    def job(name: str, fire_time: datetime) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started[name] = (clock.now() - fire_time).total_seconds()
            if len(started) == 10:
                done.set()

        return run

    async with scheduler:
        # A slice boundary 2 units ahead, then ten fire times inside the next slice.
        base = clock.now() + timedelta(seconds=2 * unit)
        base -= (base - _EPOCH) % timedelta(seconds=QUANTUM)
        timers = scheduler.jobs._runs._alarms.timers
        for k in range(10):
            at = base + timedelta(microseconds=1 + 40 * k)
            scheduler.add_job(job(f"d{k}", at), "date", run_date=at, id=f"d{k}")
        with anyio.fail_after(60 * unit):
            await done.wait()
        shared = scheduler.jobs._runs._alarms.timers - timers
    assert all(late >= 0 for late in started.values()), started
    if is_virtual(anyio_backend):  # exact: one timer, at the end of the slice
        assert all(late < QUANTUM for late in started.values()), started
        assert shared == 1
    else:  # a loaded machine may split them, or start them late with no wait at all
        assert shared <= 5


async def test_a_cancelled_sleeper_wakes_the_runs_parked_on_its_timer() -> None:
    """The run sleeping for a slice is cancelled: the others parked on that timer are
    woken (early: they check the clock and wait again), never left parked."""
    alarms = Alarms(lambda: VirtualClock())
    at = VirtualClock().now() + timedelta(hours=1)
    woken = anyio.Event()

    async def parked() -> None:
        await alarms.wait_for(at)
        woken.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            sleeper = anyio.CancelScope()

            async def sleep() -> None:
                with sleeper:
                    await alarms.wait_for(at)

            group.start_soon(sleep)
            while len(alarms) == 0:
                await anyio.lowlevel.checkpoint()
            group.start_soon(parked)
            while not any(alarm.waiters for alarm in alarms._alarms.values()):
                await anyio.lowlevel.checkpoint()
            sleeper.cancel()
            await woken.wait()
    assert alarms.timers == 1
    assert len(alarms) == 0


class _LeadStore(RecordingStore):
    """A durable store that claims 0.4 s ahead."""

    claim_lead = 0.4


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_runs_claimed_ahead_wait_outside_their_lanes() -> None:
    """A pass of a durable store claims its lead's worth of runs (here ~40 of 50 jobs
    20 ms apart) but hands each to a lane only shortly before its fire time: a few
    lanes, not one per run claimed (a lane's waiting run is ~10 objects the garbage
    collector tracks: see _jobs/_held.py). Every run still runs, from its saved claim."""
    store = _LeadStore()
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    job = Counting(150)
    for n in range(50):
        start = EPOCH + timedelta(seconds=1 + n * 0.02)
        scheduler.add_job(job, "interval", seconds=1, start_date=start, id=f"j{n}")
    async with scheduler:
        with anyio.fail_after(60):
            await job.done.wait()
        lanes = scheduler.jobs._runs._lanes
        assert lanes is not None
        # Runs handed over at most RUN_LEAD + BATCH (4 ms) early: one or two at once.
        assert lanes.spawned <= 5
        assert len(store.claims()) < 10  # still claimed ahead: few saves for 150 runs
    stats = scheduler.job_statistics()
    assert stats.runs_started == stats.runs_completed >= 150
    assert sum(stats.missed.values()) == 0


class _SlowCommitStore(_LeadStore):
    """A durable store claiming 0.4 s ahead whose saves take 0.3 s (a slow commit)."""

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        await anyio.sleep(0.3)
        return await super().save(changes)


class _StateFileLeadStore(RecordingStore):
    """A durable store with the state file's claim lead whose saves take 50 ms (a pass's
    rows at 5,000 fires a second took about that: see SQLiteJobStore.claim_lead)."""

    claim_lead = SQLiteJobStore.claim_lead

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        await anyio.sleep(0.05)
        return await super().save(changes)


async def _lateness_of_150_runs(store: RecordingStore) -> list[float]:
    """Seconds late of the first 150 runs of 50 jobs 20 ms apart, every second, on
    ``store``, in virtual time."""
    return (await lateness_of_runs(store, jobs=50, apart=0.02, runs=150))[1]


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_held_runs_start_on_time_while_the_next_claim_commits() -> None:
    """Runs claimed by one pass and held are handed to their lanes as their fire times
    come, also while the scheduler task waits for the next pass's commit (0.3 s here, a
    slow PostgreSQL round trip): never as late as that commit."""
    late = await _lateness_of_150_runs(_SlowCommitStore())
    assert min(late) >= 0
    assert max(late) < 0.005, sorted(late)[-3:]


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_the_state_files_claim_lead_outlasts_a_50_ms_save() -> None:
    """The claims of a pass are saved before their fire times come, even when the save
    takes 50 ms: no run waits for it (with the 0.02 s lead the state file had, runs
    started up to 48 ms late here)."""
    late = await _lateness_of_150_runs(_StateFileLeadStore())
    assert min(late) >= 0
    assert max(late) < 0.005, sorted(late)[-3:]


@virtual_time
async def test_the_backend_is_looked_up_once_not_per_parking(
    unit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run parks twice (waiting in an idle lane, and on its slice's timer); asking
    sniffio which backend runs cost ~0.4 us a parking. The lanes and the timers ask
    once, when they are first used on the loop."""
    asked = 0

    def counting() -> bool:
        nonlocal asked
        asked += 1
        return on_trio()

    for module in (_lanes, _alarms, _parking):
        monkeypatch.setattr(module, "on_trio", counting)
    scheduler = new_scheduler()
    await _twenty_jobs_five_runs_each(unit, scheduler)
    assert scheduler.job_statistics().runs_completed >= 100
    assert 1 <= asked <= 2  # the lanes', the timers'
