"""The SQLite store writes a claim as an UPDATE of what changed, reusing the texts of
times it wrote before: the rows must read back exactly as full rows would."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from eventsched import SavedJob, SQLiteJobStore
from eventsched._jobs._sqliterows import JOB_COLUMNS, row_of

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _rows(path: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {
            row[0]: row for row in conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY job_id")
        }


def _full(job_id: str, saved: SavedJob) -> tuple[object, ...]:
    """The row row_of writes (without updated_at)."""
    return row_of(job_id, saved, "now")[:-1]


@contextlib.contextmanager
def opened(path: Path) -> Iterator[SQLiteJobStore]:
    """The state file at ``path``, locked and loaded, closed after."""
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    try:
        yield store
    finally:
        store.close_now()


def _write(path: Path, sequence: list[dict[str, SavedJob | None]]) -> None:
    """Save each change in turn, checking every row against a full write after each."""
    with opened(path) as store:
        expected: dict[str, tuple[object, ...]] = {}
        for changes in sequence:
            store.save_now(changes)
            for job_id, saved in changes.items():
                if saved is None:
                    expected.pop(job_id, None)
                else:
                    expected[job_id] = _full(job_id, saved)
            assert _rows(path) == expected


def test_claims_and_ends_read_back_as_full_rows(tmp_path: Path) -> None:
    fp = "interval[0:00:01]"
    at, following, after = T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    _write(
        tmp_path / "jobs.sqlite",
        [
            {"a": SavedJob(fp, None, at), "b": SavedJob(fp, None, at)},
            # A claim: last = the next written before, running = (last,).
            {"a": SavedJob(fp, at, following, (at,))},
            # Its end, with the next claim's twin in another job.
            {
                "a": SavedJob(fp, at, following, (), None, "completed"),
                "b": SavedJob(fp, at, following, (at,)),
            },
            # Two claims ahead, an outcome, then pausing and a new fingerprint (upserts).
            {"a": SavedJob(fp, following, after + timedelta(seconds=1), (following, after))},
            {"a": SavedJob(fp, after, after, (), True, "failed")},
            {"a": SavedJob("cron[...]", after, None, (), True, "failed")},
            {"b": None},
            {"b": SavedJob(fp, None, after)},
        ],
    )


def test_equal_times_written_with_another_offset_are_not_reused(tmp_path: Path) -> None:
    """Equal datetimes need not have the same text: the two 02:30 of an autumn night
    in Berlin compare equal (same tzinfo: wall time, fold ignored) an hour apart; the
    same instant in another zone has another offset. Each keeps its own text."""
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # +02:00
    second = first.replace(fold=1)  # +01:00, an hour later
    assert first == second
    assert first.isoformat() != second.isoformat()
    utc_twin = first.astimezone(UTC)
    fp = "cron[...]"
    _write(
        tmp_path / "jobs.sqlite",
        [
            {"dst": SavedJob(fp, None, first), "zone": SavedJob(fp, None, first)},
            {"dst": SavedJob(fp, second, second, (second,))},
            {"zone": SavedJob(fp, utc_twin, utc_twin, (utc_twin,))},
        ],
    )


def test_a_row_gone_behind_the_stores_back_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with opened(path) as store:
        fp = "interval[0:00:01]"
        store.save_now({"a": SavedJob(fp, None, T0), "b": SavedJob(fp, None, T0)})
        assert store._conn is not None
        with store._conn:
            store._conn.execute("DELETE FROM jobs WHERE job_id = 'a'")
        claim = SavedJob(fp, T0, T0 + timedelta(seconds=1), (T0,))
        store.save_now({"a": claim, "b": claim})
        assert _rows(path) == {"a": _full("a", claim), "b": _full("b", claim)}


def test_rows_moved_to_other_rowids_are_not_written_over(tmp_path: Path) -> None:
    """Updates find a row by the rowid it had when written, and check its id: two rows
    that swapped rowids (as a VACUUM may renumber them) are each written whole, neither
    over the other."""
    path = tmp_path / "jobs.sqlite"
    with opened(path) as store:
        fp = "interval[0:00:01]"
        store.save_now({"a": SavedJob(fp, None, T0), "b": SavedJob("other", None, T0)})
        conn = store._conn
        assert conn is not None
        with conn:
            rowids = dict(conn.execute("SELECT job_id, rowid FROM jobs"))
            rows = {r[0]: r for r in conn.execute("SELECT * FROM jobs")}
            conn.execute("DELETE FROM jobs")
            for job_id, other in (("a", "b"), ("b", "a")):
                conn.execute(
                    "INSERT INTO jobs (rowid, job_id, fingerprint, updated_at) VALUES (?, ?, ?, ?)",
                    (rowids[other], job_id, rows[job_id][1], "x"),
                )
        a = SavedJob(fp, T0, T0 + timedelta(seconds=1), (T0,))
        b = SavedJob("other", T0, T0 + timedelta(seconds=2), (T0,))
        store.save_now({"a": a, "b": b})
        assert _rows(path) == {"a": _full("a", a), "b": _full("b", b)}
        # And the rowids looked up again: the next claims are updates of the right rows.
        a2 = SavedJob(fp, a.next_fire_time, T0 + timedelta(seconds=3), (a.next_fire_time,))
        store.save_now({"a": a2})
        assert _rows(path) == {"a": _full("a", a2), "b": _full("b", b)}


def test_a_failed_save_leaves_nothing_remembered(tmp_path: Path) -> None:
    """A transaction that fails is not what the file holds: a fingerprint it would have
    written is still to be written by the next save (an update of the claim's columns
    only would leave the old one)."""
    path = tmp_path / "jobs.sqlite"
    with opened(path) as store:
        fp = "interval[0:00:01]"
        store.save_now({"a": SavedJob(fp, None, T0)})
        assert store._conn is not None
        with store._conn:
            store._conn.execute(
                "CREATE TRIGGER refuse BEFORE UPDATE ON jobs BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        try:
            store.save_now({"a": SavedJob("other", T0, T0, (), True)})
        except sqlite3.DatabaseError:
            pass
        else:
            raise AssertionError("the trigger did not refuse the save")
        with store._conn:
            store._conn.execute("DROP TRIGGER refuse")
        claim = SavedJob("other", T0, T0 + timedelta(seconds=1), (T0,), True)
        store.save_now({"a": claim})
        assert _rows(path) == {"a": _full("a", claim)}


def test_times_in_utc_are_written_as_isoformat_writes_them() -> None:
    """The rows' UTC times are built from a cached text per second (``_iso``): the
    same text as ``isoformat``, with or without a fraction, at the ends of the range,
    before 1970, and once the cache was cleared; other zones as ``isoformat``."""
    from eventsched._jobs import _sqlitesave

    cases = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),
        datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("UTC")),
    ]
    cases += [T0 + timedelta(microseconds=997 * k) for k in range(5000)]
    for at in cases * 2:  # the second time from the cache
        assert _sqlitesave._iso(at) == at.isoformat()
    assert 0 < len(_sqlitesave._seconds) <= _sqlitesave._SECONDS
    _sqlitesave._seconds.clear()
    for second in range(_sqlitesave._SECONDS + 10):  # past the cap: cleared, still right
        at = T0 + timedelta(seconds=second, microseconds=second % 3)
        assert _sqlitesave._iso(at) == at.isoformat()
    assert len(_sqlitesave._seconds) <= _sqlitesave._SECONDS
