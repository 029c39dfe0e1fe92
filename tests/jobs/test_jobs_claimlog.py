"""The SQLite state file's claim log (version 3): claims and ends appended as one record
per save, folded into the rows by the writer in chunks in order of rowid, by a start
after a crash, and at the close; laid over the rows by ``eventsched jobs``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from virtualloop import BOTH_VIRTUAL

from eventsched import JobStateError, SavedJob, SQLiteJobStore
from eventsched._jobs._sqliterows import JOB_COLUMNS, row_of
from eventsched._jobs._sync import FOLD_CHUNK, StoreSync
from eventsched.cli._jobs import StateFileError, read_state_file_version

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
FP = "interval[0:00:01]"
#: Ten jobs whose ids are not in the order their rows were written in.
IDS = [f"job{n}" for n in (7, 2, 9, 0, 5, 3, 8, 1, 6, 4)]


def _store(path: Path) -> SQLiteJobStore:
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    return store


def _crash(store: SQLiteJobStore) -> None:
    """Let go of the file as a killed process does: no fold, no close of the store."""
    assert store._conn is not None
    store._conn.close()
    store._conn = None
    assert store._lock_fd is not None
    os.close(store._lock_fd)
    store._lock_fd = None


def _rows(path: Path) -> dict[str, tuple[object, ...]]:
    """The rows themselves (without updated_at), the log not laid over them."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs").fetchall()
    conn.close()
    return {str(row[0]): tuple(row) for row in rows}


def _records(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        count = int(conn.execute("SELECT count(*) FROM claims").fetchone()[0])
    conn.close()
    return count


def _full(job_id: str, saved: SavedJob) -> tuple[object, ...]:
    return row_of(job_id, saved, "now")[:-1]


def _claims(ids: list[str], at: datetime) -> dict[str, SavedJob | None]:
    """Each job's claim of ``at`` (its next fire time, written before)."""
    return {job_id: SavedJob(FP, at, at + timedelta(seconds=1), (at,)) for job_id in ids}


def _new(path: Path) -> tuple[SQLiteJobStore, dict[str, SavedJob | None]]:
    store = _store(path)
    first: dict[str, SavedJob | None] = {job_id: SavedJob(FP, None, T0) for job_id in IDS}
    store.save_now(first)
    return store, first


def test_claims_go_to_the_log_and_are_folded_in_chunks_in_order_of_rowid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    store, first = _new(path)
    rows_before = _rows(path)
    claims = _claims(IDS, T0)
    store.save_now(claims)  # a pass's claims: one record, no row written
    assert _records(path) == 1
    assert _rows(path) == rows_before
    listed, version = read_state_file_version(path)  # a reader sees them
    assert version == 3
    assert listed == claims

    # A round of chunks of 4: the rows in order of rowid (the order they were written).
    assert store.fold_now(4)
    folded = [job_id for job_id in IDS if _rows(path)[job_id] != rows_before[job_id]]
    assert folded == IDS[:4]
    # Meanwhile a pass claims one job again: its newer record is not the round's.
    later = _claims([IDS[9]], T0 + timedelta(seconds=1))
    store.save_now(later)
    assert store.fold_now(4)
    assert not store.fold_now(4)  # the round's last chunk: its records deleted
    assert _records(path) == 1  # the newer one
    expected = {job_id: _full(job_id, state) for job_id, state in claims.items() if state}
    assert _rows(path) == expected
    assert read_state_file_version(path)[0] == {**claims, **later}
    assert not store.fold_now(4)  # the next round folds the newer record
    assert _records(path) == 0
    assert _rows(path)[IDS[9]] == _full(IDS[9], later[IDS[9]])  # type: ignore[arg-type]
    assert not store.fold_now(4)  # nothing left: no transaction
    store.close_now()
    assert first  # (written as rows at once: new rows are never logged)


def test_a_start_after_a_crash_folds_what_the_log_holds(tmp_path: Path) -> None:
    """Records committed are as durable as rows: the next start folds each job's
    latest before reading, and empties the log."""
    path = tmp_path / "jobs.sqlite"
    store, _ = _new(path)
    store.save_now(_claims(IDS, T0))
    ends = {
        job_id: SavedJob(FP, T0, T0 + timedelta(seconds=1), (), None, "completed")
        for job_id in IDS[:3]
    }
    store.save_now(dict(ends))
    _crash(store)
    assert _records(path) == 2
    again = SQLiteJobStore(path, warn=False)
    again.lock_now()
    loaded = again.load_now()
    assert loaded == {**_claims(IDS, T0), **ends}
    assert _records(path) == 0
    assert _rows(path) == {job_id: _full(job_id, state) for job_id, state in loaded.items()}
    again.close_now()


def test_a_row_written_whole_folds_the_log_first(tmp_path: Path) -> None:
    """A save that adds, rewrites or deletes a row folds every record in the same
    transaction: no record is older than its row, so none can undo it after a crash."""
    path = tmp_path / "jobs.sqlite"
    store, _ = _new(path)
    store.save_now(_claims(IDS, T0))
    changed = SavedJob("cron[...]", T0, T0 + timedelta(hours=1))
    store.save_now({IDS[0]: changed, IDS[1]: None})
    assert _records(path) == 0
    _crash(store)
    again = SQLiteJobStore(path, warn=False)
    again.lock_now()
    loaded = again.load_now()
    again.close_now()
    assert loaded[IDS[0]] == changed
    assert IDS[1] not in loaded
    assert loaded[IDS[2]] == _claims([IDS[2]], T0)[IDS[2]]


def test_the_close_folds_the_log_whole(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, _ = _new(path)
    claims = _claims(IDS, T0)
    store.save_now(claims)
    store.close_now()
    assert _records(path) == 0
    assert _rows(path) == {job_id: _full(job_id, s) for job_id, s in claims.items() if s}


def test_a_failed_chunk_leaves_the_records_for_the_next_round(tmp_path: Path) -> None:
    """A chunk whose transaction fails is rolled back; the round begins again from what
    is still pending (no record deleted), and every row ends up as claimed."""
    path = tmp_path / "jobs.sqlite"
    store, _ = _new(path)
    claims = _claims(IDS, T0)
    store.save_now(claims)
    assert store.fold_now(4)  # the first chunk
    assert store._conn is not None
    with store._conn:
        store._conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON jobs BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    with pytest.raises(sqlite3.DatabaseError):
        store.fold_now(4)
    with store._conn:
        store._conn.execute("DROP TRIGGER refuse")
    assert _records(path) == 1
    chunks = 1
    while store.fold_now(4):
        chunks += 1
    assert chunks == 2  # a round anew: the six rows not folded yet
    assert _records(path) == 0
    assert _rows(path) == {job_id: _full(job_id, s) for job_id, s in claims.items() if s}
    store.close_now()


def test_a_version_2_file_is_given_a_claim_log_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, first = _new(path)
    store.close_now()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE claims")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
    conn.close()
    assert read_state_file_version(path) == (first, 2)  # read as it is, not migrated
    again = SQLiteJobStore(path, warn=False)
    again.lock_now()
    assert again.load_now() == first
    again.save_now(_claims(IDS, T0))  # after a start, a job's first save is its row
    again.save_now(_claims(IDS, T0 + timedelta(seconds=1)))  # then claims are logged
    assert _records(path) == 1
    again.close_now()
    assert read_state_file_version(path) == (_claims(IDS, T0 + timedelta(seconds=1)), 3)


def test_a_malformed_record_is_refused_by_its_number_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, _ = _new(path)
    store.close_now()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO claims VALUES (7, 'now', '[[\"job1\", 5, null, null, null, 1]]')")
    conn.close()
    before = path.read_bytes()
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    try:
        with pytest.raises(JobStateError, match=r"claim log record 7 is malformed"):
            store.load_now()
    finally:
        store.close_now()
    assert path.read_bytes() == before
    with pytest.raises(StateFileError, match=r"claim log record 7 is malformed"):
        read_state_file_version(path)


class _FoldingStore:
    """A store that keeps a claim log: each fold a chunk, whether more are left."""

    location = None

    def __init__(self, chunks: int) -> None:
        self.folds: list[int] = []
        self.left = chunks
        self.lock_held: list[bool] = []
        self.sync: StoreSync | None = None

    async def lock(self) -> None:
        return None

    async def load(self) -> dict[str, SavedJob]:
        return {}

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        return frozenset()

    async def close(self) -> None:
        return None

    async def fold(self, limit: int) -> bool:
        assert self.sync is not None
        assert self.sync._lock is not None
        self.lock_held.append(self.sync._lock.locked())
        self.folds.append(limit)
        self.left -= 1
        return self.left > 0


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_the_writer_folds_the_log_a_chunk_at_a_time_after_its_round() -> None:
    store = _FoldingStore(chunks=3)
    sync = store.sync = StoreSync(store)
    await sync.open()
    sync.mark("a", SavedJob(FP, T0, T0 + timedelta(seconds=1)), urgent=False)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()
            group.start_soon(sync.writer, scope)
            sync.save_soon()
            await anyio.sleep(1)  # the round, and less than SAVE_DELAY after it
            scope.cancel()
    assert store.folds == [FOLD_CHUNK] * 3
    assert store.lock_held == [True] * 3  # each chunk under the lock, as a save is
