"""A backlog claimed in one pass, then shutdown before its runs begin: every fire time of
it runs after the restart or is reported, none is lost and none runs twice.

A restart from a state file with ``coalesce=False`` finds several fire times of a job
due at once; one pass claims them all (the saved schedule moves past them). If shutdown
stops those runs before they begin, each must hand its fire time back: the schedule
returns to the earliest of them, not only to the last one (see ``_jobs/_giveback.py``).

The stores are real (an SQLite file here; PostgreSQL in ``tests/postgres``), so the loop
runs in real time, as in ``test_jobs_store.py``; the wall clock is a ``VirtualClock``:
"five and a half hours later" needs no waiting. The scenarios are written against any
``JobStore`` so that ``tests/postgres`` runs the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventsched import (
    EventScheduler,
    EventType,
    JobStore,
    MissReason,
    SavedJob,
    SQLiteJobStore,
    current_event,
)
from eventsched._jobs._entry import new_entry
from eventsched._jobs._giveback import give_back
from eventsched.testing import DEFAULT_EPOCH, VirtualClock

pytestmark = pytest.mark.anyio

EPOCH = DEFAULT_EPOCH
#: The fire times due at once when the scheduler comes back at LATER (EPOCH ran).
BACKLOG = [EPOCH + timedelta(hours=h) for h in range(1, 6)]
LATER = EPOCH + timedelta(hours=5, minutes=30)
LIMIT = 20  # seconds, real time: each phase takes a fraction of one

StoreFactory = Callable[[], JobStore]


async def _noop() -> None:
    pass


def hourly(
    store: JobStore,
    clock: VirtualClock,
    job: Callable[[], Any] = _noop,
    jitter: float | None = None,
) -> EventScheduler:
    """The same job definition in every "process": hourly from EPOCH, each fire time run."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=clock)
    scheduler.add_job(
        job,
        "interval",
        hours=1,
        start_date=EPOCH,
        id="tick",
        coalesce=False,
        misfire_grace_time=None,
        max_instances=len(BACKLOG),
        jitter=jitter,
    )
    return scheduler


class Seen:
    """The fire times a scheduler started and reported missed, by reason."""

    def __init__(self, scheduler: EventScheduler) -> None:
        self.started: list[datetime] = []
        self.missed: dict[str, list[datetime]] = {}
        self.changed = anyio.Event()
        scheduler.on(EventType.JOB_STARTED, self._started)
        scheduler.on(EventType.JOB_MISSED, self._missed)

    async def _started(self, event: Any) -> None:
        self.started.append(datetime.fromisoformat(event.data["fire_time"]))
        self.changed.set()

    async def _missed(self, event: Any) -> None:
        for at in event.data["fire_times"]:
            self.missed.setdefault(event.data["reason"], []).append(datetime.fromisoformat(at))
        self.changed.set()

    async def wait_started(self, count: int) -> None:
        with anyio.fail_after(LIMIT):
            while len(self.started) < count:
                self.changed = anyio.Event()
                await self.changed.wait()

    def reported(self) -> list[datetime]:
        return [at for times in self.missed.values() for at in times]

    async def wait_covering(self, fire_times: list[datetime], *earlier: Seen) -> None:
        """Until each of ``fire_times`` was started or reported, here or ``earlier``."""
        done = {at for one in earlier for at in (*one.started, *one.reported())}
        with anyio.fail_after(LIMIT):
            while not set(fire_times) <= {*done, *self.started, *self.reported()}:
                self.changed = anyio.Event()
                await self.changed.wait()


class StopAfterClaim:
    """A job store that lets shutdown in right after the backlog's claims are saved.

    ``mode="stopping"``: the job scheduler stops starting runs (shutdown's first step)
    once the save returns, so the pass hands runs to lanes that must not begin them.
    ``mode="cancelled"``: the scheduler is stopped and the save hangs until shutdown
    cancels it, so the pass itself is cancelled with its claims saved.
    ``mode="removed"``: as "stopping", and the job is removed as well.
    Everything else goes to the store it wraps (a PostgresJobStore's extras too).
    """

    def __init__(self, store: JobStore, mode: str) -> None:
        self._store = store
        self.mode = mode
        self.scheduler: EventScheduler | None = None
        self.claimed = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def location(self) -> str | None:
        return self._store.location

    async def lock(self) -> None:
        await self._store.lock()

    async def load(self) -> dict[str, SavedJob]:
        return await self._store.load()

    async def close(self) -> None:
        await self._store.close()

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        refused = await self._store.save(changes)
        tick = changes.get("tick")
        if self.claimed.is_set() or tick is None or len(tick.running) < len(BACKLOG):
            return refused
        assert self.scheduler is not None
        self.claimed.set()
        if self.mode in ("stopping", "removed"):
            self.scheduler.jobs.begin_shutdown()
            if self.mode == "removed":
                self.scheduler.remove_job("tick")
            return refused
        self.scheduler.stop()
        await anyio.sleep_forever()  # committed, but the answer comes too late
        raise AssertionError("not reached")


async def run_first_fire_time(new_store: StoreFactory) -> None:
    """The first "process": runs the fire time at EPOCH, and saves the schedule."""
    scheduler = hourly(new_store(), VirtualClock(EPOCH))
    seen = Seen(scheduler)
    async with scheduler:
        await seen.wait_covering([EPOCH])
    assert seen.started == [EPOCH]


async def restart(new_store: StoreFactory, earlier: list[Seen]) -> Seen:
    """The next "process", at LATER: runs until every backlog fire time is accounted for;
    then checks that each ran or was reported exactly once over all the processes."""
    scheduler = hourly(new_store(), VirtualClock(LATER))
    seen = Seen(scheduler)
    async with scheduler:
        await seen.wait_covering(BACKLOG, *earlier)
    started = [at for one in (*earlier, seen) for at in one.started]
    reported = [at for one in (*earlier, seen) for at in one.reported()]
    assert len(started) == len(set(started)), started  # none ran twice
    assert not set(started) & set(reported), (started, reported)
    assert len(reported) == len(set(reported)), reported  # nor was reported twice
    assert EPOCH not in started[1:]
    return seen


async def backlog_stopped_before_its_runs(new_store: StoreFactory, mode: str) -> None:
    """None of the backlog started before shutdown: the restart runs all of it."""
    await run_first_fire_time(new_store)
    store = StopAfterClaim(new_store(), mode)
    scheduler = hourly(store, VirtualClock(LATER))  # type: ignore[arg-type]
    store.scheduler = scheduler
    stopped = Seen(scheduler)
    with anyio.fail_after(LIMIT):
        async with scheduler:
            await store.claimed.wait()
    assert stopped.started == []
    assert stopped.missed == {}
    assert scheduler.job_statistics().runs_started == 0
    again = await restart(new_store, [stopped])
    assert sorted(again.started) == BACKLOG  # handed back, every one
    assert again.missed == {}


async def backlog_stopped_midway(new_store: StoreFactory) -> None:
    """Shutdown begins inside the run of the third backlog fire time. Lanes take runs
    up in the order the backend runs tasks (trio: random), so any of the others may or
    may not have begun: those after the latest that began are handed back, those
    before it are reported ``shutdown``, and nothing is lost or run twice."""
    await run_first_fire_time(new_store)
    stopping = anyio.Event()
    scheduler: EventScheduler | None = None

    async def job() -> None:
        event = current_event()
        assert event is not None
        assert scheduler is not None
        if event.data["fire_time"] == BACKLOG[2].isoformat():
            scheduler.jobs.begin_shutdown()
            stopping.set()

    scheduler = hourly(new_store(), VirtualClock(LATER), job)
    stopped = Seen(scheduler)
    with anyio.fail_after(LIMIT):
        async with scheduler:
            await stopping.wait()
            await scheduler.jobs.wait_idle()  # the report comes when no run is left
    assert BACKLOG[2] in stopped.started
    latest = max(stopped.started)
    unstarted = [at for at in BACKLOG if at not in stopped.started]
    assert stopped.missed.get(MissReason.SHUTDOWN, []) == [at for at in unstarted if at < latest]
    assert set(stopped.missed) <= {MissReason.SHUTDOWN}
    again = await restart(new_store, [stopped])
    assert sorted(again.started) == [at for at in BACKLOG if at > latest]
    assert again.missed == {}


@pytest.mark.parametrize("mode", ["stopping", "cancelled"])
async def test_a_backlog_stopped_before_its_runs_is_handed_back_whole(
    tmp_path: Path, mode: str
) -> None:
    state_file = tmp_path / "jobs.sqlite"
    await backlog_stopped_before_its_runs(lambda: SQLiteJobStore(state_file), mode)


async def test_a_backlog_stopped_midway_runs_or_reports_each_fire_time_once(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "jobs.sqlite"
    await backlog_stopped_midway(lambda: SQLiteJobStore(state_file))


async def test_a_backlog_of_a_job_removed_meanwhile_is_reported_shutdown(tmp_path: Path) -> None:
    """No schedule to hand the fire times back to: each is reported, in one JOB_MISSED."""
    state_file = tmp_path / "jobs.sqlite"
    await run_first_fire_time(lambda: SQLiteJobStore(state_file))
    store = StopAfterClaim(SQLiteJobStore(state_file), "removed")
    scheduler = hourly(store, VirtualClock(LATER))  # type: ignore[arg-type]
    store.scheduler = scheduler
    stopped = Seen(scheduler)
    with anyio.fail_after(LIMIT):
        async with scheduler:
            await store.claimed.wait()
    assert stopped.started == []
    assert stopped.missed == {MissReason.SHUTDOWN: BACKLOG}
    assert scheduler.job_statistics().missed[MissReason.SHUTDOWN] == len(BACKLOG)


async def test_a_jittered_fire_time_goes_back_to_the_trigger_time(tmp_path: Path) -> None:
    """The first fire time of a pass carries the jitter; handed back, the schedule
    returns to the trigger's own time, so the grid does not shift by the jitter."""
    state_file = tmp_path / "jobs.sqlite"
    jitter = 0.05  # seconds: the run at EPOCH waits for it in real time

    def new_scheduler(store: JobStore, clock: VirtualClock) -> EventScheduler:
        return hourly(store, clock, jitter=jitter)

    first = new_scheduler(SQLiteJobStore(state_file), VirtualClock(EPOCH))
    seen = Seen(first)
    async with first:
        await seen.wait_started(1)
    store = StopAfterClaim(SQLiteJobStore(state_file), "stopping")
    stopped = new_scheduler(store, VirtualClock(LATER))  # type: ignore[arg-type]
    store.scheduler = stopped
    with anyio.fail_after(LIMIT):
        async with stopped:
            await store.claimed.wait()
    restarted = new_scheduler(SQLiteJobStore(state_file), VirtualClock(LATER))
    again = Seen(restarted)
    async with restarted:
        await again.wait_started(len(BACKLOG))
    first_run, *others = sorted(again.started)
    assert BACKLOG[0] <= first_run <= BACKLOG[0] + timedelta(seconds=jitter)
    assert others == BACKLOG[1:]
    assert again.missed == {}


def test_a_fire_time_before_one_that_ran_is_not_handed_back() -> None:
    """Handing a fire time back brings every later one round again: not past one that
    ran (or was reported); the earliest of those that may go back wins."""
    job = new_entry(
        _noop,
        "interval",
        id="tick",
        name=None,
        args=(),
        kwargs=None,
        max_instances=5,
        misfire_grace_time=None,
        coalesce=False,
        timeout=None,
        jitter=None,
        timezone=EPOCH.tzinfo,  # type: ignore[arg-type]
        paused=False,
        trigger_args={"hours": 1, "start_date": EPOCH},
    )
    job.last_fire = BACKLOG[-1]
    job.set_next(BACKLOG[-1] + timedelta(hours=1))
    job.settled = BACKLOG[1]  # BACKLOG[1] started
    assert not give_back(job, BACKLOG[0])
    assert give_back(job, BACKLOG[4])
    assert job.next_fire == BACKLOG[4]
    assert give_back(job, BACKLOG[2])
    assert give_back(job, BACKLOG[3])  # later than where the schedule is now: kept there
    assert job.next_fire == BACKLOG[2]
    job.removed = True
    assert not give_back(job, BACKLOG[2])
