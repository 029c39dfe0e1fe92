"""Writing saved states to the SQLite file's rows cheaply: the cost per claim.

With a state file every run is a row write (its claim, which carries the previous
run's end), 10,000 a second at the ``jobs`` benchmark's scale. Building the row's
values was half of that write's CPU (three ``datetime.isoformat`` at ~0.8 us each: the
claimed fire time as the last fire time and in ``running``, and the next fire time),
the upsert of all eight columns the other half.

So the store remembers, per job, what it last wrote: the fingerprint and pausing (a
claim does not change them), the next fire time with its text, and the row's rowid. A
job's claim takes up as its last fire time the fire time that was its next one in the
row written before, and a run's end leaves the next fire time as the claim wrote it:
their texts are reused, and a row then costs about one ``isoformat`` instead of three.
A row whose fingerprint and pausing are as last written is an ``UPDATE`` of the four
columns a claim or an end changes (plus ``updated_at``) found by its rowid, not an
upsert of all of them found through the ``job_id`` index (~2.3 against ~4.9 us of
SQLite per row, measured alone).

What is remembered is what was committed: a transaction that fails leaves it as it
was. The file is locked by this process, so nothing else changes a row meanwhile; if
an ``UPDATE`` still finds fewer rows than it names (a row gone, or another rowid: the
``job_id`` is checked too), the same rows are written again in full (upsert) in the
same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ._sqlitelog import ClaimLog, Item, update_items
from ._sqliterows import row_of
from ._store import SavedJob

__all__ = ["RowWriter"]

#: A version 2 row written over (or as) the job's row.
UPSERT: Final = (
    "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET"
    " fingerprint = excluded.fingerprint, last_fire_time = excluded.last_fire_time,"
    " next_fire_time = excluded.next_fire_time, running = excluded.running,"
    " paused = excluded.paused, last_outcome = excluded.last_outcome,"
    " updated_at = excluded.updated_at"
)
_ROWIDS: Final = "SELECT job_id, rowid FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))"

#: What the store last committed for a job: fingerprint, paused, next fire time, its
#: text, and the row's rowid (None: not known yet). A plain tuple: built per row.
_Written = tuple[str, bool | None, datetime | None, str | None, int | None]


class RowWriter:
    """Applies changes to the ``jobs`` table, remembering what it wrote per job; a save
    of claims and ends only goes to the claim log (:mod:`._sqlitelog`), folded into the
    rows by :meth:`fold`."""

    __slots__ = ("_log", "_written")

    def __init__(self) -> None:
        self._written: dict[str, _Written] = {}
        self._log = ClaimLog()

    def forget(self) -> None:
        """Nothing is known to be written (the file was closed or opened again)."""
        self._written.clear()
        self._log.forget()

    def save(
        self, conn: sqlite3.Connection, changes: Mapping[str, SavedJob | None], now: str
    ) -> None:
        """Apply ``changes`` in one committed transaction; None deletes a job's state.
        Nothing to change: the claim log is folded whole (at close)."""
        known = self._written
        written: dict[str, _Written | None] = {}
        deleted: list[tuple[str]] = []
        items: list[Item] = []
        upserts: list[tuple[object, ...]] = []
        for job_id, saved in changes.items():
            if saved is None:
                deleted.append((job_id,))
                written[job_id] = None
                continue
            fingerprint, paused = saved.fingerprint, saved.paused
            last, following = saved.last_fire_time, saved.next_fire_time
            before = known.get(job_id)
            if before is None:
                row = row_of(job_id, saved, now)
                upserts.append(row)
                written[job_id] = (fingerprint, paused, following, row[3], None)
                continue
            known_fingerprint, known_paused, known_next, known_text, rowid = before
            # The texts of the times the row written before already had: a claim's last
            # fire time was the next one then, a run's end leaves the next one as it was.
            last_text = known_text if last is known_next else _text(last, known_next, known_text)
            if following is known_next:
                next_text = known_text
            else:
                next_text = _text(following, known_next, known_text)
            claimed = saved.running
            if not claimed:
                running = None
            elif len(claimed) == 1 and claimed[0] is last:
                running = f'["{last_text}"]'
            else:
                running = "[" + ",".join(f'"{_text(at, last, last_text)}"' for at in claimed) + "]"
            written[job_id] = (fingerprint, paused, following, next_text, rowid)
            if rowid is not None and fingerprint == known_fingerprint and paused == known_paused:
                items.append((job_id, last_text, next_text, running, saved.last_outcome, rowid))
            else:
                paused_value = None if paused is None else int(paused)
                row = (job_id, fingerprint, last_text, next_text, running, paused_value)
                upserts.append((*row, saved.last_outcome, now))
        log = self._log
        rowids: dict[str, int] = {}
        if items and not deleted and not upserts:  # claims and ends: one record
            with conn:
                seq = log.append(conn, items, now)
            log.appended(seq, items, now)
        else:
            with conn:
                # Every record first: a row written below must not be older than one.
                looked_up = self._apply(conn, log.rows())
                conn.execute("DELETE FROM claims")
                if deleted:
                    conn.executemany("DELETE FROM jobs WHERE job_id = ?", deleted)
                looked_up += self._apply(conn, [(*item, now) for item in items])
                if upserts:
                    conn.executemany(UPSERT, upserts)
                    looked_up += [str(row[0]) for row in upserts]
                rowids = _rowids(conn, looked_up)
            log.forget()
        for job_id, state in written.items():
            if state is None:
                known.pop(job_id, None)
            else:
                known[job_id] = state
        self._set_rowids(rowids)

    def fold(self, conn: sqlite3.Connection, limit: int) -> bool:
        """Fold a chunk of the claim log (up to ``limit`` rows, one transaction) into
        the rows; whether the round begun has more (see :meth:`ClaimLog.round`)."""
        log = self._log
        chunk = log.round(limit)
        if chunk is None:
            return False
        entries, upto = chunk
        try:
            with conn:
                looked_up = self._apply(conn, [(*item, at) for _, item, at, _ in entries])
                if upto:
                    conn.execute("DELETE FROM claims WHERE seq <= ?", (upto,))
                rowids = _rowids(conn, looked_up)
        except BaseException:
            log.abandon()
            raise
        log.folded(entries)
        self._set_rowids(rowids)
        return not upto

    def _apply(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[str]:
        """Apply items (each with its ``updated_at``: see :func:`update_items`) in the caller's
        transaction; the ids of the rows written whole instead (to look their rowids up).

        A row gone or moved that this store wrote (not expected: the file is locked) is
        written whole: its fingerprint and pausing are as this store last wrote them (a
        change of either is an upsert, which folds the log first).
        """
        if not rows or update_items(conn, rows) == len(rows):
            return []
        known = self._written
        whole = []
        for job_id, last, following, running, outcome, _, at in rows:
            state = known.get(job_id)
            if state is not None:
                paused = None if state[1] is None else int(state[1])
                whole.append((job_id, state[0], last, following, running, paused, outcome, at))
        conn.executemany(UPSERT, whole)
        return [row[0] for row in whole]

    def _set_rowids(self, rowids: Mapping[str, int]) -> None:
        known = self._written
        for job_id, rowid in rowids.items():
            state = known.get(job_id)
            if state is not None:
                known[job_id] = (*state[:4], rowid)


def _rowids(conn: sqlite3.Connection, job_ids: list[str]) -> dict[str, int]:
    """The rowids of rows just written whole, for the updates that follow (once per job
    and file)."""
    if not job_ids:
        return {}
    return dict(conn.execute(_ROWIDS, (json.dumps(job_ids),)).fetchall())


#: The text of each whole UTC second written lately (see _iso), at most _SECONDS of them.
_seconds: dict[int, str] = {}
_SECONDS: Final = 4096
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(at: datetime) -> str:
    """``at.isoformat()``, cheaper for a time in UTC (``timezone.utc``, as the triggers
    of jobs in UTC give them): its whole second's text is kept, the microseconds added.

    ``isoformat`` of an aware datetime was ~2.5 us, a fifth of the saving thread's cost
    per claim row; this is about half that. The jobs due in a pass share a few seconds.
    Formatting in SQL instead (``strftime`` of the epoch seconds) cost ~4 us a row more.
    """
    if at.tzinfo is not UTC:
        return at.isoformat()
    delta = at - _EPOCH
    second = delta.days * 86400 + delta.seconds
    text = _seconds.get(second)
    if text is None:
        if len(_seconds) >= _SECONDS:
            _seconds.clear()
        text = _seconds[second] = at.replace(microsecond=0).isoformat()[:-6]
    micro = at.microsecond
    return f"{text}.{micro:06d}+00:00" if micro else text + "+00:00"


def _text(at: datetime | None, known: datetime | None, text: str | None) -> str | None:
    """``at`` as ISO text: ``text`` if ``known`` is the same time written the same way.

    Not mere equality: two datetimes with the same ``tzinfo`` compare by wall time,
    ignoring ``fold`` (the two 02:30 of an autumn night in Europe/Berlin are equal but
    an hour apart, with different offsets); and equal times in other zones are written
    with other offsets.
    """
    if at is None:
        return None
    if at is known or (
        known is not None and at == known and at.tzinfo is known.tzinfo and at.fold == known.fold
    ):
        return text
    return _iso(at)
