"""The SQLite state file's claim log (version 3): a pass's claims as one appended record.

With a state file each pass commits its claims before their fire times (see
:mod:`._scheduler`): a row per claimed run. As an ``UPDATE`` of each job's row, the
commit wrote every page those rows lie on to the write-ahead log (two ``pwrite`` calls
a page), and a pass's jobs lie on as many pages as it has jobs when their fire times
bear no relation to the order the jobs were added in (jobs of several intervals, cron
jobs): 400 runs touched ~350 of a 10,000-job table's ~600 pages, ~5 us a row of commit
alone, against ~0.5 when they lay together (docs/benchmarks.md, "the claim log").

So a save that only moves jobs' schedules on (a claim or a run's end: the fire times,
``running``, the outcome) appends them as one record to the ``claims`` table, a JSON
array of ``[job_id, last_fire_time, next_fire_time, running, last_outcome, rowid]``
(what the row's columns hold), a few pages at the end of the file whatever the jobs.
The writer folds the records into the rows at its rounds (:meth:`ClaimLog.round`):
each job's latest values once, in order of rowid, in chunks that are each a
transaction of their own, then deletes the records folded. A save that adds, rewrites
or deletes a row folds every record first, in its own transaction: no record is ever
older than its row.

A record committed is as durable as the rows' update was: a start after a crash folds
what the log holds (:func:`fold_logged`, each job's latest) in the transaction that
opens the file, before the rows are read; ``eventsched jobs``, which never writes, lays
the log over the rows (:func:`read_logged`). A clean stop folds everything: a file at
rest has an empty log.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from operator import itemgetter
from typing import Any, Final

from .._exceptions import JobStateError

__all__ = ["LOG_TABLE", "ClaimLog", "Item", "fold_logged", "read_logged", "update_items"]

LOG_TABLE: Final = (
    "CREATE TABLE claims (seq INTEGER PRIMARY KEY, saved_at TEXT NOT NULL, items TEXT NOT NULL)"
)
#: A logged change: job id, last and next fire time, running, last outcome (as the
#: row's columns hold them) and the row's rowid (what this process knew it as).
Item = tuple[str, str | None, str | None, str | None, str | None, int]
#: A job's latest item pending: the row's rowid (first: what a round sorts by), the
#: item, the record's saved_at and seq.
Pending = tuple[int, Item, str, int]
_ROWID: Final = itemgetter(0)
#: Items applied per statement (7 parameters each: SQLite takes up to 32,766).
_PER_STATEMENT: Final = 512


@functools.lru_cache(maxsize=8)
def _update_items(count: int) -> str:
    """``count`` items (each ``(*item, updated_at)``) applied to their rows by rowid,
    the id checked too, as one statement of ``VALUES``.

    Not ``executemany``: Python's ``sqlite3`` lets go of the interpreter lock around
    each row's step and must win it back from the event loop's thread, busy with runs,
    so a fold of 512 rows took up to ~50 ms while it held the lock a pass waits for.
    Nor one JSON array taken apart in SQL (``json_each``): ~5-6 us a row against ~2.5
    (docs/benchmarks.md, "The claim log").
    """
    values = ",".join(["(?,?,?,?,?,?,?)"] * count)
    return (
        "UPDATE jobs SET last_fire_time = c.column2, next_fire_time = c.column3,"
        " running = c.column4, last_outcome = c.column5, updated_at = c.column7"
        f" FROM (VALUES {values}) AS c WHERE jobs.rowid = c.column6 AND jobs.job_id = c.column1"
    )


def update_items(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Apply ``rows`` (each an item and its ``updated_at``) in the caller's
    transaction; how many rows of the table they found."""
    found = 0
    for start in range(0, len(rows), _PER_STATEMENT):
        part = rows[start : start + _PER_STATEMENT]
        flat = [value for row in part for value in row]
        found += conn.execute(_update_items(len(part)), flat).rowcount
    return found


#: A logged item applied after a crash: by id (rowids are this process's knowledge).
_UPDATE_BY_ID: Final = (
    "UPDATE jobs SET last_fire_time = ?2, next_fire_time = ?3, running = ?4,"
    " last_outcome = ?5, updated_at = ?6 WHERE job_id = ?1"
)


class ClaimLog:
    """Each job's latest change logged and not folded yet (as committed)."""

    __slots__ = ("_pending", "_round", "_seq", "_upto")

    def __init__(self) -> None:
        # job id: (rowid, item, saved_at, seq), updated as records are committed (a
        # dict update per save, ~0.1 us an item), so that a fold round needs no pass
        # over the records: at 10,000 runs a second, 50,000 items a round, where the
        # jobs are 10,000 (a pass over the records held the interpreter ~15 ms).
        self._pending: dict[str, Pending] = {}
        # The fold in progress: the pending entries when it began, by rowid,
        # descending (chunks are taken from the end).
        self._round: list[Pending] = []
        self._seq = 0  # the last record committed
        self._upto = 0  # the last record the round in progress folds

    def __bool__(self) -> bool:
        return bool(self._pending)

    def forget(self) -> None:
        """Nothing is pending (the file was closed, or every record folded)."""
        self._pending.clear()
        self._round.clear()

    def append(self, conn: sqlite3.Connection, items: list[Item], now: str) -> int:
        """Append ``items`` as one record in the caller's transaction; its seq (to be
        passed to :meth:`appended` once committed)."""
        cursor = conn.execute(
            "INSERT INTO claims (saved_at, items) VALUES (?, ?)", (now, json.dumps(items))
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def appended(self, seq: int, items: list[Item], now: str) -> None:
        self._seq = seq
        self._pending.update([(item[0], (item[5], item, now, seq)) for item in items])

    def rows(self) -> list[tuple[Any, ...]]:
        """The items (with their saved_at) of every job pending (a fold of all)."""
        return [(*item, at) for _, item, at, _ in self._pending.values()]

    def round(self, limit: int) -> tuple[list[Pending], int] | None:
        """The next chunk of the fold in progress (one begins if none is): up to
        ``limit`` entries, and the seq up to which records may be deleted once this
        chunk is committed (0: not yet, more chunks follow). None: nothing to fold.

        A round folds the entries pending when it begins, in order of rowid (a chunk's
        rows lie together, on a few pages), sorted by the rowids alone (ints: ~1 ms for
        10,000, where comparing the tuples took several). A job logged again since keeps
        its newer entry, whose record is not the round's.
        """
        if not self._round:
            if not self._pending:
                return None
            self._upto = self._seq
            self._round = sorted(self._pending.values(), key=_ROWID, reverse=True)
        chunk = self._round[-limit:]
        del self._round[-limit:]
        chunk.reverse()
        return chunk, 0 if self._round else self._upto

    def folded(self, chunk: list[Pending]) -> None:
        """The chunk's rows were written (committed): no longer pending, unless logged
        again since."""
        pending = self._pending
        for entry in chunk:
            job_id = entry[1][0]
            if pending.get(job_id) is entry:
                del pending[job_id]

    def abandon(self) -> None:
        """A chunk failed: the round begins again, from what is pending, next time."""
        self._round.clear()


def read_logged(conn: sqlite3.Connection, path: str) -> dict[str, tuple[Any, ...]]:
    """Each job's latest logged values in the file (``job_id``: last, next, running,
    last outcome, saved_at), checked in form. :raises JobStateError:"""
    latest: dict[str, tuple[Any, ...]] = {}
    for seq, saved_at, text in conn.execute("SELECT seq, saved_at, items FROM claims ORDER BY seq"):
        try:
            for item in json.loads(text):
                job_id, *values = _checked(item)
                latest[job_id] = (*values, saved_at)
        except (TypeError, ValueError, RecursionError) as exc:
            raise JobStateError(
                f"{path}: claim log record {seq} is malformed ({str(exc)[:80]})"
            ) from None
    return latest


def _checked(item: Any) -> tuple[str, Any, Any, Any, Any]:
    """An item's id and the values of its row's columns. :raises ValueError:"""
    job_id, last, following, running, outcome, _ = item
    if not isinstance(job_id, str) or not all(
        value is None or isinstance(value, str) for value in (last, following, running, outcome)
    ):
        raise ValueError(f"an item of job {job_id!r} is not text")
    return job_id, last, following, running, outcome


def fold_logged(conn: sqlite3.Connection, path: str) -> int:
    """Fold the log into the rows and empty it, in the caller's transaction (a start:
    records left by a process that did not stop cleanly); how many jobs' rows were
    brought up to date. :raises JobStateError:"""
    latest = read_logged(conn, path)
    if latest:
        conn.executemany(_UPDATE_BY_ID, [(job_id, *values) for job_id, values in latest.items()])
    conn.execute("DELETE FROM claims")
    return len(latest)
