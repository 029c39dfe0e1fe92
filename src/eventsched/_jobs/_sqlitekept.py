"""A start-up's read of the SQLite state file, made ahead by the stop before it.

A start reads every plain row in one scan of the table that builds a JSON array per
column (:func:`~._sqliterows.read_columns`): at 50,000 jobs about 20-25 ms of a start-up
of ~90 (docs/benchmarks.md). Between a clean stop and the next start no row changes, so
the stop builds the same arrays (in C, in the worker thread) and keeps them in the
``meta`` table as one JSON value, ``startup``, with a small row saying it is current,
``startup_current``; the next start reads that value (~2 ms for 3 MB) instead of the
table.

It is never used stale: with the value, the stop creates triggers that delete the row
saying it is current at any change of a row in ``jobs``, by anyone (an older
eventsched, the ``sqlite3`` shell, another tool). The start deletes that row itself and
drops the triggers, in its opening transaction, so that a running scheduler's own saves
cost no trigger, and a process killed while running leaves a value no start uses: its
next start scans the table. The value itself stays until the next stop writes over it:
deleting 3 MB (freeing ~700 pages, and the commit after) cost a start ~10 ms. A value
that cannot be used (not ours, or edited) is ignored, and the table is scanned.

What the value holds is what the scan returns: the number of all rows and the arrays
of the plain ones, each fingerprint as its index in the stop's list of the code's
fingerprints (kept with it) when it was one of them; the start maps those indexes to its
own list. Its values are as unchecked as the scan's: the take-up checks them, and reads
any row it cannot take up again from the table (:mod:`._resume`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from ._sqliterows import MAX_MATCHED, PLAIN, SavedColumns, column_arrays, read_rows

__all__ = ["keep_start_read", "take_start_read"]

#: The ``meta`` keys of the value and of the row saying it is current; the value's first
#: element.
_KEY: Final = "startup"
_CURRENT: Final = "startup_current"
_TAG: Final = "eventsched-startup-1"
_EVENTS: Final = ("INSERT", "UPDATE", "DELETE")
_TRIGGERS: Final = tuple(
    f"CREATE TRIGGER IF NOT EXISTS eventsched_startup_{event.lower()} AFTER {event} ON jobs"
    f" BEGIN DELETE FROM meta WHERE key = '{_CURRENT}'; END"
    for event in _EVENTS
)
_DROPS: Final = tuple(
    f"DROP TRIGGER IF EXISTS eventsched_startup_{event.lower()}" for event in _EVENTS
)


def keep_start_read(conn: sqlite3.Connection, known: list[str]) -> None:
    """At a stop, after the last save: keep the next start's read of the table, given the
    code's fingerprints ``known``, and the triggers that make it stale at any change of a
    row (one transaction: all or nothing). :raises sqlite3.Error:"""
    known = known if len(known) <= MAX_MATCHED else []
    with conn:
        conn.execute("DELETE FROM meta WHERE key IN (?, ?)", (_KEY, _CURRENT))
        conn.execute(
            "INSERT INTO meta (key, value) SELECT ?, json_array(?, json(?),"
            f" (SELECT count(*) FROM jobs), {column_arrays(known)}) FROM jobs WHERE {PLAIN}",
            [_KEY, _TAG, json.dumps(known), *known],
        )
        conn.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (_CURRENT,))
        for statement in _TRIGGERS:
            conn.execute(statement)


def take_start_read(path: str, conn: sqlite3.Connection, known: list[str]) -> SavedColumns | None:
    """At a start, in its opening transaction: the read the stop before kept, if it is
    current (else None; also if it cannot be used), as :func:`~._sqliterows.read_columns`
    returns it for the code's fingerprints ``known``. Stale from now on either way: the
    row saying it is current and the triggers are gone. :raises JobStateError: (a row that
    is not plain, read checked)"""
    row = conn.execute(
        "SELECT value FROM meta WHERE key = ? AND EXISTS (SELECT 1 FROM meta WHERE key = ?)",
        (_KEY, _CURRENT),
    ).fetchone()
    conn.execute("DELETE FROM meta WHERE key = ?", (_CURRENT,))
    for statement in _DROPS:
        conn.execute(statement)
    kept = None if row is None else _decoded(row[0], known if len(known) <= MAX_MATCHED else [])
    if kept is None:
        return None
    total, columns = kept
    if total != len(columns.ids):  # paused, claimed or exhausted rows: read checked
        columns.others = read_rows(path, conn, where=f"NOT ({PLAIN})")
    return columns


def _decoded(value: Any, known: list[str]) -> tuple[int, SavedColumns] | None:
    """The number of all rows and the plain ones' columns in a kept value (None: it is
    not one this code wrote), its fingerprints mapped to indexes in ``known``."""
    try:
        tag, kept_known, total, *columns = json.loads(value)
        ids, fingerprints, nexts, lasts, outcomes = columns
    except (TypeError, ValueError):  # not text, not JSON, not the shape written
        return None
    if (
        tag != _TAG
        or total.__class__ is not int
        or not all(column.__class__ is list for column in (kept_known, *columns))
        or len({len(column) for column in columns}) != 1
        or not all(fingerprint.__class__ is str for fingerprint in kept_known)
    ):
        return None
    # Index in the stop's list -> index in this start's (or the text, if not in it).
    now_known = {fingerprint: i for i, fingerprint in enumerate(known)}
    mapped = {i: now_known.get(text, text) for i, text in enumerate(kept_known)}
    try:
        fingerprints = list(map(mapped.__getitem__, fingerprints))
    except (KeyError, TypeError):  # some kept as text (not one of the stop's)
        try:
            fingerprints = [mapped[f] if f.__class__ is int else f for f in fingerprints]
        except KeyError:  # an index the stop's list does not have
            return None
    return total, SavedColumns(ids, fingerprints, nexts, lasts, outcomes)
