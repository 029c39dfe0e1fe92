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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

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
#: What a claim or a run's end changes in a row this store wrote before: found by its
#: rowid (the ``job_id`` index is not searched), the id checked all the same.
_UPDATE: Final = (
    "UPDATE jobs SET last_fire_time = ?, next_fire_time = ?, running = ?,"
    " last_outcome = ?, updated_at = ? WHERE rowid = ? AND job_id = ?"
)
_ROWIDS: Final = "SELECT job_id, rowid FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))"

#: What the store last committed for a job: fingerprint, paused, next fire time, its
#: text, and the row's rowid (None: not known yet). A plain tuple: built per row.
_Written = tuple[str, bool | None, datetime | None, str | None, int | None]


class RowWriter:
    """Applies changes to the ``jobs`` table, remembering what it wrote per job."""

    __slots__ = ("_written",)

    def __init__(self) -> None:
        self._written: dict[str, _Written] = {}

    def forget(self) -> None:
        """Nothing is known to be written (the file was closed or opened again)."""
        self._written.clear()

    @property
    def written(self) -> Mapping[str, tuple[object, ...]]:
        """Per job, what the file's committed row holds: its fingerprint and pausing
        first (read on the event loop's thread, see :mod:`._claims`; only this store's
        saves change it, each job's entry at once)."""
        return self._written

    def save(
        self,
        conn: sqlite3.Connection,
        changes: Mapping[str, SavedJob | None],
        now: str,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Apply ``changes`` in one committed transaction; None deletes a job's state.
        ``also``: more to write in the same transaction (after the rows)."""
        known = self._written
        written: dict[str, _Written | None] = {}
        deleted: list[tuple[str]] = []
        updates: list[tuple[object, ...]] = []
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
                updates.append(
                    (last_text, next_text, running, saved.last_outcome, now, rowid, job_id)
                )
            else:
                paused_value = None if paused is None else int(paused)
                row = (job_id, fingerprint, last_text, next_text, running, paused_value)
                upserts.append((*row, saved.last_outcome, now))
        with conn:
            if deleted:
                conn.executemany("DELETE FROM jobs WHERE job_id = ?", deleted)
            looked_up: list[object] = []
            if updates and conn.executemany(_UPDATE, updates).rowcount != len(updates):
                # A row gone or moved that this store wrote (not expected: the file is
                # locked): write them whole, and look their rowids up again.
                looked_up = [row[-1] for row in updates]
                conn.executemany(UPSERT, [_full(changes, job_id, now) for job_id in looked_up])
            if upserts:
                conn.executemany(UPSERT, upserts)
                looked_up += [row[0] for row in upserts]
            if looked_up:
                # Their rowids, for the updates that follow (once per job and file).
                for job_id, rowid in conn.execute(_ROWIDS, (json.dumps(looked_up),)):
                    state = written.get(job_id)
                    if state is not None:
                        written[job_id] = (*state[:4], rowid)
            if also is not None:
                also(conn)
        for job_id, state in written.items():
            if state is None:
                known.pop(job_id, None)
            else:
                known[job_id] = state


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


def _full(changes: Mapping[str, SavedJob | None], job_id: object, now: str) -> tuple[object, ...]:
    saved = changes[str(job_id)]
    assert saved is not None
    return row_of(str(job_id), saved, now)
