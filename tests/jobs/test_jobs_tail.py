"""The start lateness tail with a durable store: passes claim a bounded number of jobs,
held runs are nothing the garbage collector tracks, a start's new rows and a round of
ended runs are saved by the writer in chunks, never in one large save a pass waits for.

Virtual time; the tests count saves and rows, never time them (the figures are in
docs/benchmarks.md, "the tail with a state file").
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from datetime import timedelta

import anyio
import pytest
from jobtools import EPOCH, RecordingStore, lateness_of_runs, new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import SavedJob, SQLiteJobStore
from eventsched._jobs._claims import claim_limit
from eventsched._jobs._held import Held
from eventsched._jobs._sync import WRITER_CHUNK, StoreSync

pytestmark = pytest.mark.anyio


class _LimitedStore(RecordingStore):
    """A durable store claiming 0.1 s ahead, at most 8 jobs a pass."""

    claim_lead = 0.1
    claim_limit = 8


def _claimed_rows(store: RecordingStore) -> list[int]:
    """Per save that claimed a fire time, the jobs with a claim in it."""
    return [
        sum(1 for state in save.values() if state is not None and state.running)
        for save in store.claims()
    ]


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_a_pass_claims_at_most_the_stores_claim_limit() -> None:
    """200 jobs 5 ms apart: a pass of a 0.1 s lead would claim 20-40 of them at once;
    with ``claim_limit`` 8 every save claims at most 8, and every run still starts on
    time (the next pass comes as soon as the lead needs it)."""
    store = _LimitedStore()
    scheduler, late = await lateness_of_runs(store, jobs=200, apart=0.005, runs=400)
    claimed = _claimed_rows(store)
    assert max(claimed) <= 8, max(claimed)
    assert sum(claimed) >= 400
    assert min(late) >= 0
    assert max(late) < 0.005, sorted(late)[-3:]
    stats = scheduler.job_statistics()
    assert sum(stats.missed.values()) == 0


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_a_backlog_beyond_the_limit_is_claimed_pass_after_pass() -> None:
    """40 jobs all due at the start, limit 8: five passes in a row, every run started."""
    store = _LimitedStore()
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    ran: list[str] = []
    done = anyio.Event()

    async def job(n: int) -> None:
        ran.append(f"j{n}")
        if len(ran) == 40:
            done.set()

    for n in range(40):
        scheduler.add_job(job, "date", run_date=EPOCH, args=(n,), id=f"j{n}")
    async with scheduler:
        with anyio.fail_after(60):
            await done.wait()
    assert sorted(ran) == sorted(f"j{n}" for n in range(40))
    assert _claimed_rows(store) == [8] * 5


def test_claim_limit_of_a_store() -> None:
    assert claim_limit(SQLiteJobStore.__new__(SQLiteJobStore)) == SQLiteJobStore.claim_limit
    assert claim_limit(object()) is None  # PostgreSQL, a store of your own: no limit
    for bad in (0, -3, 2.5, True, "8", None):
        store = type("S", (), {"claim_limit": bad})()
        assert claim_limit(store) is None, bad


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_a_starts_new_rows_are_not_in_the_first_passs_save() -> None:
    """300 new jobs: their rows go out in the writer's chunks at the start; the passes'
    saves carry their claims only (the first pass's save had all 300 rows, and at
    10,000 new jobs the first runs waited 0.15 s for it)."""
    store = RecordingStore()
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    done = anyio.Event()
    ran = 0

    async def job() -> None:
        nonlocal ran
        ran += 1
        if ran == 300:
            done.set()

    for n in range(300):
        start = EPOCH + timedelta(seconds=1 + n / 300)
        scheduler.add_job(job, "interval", seconds=1, start_date=start, id=f"j{n}")
    async with scheduler:
        with anyio.fail_after(60):
            await done.wait()
    first = store.saves[: 300 // WRITER_CHUNK + 1]
    assert [len(save) for save in first] == [WRITER_CHUNK, 300 - WRITER_CHUNK]
    assert all(not state.running for save in first for state in save.values() if state)
    assert max(len(save) for save in store.claims()) < 30


class _EndingStore(RecordingStore):
    """Each of its first 20 saves marks one more ended run meanwhile, as runs end
    while the writer saves at 10,000 runs a second."""

    sync: StoreSync | None = None

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        refused = await super().save(changes)
        if self.sync is not None and len(self.saves) <= 20:
            state = SavedJob("f", EPOCH, EPOCH + timedelta(seconds=1))
            self.sync.mark(f"late{len(self.saves)}", state, urgent=False)
        return refused


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_a_writer_round_saves_what_was_pending_when_it_began() -> None:
    """600 ended runs pending: one round of three chunks; the ends marked during it
    wait for the next round (SAVE_DELAY later) or their job's claim. Before, the round
    chased them, a save each: at 10,000 runs a second it never ended."""
    store = _EndingStore()
    sync = store.sync = StoreSync(store)
    await sync.open()
    state = SavedJob("f", EPOCH, EPOCH + timedelta(seconds=1))
    for n in range(600):
        sync.mark(f"j{n}", state, urgent=False)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()
            group.start_soon(sync.writer, scope)
            sync.save_soon()
            await anyio.sleep(1)  # the round, and less than SAVE_DELAY after it
            scope.cancel()
    assert [len(save) for save in store.saves] == [WRITER_CHUNK, WRITER_CHUNK, 88]
    await sync.flush()  # the three marked meanwhile, at the next save
    assert set(store.saves[-1]) == {"late1", "late2", "late3"}


class _Job:
    """Stands in for a job (an object the garbage collector tracks)."""


def test_held_runs_are_nothing_the_collector_tracks() -> None:
    """A held run lives the claim lead (0.1 s with a state file): long enough to reach
    the oldest generation, whose growth sets off full collections. Its heap item is a
    datetime and a number, untracked at its first collection; the job is found apart."""
    held = Held()
    jobs = [_Job() for _ in range(5)]
    at = [EPOCH + timedelta(seconds=s) for s in (3, 1, 2, 1, 5)]
    for job, fire_time in zip(jobs, at, strict=True):
        held.push(job, fire_time)  # type: ignore[arg-type]
    gc.collect()
    assert not any(gc.is_tracked(item) for item in [*held._line, *held._heap])
    assert held.earliest() == at[1]
    assert list(held.due(at[2])) == [(jobs[1], at[1]), (jobs[3], at[3]), (jobs[2], at[2])]
    assert list(held.due(at[0])) == [(jobs[0], at[0])]
    assert held.drain() == [(jobs[4], at[4])]
    assert len(held) == 0
    assert not held._jobs


def test_held_runs_come_out_in_fire_time_order_then_order_of_arrival() -> None:
    """Runs pushed in order go in a line, one pushed earlier than the line's last in a
    heap beside it: they come out merged, in order of fire time, equal fire times in
    the order they came, whichever of the two holds them."""
    held = Held()
    jobs = [_Job() for _ in range(6)]
    at = [EPOCH + timedelta(seconds=s) for s in (1, 2, 2, 1, 3, 2)]
    for job, fire_time in zip(jobs, at, strict=True):
        held.push(job, fire_time)  # type: ignore[arg-type]
    assert held.earliest() == at[0]
    order = [jobs[0], jobs[3], jobs[1], jobs[2], jobs[5]]
    assert list(held.due(at[1])) == [(job, at[jobs.index(job)]) for job in order]
    assert held.earliest() == at[4]
    held.push(jobs[0], at[0])  # type: ignore[arg-type]  # earlier than the line's last
    assert held.earliest() == at[0]
    assert len(held) == 2
    assert held.drain() == [(jobs[0], at[0]), (jobs[4], at[4])]
    assert held.earliest() is None
