"""The SQLite store writes a save's rows on the event loop's thread, a slice at a time,
and commits them there: other tasks run between the slices, nobody sees the save
before its commit, a save cancelled before its commit leaves nothing, and the
write-ahead log reaches the file only by the store's checkpoint, which the writer's
rounds call (never inside a commit, which would sync the file on the loop's thread)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import anyio
import anyio.lowlevel
import pytest

from eventsched import MemoryJobStore, SavedJob, SQLiteJobStore
from eventsched._jobs._sqlite import SAVE_SLICE
from eventsched._jobs._sqliterows import JOB_COLUMNS, row_of
from eventsched._jobs._sqlitesave import RowWriter, Written
from eventsched._jobs._sync import StoreSync

pytestmark = pytest.mark.anyio

FP = "interval[0:00:01]"
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


class TracingWriter(RowWriter):
    """Counts the slices written (``first`` is set once one is, not yet committed), and
    notes what ``look`` gives as each slice begins."""

    __slots__ = ("first", "look", "seen", "slices")

    def __init__(self) -> None:
        super().__init__()
        self.first = anyio.Event()
        self.slices = 0
        self.look: Callable[[], object] | None = None
        self.seen: list[object] = []

    def write(
        self, conn: sqlite3.Connection, changes: Mapping[str, SavedJob | None], now: str
    ) -> dict[str, Written | None]:
        if self.look is not None:
            self.seen.append(self.look())
        written = super().write(conn, changes, now)
        self.slices += 1
        self.first.set()
        return written


def _rows(path: Path) -> dict[str, tuple[object, ...]]:
    """The committed rows, as another process would read them (without updated_at)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {row[0]: row for row in conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs")}


def _file_alone(path: Path, copy: Path) -> set[str]:
    """The job ids in the file itself, without its write-ahead log (what a checkpoint
    has copied there)."""
    shutil.copyfile(path, copy)
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        return {row[0] for row in conn.execute("SELECT job_id FROM jobs")}


def _has_log(path: Path) -> bool:
    return os.path.exists(f"{path}-wal")


async def _opened(path: Path) -> tuple[SQLiteJobStore, TracingWriter]:
    store = SQLiteJobStore(path, warn=False)
    await store.lock()
    await store.load()
    writer = store._rows = TracingWriter()
    return store, writer


def _claims(count: int, *, first: int = 0) -> dict[str, SavedJob | None]:
    """A pass's claims of ``count`` jobs (each its own fire time)."""
    claims: dict[str, SavedJob | None] = {}
    for k in range(first, first + count):
        at = T0 + timedelta(milliseconds=k)
        claims[f"job-{k}"] = SavedJob(FP, at, at + timedelta(seconds=1), (at,), None, "completed")
    return claims


async def test_other_tasks_run_between_slices_and_see_nothing_before_the_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    store, writer = await _opened(path)
    ticks = 0
    saved = False

    async def tick() -> None:
        nonlocal ticks
        while not saved:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    # As each slice begins: how often the other task has run, and the committed rows.
    writer.look = lambda: (ticks, _rows(path))
    changes = _claims(4 * SAVE_SLICE)
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(tick)
                await anyio.lowlevel.checkpoint()  # it has begun
                try:
                    await store.save(changes)
                finally:
                    saved = True
        seen = cast(list[tuple[int, dict[str, object]]], writer.seen)
        assert len(seen) == 4
        # The other task ran between the slices (the loop was not held for the save),
        # and nobody saw a row of the save before its commit.
        assert seen[-1][0] > seen[0][0]
        assert all(rows == {} for _, rows in seen)
        # Committed whole, each row as a full write of its state would be.
        full = {
            job_id: row_of(job_id, saved, "now")[:-1] for job_id, saved in changes.items() if saved
        }
        assert _rows(path) == full
        # Again, now as UPDATEs of rows known (the texts reused): still full rows.
        writer.look = None
        later = {
            job_id: SavedJob(FP, saved.next_fire_time, saved.next_fire_time + timedelta(seconds=1))
            for job_id, saved in changes.items()
            if saved is not None and saved.next_fire_time is not None
        }
        await store.save(later)
        assert _rows(path) == {
            job_id: row_of(job_id, saved, "now")[:-1] for job_id, saved in later.items()
        }
    finally:
        await store.close()


async def test_a_save_cancelled_before_its_commit_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, writer = await _opened(path)
    try:
        await store.save(_claims(1))
        kept = _rows(path)
        writer.first = anyio.Event()
        writer.slices = 0

        async def cancel_after_a_slice(scope: anyio.CancelScope) -> None:
            await writer.first.wait()
            scope.cancel()

        with anyio.fail_after(10):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(cancel_after_a_slice, scope)
                    # (trio may run the save's next slice before the canceller: the
                    # checkpoint after that one raises, well before the last)
                    await store.save(_claims(5 * SAVE_SLICE, first=1))
        assert scope.cancelled_caught
        assert 1 <= writer.slices < 5
        assert _rows(path) == kept
        # The next save's commit carries its own rows only: the cancelled ones were
        # rolled back, not left in an open transaction for it to commit.
        after = _claims(1, first=1000)
        await store.save(after)
        assert set(_rows(path)) == set(kept) | set(after)
    finally:
        await store.close()


async def test_commits_stay_in_the_log_until_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, _ = await _opened(path)
    try:
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        changes = _claims(3 * SAVE_SLICE)
        await store.save(changes)
        assert set(_rows(path)) == set(changes)
        assert _file_alone(path, tmp_path / "before.sqlite") == set()
        with anyio.fail_after(10):
            await store.checkpoint()
        assert _file_alone(path, tmp_path / "after.sqlite") == set(changes)
        await store.save(_claims(1, first=1000))  # a save after a checkpoint: as before
        assert len(_rows(path)) == len(changes) + 1
    finally:
        await store.close()
    # Closed: one file again, all of it in the file itself.
    assert not _has_log(path)
    assert len(_file_alone(path, tmp_path / "closed.sqlite")) == len(changes) + 1


class CheckpointedStore(MemoryJobStore):
    """A durable store (a subclass of the memory one) whose checkpoints are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.checkpoints = 0
        self.checkpointed = anyio.Event()

    async def checkpoint(self) -> None:
        self.checkpoints += 1
        self.checkpointed.set()


async def test_the_writer_checkpoints_the_store_at_each_round() -> None:
    store = CheckpointedStore()
    sync = StoreSync(store)
    assert sync.durable
    await sync.open()
    scope = anyio.CancelScope()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(sync.writer, scope)
            sync.mark("a", SavedJob(FP, None, T0), urgent=False)
            sync.save_soon()  # a round now, not after SAVE_DELAY
            await store.checkpointed.wait()
            scope.cancel()
    assert store.checkpoints == 1
    assert "a" in await store.load()
