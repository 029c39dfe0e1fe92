"""Writing saved states to the SQLite file's rows cheaply: the cost per claim.

With a state file every run is a row write (its claim, which carries the previous
run's end), 10,000 a second at the ``jobs`` benchmark's scale. Building the row's
values was half of that write's CPU (three ``datetime.isoformat`` at ~0.8 us each: the
claimed fire time as the last fire time and in ``running``, and the next fire time),
the upsert of all eight columns the other half.

So the store remembers, per job, what it last wrote: the fingerprint and pausing (a
claim does not change them) and the next fire time with its text. A job's claim takes
up as its last fire time the fire time that was its next one in the row written
before, and a run's end leaves the next fire time as the claim wrote it: their texts
are reused, and a row then costs about one ``isoformat`` instead of three. A row whose
fingerprint and pausing are as last written is an ``UPDATE`` of the four columns a
claim or an end changes (plus ``updated_at``), not an upsert of all of them.

What is remembered is what was committed: a transaction that fails leaves it as it
was. The file is locked by this process, so nothing else changes a row meanwhile; if
an ``UPDATE`` still finds fewer rows than it names, the same rows are written again in
full (upsert) in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Final, NamedTuple

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
#: What a claim or a run's end changes in a row this store wrote before.
_UPDATE: Final = (
    "UPDATE jobs SET last_fire_time = ?, next_fire_time = ?, running = ?,"
    " last_outcome = ?, updated_at = ? WHERE job_id = ?"
)


class _Written(NamedTuple):
    """What the store last committed for a job (see the module documentation)."""

    fingerprint: str
    paused: bool | None
    next_fire_time: datetime | None
    next_text: str | None


class RowWriter:
    """Applies changes to the ``jobs`` table, remembering what it wrote per job."""

    __slots__ = ("_written",)

    def __init__(self) -> None:
        self._written: dict[str, _Written] = {}

    def forget(self) -> None:
        """Nothing is known to be written (the file was closed or opened again)."""
        self._written.clear()

    def save(
        self, conn: sqlite3.Connection, changes: Mapping[str, SavedJob | None], now: str
    ) -> None:
        """Apply ``changes`` in one committed transaction; None deletes a job's state."""
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
            before = known.get(job_id)
            if before is None:
                upserts.append(row_of(job_id, saved, now))
                following = saved.next_fire_time
                written[job_id] = _Written(
                    saved.fingerprint,
                    saved.paused,
                    following,
                    None if following is None else following.isoformat(),
                )
                continue
            last, following = saved.last_fire_time, saved.next_fire_time
            # The texts of the times the row written before already had.
            last_text = _text(last, before.next_fire_time, before.next_text)
            next_text = _text(following, before.next_fire_time, before.next_text)
            running = (
                "[" + ",".join(f'"{_text(at, last, last_text)}"' for at in saved.running) + "]"
                if saved.running
                else None
            )
            written[job_id] = _Written(saved.fingerprint, saved.paused, following, next_text)
            if saved.fingerprint == before.fingerprint and saved.paused == before.paused:
                updates.append((last_text, next_text, running, saved.last_outcome, now, job_id))
            else:
                paused = None if saved.paused is None else int(saved.paused)
                upserts.append(
                    (
                        job_id,
                        saved.fingerprint,
                        last_text,
                        next_text,
                        running,
                        paused,
                        saved.last_outcome,
                        now,
                    )
                )
        with conn:
            if deleted:
                conn.executemany("DELETE FROM jobs WHERE job_id = ?", deleted)
            if updates and conn.executemany(_UPDATE, updates).rowcount != len(updates):
                # A row gone that this store wrote (not expected: the file is locked):
                # write them whole.
                conn.executemany(UPSERT, [_full(changes, row[-1], now) for row in updates])
            if upserts:
                conn.executemany(UPSERT, upserts)
        for job_id, state in written.items():
            if state is None:
                known.pop(job_id, None)
            else:
                known[job_id] = state


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
    return at.isoformat()


def _full(changes: Mapping[str, SavedJob | None], job_id: object, now: str) -> tuple[object, ...]:
    saved = changes[str(job_id)]
    assert saved is not None
    return row_of(str(job_id), saved, now)
