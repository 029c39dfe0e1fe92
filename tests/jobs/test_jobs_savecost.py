"""What persistence costs at scale: a run's end rides with its job's next claim, the
writer saves in chunks, rows are written without ``json.dumps``, and the SQLite file
uses a write-ahead log while open and one file at rest.

A recording store stands in for a real one where the tests count rows (virtual time);
the SQLite tests open real files.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from jobtools import EPOCH, new_scheduler, virtual_time

from eventsched import EventScheduler, MemoryJobStore, SavedJob, SQLiteJobStore
from eventsched._jobs import _sync
from eventsched._jobs._entry import Entry
from eventsched._jobs._sync import WRITER_CHUNK, StoreSync

pytestmark = pytest.mark.anyio


class RowsStore(MemoryJobStore):
    """A memory store (a subclass: saved as it changes) that keeps every save."""

    def __init__(self) -> None:
        super().__init__()
        self.saves: list[dict[str, SavedJob | None]] = []
        self.holds: tuple[int, anyio.Event] | None = None

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        self.saves.append(dict(changes))
        refused = await super().save(changes)
        if self.holds is not None and len(self._states) >= self.holds[0]:
            self.holds[1].set()
        return refused

    async def wait_holding(self, count: int) -> None:
        """Return once the store holds ``count`` job states."""
        self.holds = (count, anyio.Event())
        if len(self._states) < count:
            await self.holds[1].wait()


@asynccontextmanager
async def eight_runs(
    unit: float, store: RowsStore
) -> AsyncIterator[tuple[EventScheduler, list[int]]]:
    """A scheduler on ``store`` with a job every unit (well within SAVE_DELAY), entered
    once the job has run 8 times: the scheduler, and its runs so far (one item, which
    goes on counting until the scheduler stops)."""
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    runs = [0]
    done = anyio.Event()

    async def job() -> None:
        runs[0] += 1
        if runs[0] == 8:
            done.set()

    scheduler.add_job(job, "interval", seconds=unit, id="tick")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await done.wait()
        yield scheduler, runs


@virtual_time
async def test_a_runs_end_rides_with_the_next_claim(unit: float) -> None:
    """A job every unit (well within SAVE_DELAY): one row write per run, not two (its
    claim, then its end); the final state still has no claim left."""
    store = RowsStore()
    async with eight_runs(unit, store) as (scheduler, runs):
        scheduler.pause_job("tick")
        await scheduler.jobs.wait_idle()
        written = sum("tick" in save for save in store.saves)
    assert runs[0] >= 8
    # The first schedule, one claim per run, and at most one end not yet carried.
    assert written <= runs[0] + 2
    assert (await store.load())["tick"].running == ()


@virtual_time
async def test_a_run_builds_one_saved_state(unit: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state of a claim and of a run's end is built when saved, not when marked: an
    end that the job's next claim carries builds none (it was two states per run, ~7 us
    of the ~10 us a run cost with a durable store that saved nothing)."""
    built = 0
    saved = Entry.saved

    def counted(self: Entry, **kwargs: Any) -> SavedJob:
        nonlocal built
        built += 1
        return saved(self, **kwargs)

    monkeypatch.setattr(Entry, "saved", counted)
    store = RowsStore()
    async with eight_runs(unit, store) as (_, runs):
        during = built
    # The first schedule, then one state per claim (the ends ride with them).
    assert during <= runs[0] + 2
    assert (await store.load())["tick"].running == ()


async def test_a_state_marked_lazily_is_the_jobs_when_saved() -> None:
    """A change marked as what gives the state (a job's entry) is asked at the save, once,
    and what it gives then is saved (a claim marked, then the run's end before the
    save: the end is saved)."""
    store = RowsStore()
    sync = StoreSync(store)
    await sync.open()
    now = {"state": SavedJob("f", EPOCH, EPOCH + timedelta(seconds=1), (EPOCH,))}
    calls = 0

    class Job:
        def saved(self) -> SavedJob:
            nonlocal calls
            calls += 1
            return now["state"]

    state = Job()

    sync.mark("j", state)
    sync.mark("j", state, urgent=False)  # its end: still in the pending urgent change
    now["state"] = SavedJob("f", EPOCH, EPOCH + timedelta(seconds=1), (), None, "completed")
    await sync.flush(urgent_only=True)
    assert store.saves == [{"j": now["state"]}]
    assert calls == 1


async def test_the_writer_saves_ended_runs_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """600 ended runs: saved by the writer within SAVE_DELAY, WRITER_CHUNK per save."""
    monkeypatch.setattr(_sync, "SAVE_DELAY", 0.01)
    store = RowsStore()
    sync = StoreSync(store)
    await sync.open()
    state = SavedJob("interval[0:00:01]", EPOCH, EPOCH + timedelta(seconds=1))
    for n in range(600):
        sync.mark(f"j{n}", state, urgent=False)
    assert await sync.flush(urgent_only=True) == frozenset()
    assert store.saves == []  # a pass leaves them for later
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()
            group.start_soon(sync.writer, scope)
            await store.wait_holding(600)
            scope.cancel()
    assert [len(save) for save in store.saves] == [
        WRITER_CHUNK,
        WRITER_CHUNK,
        600 - 2 * WRITER_CHUNK,
    ]


async def test_a_later_claim_replaces_a_pending_end() -> None:
    """An end marked for later, then the job's next claim: one row, the claim's state."""
    store = RowsStore()
    sync = StoreSync(store)
    await sync.open()
    ended = SavedJob("f", EPOCH, EPOCH + timedelta(seconds=1))
    claimed = SavedJob("f", EPOCH + timedelta(seconds=1), EPOCH + timedelta(seconds=2), (EPOCH,))
    sync.mark("j", ended, urgent=False)
    sync.mark("j", claimed)
    await sync.flush(urgent_only=True)
    await sync.flush()
    assert store.saves == [{"j": claimed}]


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def test_the_state_file_is_a_wal_while_open_and_one_file_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    state = SavedJob("interval[0:00:01]", EPOCH, EPOCH + timedelta(seconds=1))
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    try:
        store.save_now({"j": state})
        assert _journal_mode(path) == "wal"
    finally:
        store.close_now()
    assert _journal_mode(path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.sqlite", "jobs.sqlite.lock"]
    # And a file written by the rollback-journal version (before this change) opens,
    # is read, and is left at rest the same way.
    again = SQLiteJobStore(path, warn=False)
    again.lock_now()
    try:
        assert again.load_now() == {"j": state}
    finally:
        again.close_now()
    assert _journal_mode(path) == "delete"


class _EndsStore(RowsStore):
    """Sets ``slow_end`` once a save holds the end of a run of job ``slow``."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_end = anyio.Event()

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        if _ended(changes.get("slow")):
            self.slow_end.set()
        return await super().save(changes)


def _ended(state: SavedJob | None) -> bool:
    """A run's end saved on its own: the job ran (a last fire time), nothing claimed."""
    return state is not None and state.last_fire_time is not None and not state.running


@virtual_time
async def test_the_writer_leaves_an_end_to_the_jobs_claim_when_that_comes_first(
    unit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job claimed again before the writer's next round has each run's end saved by
    that claim, in the same row; the end of a job claimed later is saved by the writer
    (at 10,000 jobs a second, each round wrote ~9,000 ends the claims wrote again)."""
    monkeypatch.setattr(_sync, "SAVE_DELAY", 4 * unit)
    store = _EndsStore()
    scheduler = new_scheduler()
    scheduler.configure_jobs(store=store)
    fast_runs = 0
    enough = anyio.Event()

    async def fast() -> None:
        nonlocal fast_runs
        fast_runs += 1
        if fast_runs == 14:  # three writer rounds and more
            enough.set()

    async def slow() -> None:
        return None

    at = scheduler.jobs.clock.now()
    start = at + timedelta(seconds=unit / 4)
    scheduler.add_job(fast, "interval", seconds=unit, start_date=start, id="fast")
    scheduler.add_job(slow, "interval", seconds=60 * unit, start_date=start, id="slow")
    async with scheduler:
        with anyio.fail_after(60 * unit):
            await enough.wait()
            await store.slow_end.wait()
        during = list(store.saves)
    assert not [save for save in during if _ended(save.get("fast"))]
    assert (await store.load())["fast"].running == ()  # the last end, saved at the stop


async def test_a_starts_new_rows_are_written_in_order_of_fire_time(tmp_path: Path) -> None:
    """A pass claims jobs in order of fire time, and a claim's commit writes every page
    of the file its rows lie on: a start's new rows go in order of the jobs' first fire
    times (SQLite numbers new rows in order), whatever order the jobs were added in,
    so that a pass's claims lie together."""
    path = tmp_path / "jobs.sqlite"
    scheduler = new_scheduler()
    scheduler.configure_jobs(state_file=path)

    async def job() -> None:
        pass

    offsets = list(range(300))
    random.Random(3).shuffle(offsets)
    offsets.insert(150, -1)  # a job whose first fire time comes an hour later
    for k in offsets:
        start = EPOCH + timedelta(hours=1) if k < 0 else EPOCH + timedelta(minutes=10, seconds=k)
        scheduler.add_job(job, "interval", hours=1, start_date=start, id=f"j{k}")
    async with scheduler:
        await scheduler.jobs.flush_state()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        ids = [row[0] for row in conn.execute("SELECT job_id FROM jobs ORDER BY rowid")]
    conn.close()
    assert ids == [f"j{k}" for k in range(300)] + ["j-1"]
