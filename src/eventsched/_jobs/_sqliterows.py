"""The rows of the SQLite job state file: its schema versions, reading, writing, migrating.

**Version 3** (this one) has version 2's rows, and in ``meta`` may hold
``claimed_before``: a time before which every fire time of a job in the file has been
claimed, whatever its row says (see :mod:`._claims`). A row is then not written at each
claim; a version 2 reader would run those claims again after a crash, so the version
changed. A version 2 file becomes version 3 when the scheduler opens it (nothing else
changes).

**Version 2** kept each field of :class:`~eventsched.SavedJob` in a column
of its own: times as ISO 8601 text with their UTC offset (``datetime.fromisoformat``
reads one in ~0.15 us, against ~0.37 us for ``fromtimestamp`` of a number, and the
offset is kept as version 1 kept it), the claimed fire times as a JSON array (NULL
when none: almost every row), ``paused`` as 0/1 and the last run's outcome as text
(both NULL in rows migrated from version 1: not recorded). Loading 50,000 rows then
needs no JSON per row: in version 1 a ``json.loads`` and a checked parse of three
times per row made loading alone ~0.45 s of CPU.

**Version 1** kept one JSON document per row (``state``). A version 1 file is migrated
when the scheduler opens it (one transaction: all rows or none); ``eventsched jobs``
reads either version as it is and never migrates. A file of a version newer than this
code knows is refused with a one-line message, never read or rewritten.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .._exceptions import JobStateError
from ._store import SavedJob

__all__ = [
    "CLAIMED_BEFORE",
    "FORMAT",
    "FORMAT_VERSION",
    "JOB_COLUMNS",
    "MAX_MATCHED",
    "OUTCOMES",
    "OUTCOME_CODES",
    "SCHEMA",
    "SavedColumns",
    "migrate_v1",
    "parse_v1",
    "read_columns",
    "read_rows",
    "read_some",
    "row_of",
]

#: Marker stored in the ``meta`` table; a file without it is not ours.
FORMAT: Final = "eventsched-job-state"
FORMAT_VERSION: Final = 3
#: The ``meta`` key of the time before which every fire time has been claimed.
CLAIMED_BEFORE: Final = "claimed_before"

SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
    " last_fire_time TEXT, next_fire_time TEXT, running TEXT, paused INTEGER,"
    " last_outcome TEXT, updated_at TEXT NOT NULL)",
)
#: The columns ``read_rows`` selects, in its order.
JOB_COLUMNS: Final = (
    "job_id, fingerprint, last_fire_time, next_fire_time, running, paused, last_outcome"
)
#: Run outcomes a row may hold (besides NULL: not recorded).
OUTCOMES: Final = frozenset({"completed", "failed", "timed_out", "aborted", "interrupted"})
#: A start-up's bulk read gives a known outcome as its index in this tuple.
OUTCOME_CODES: Final = ("completed", "failed", "timed_out", "aborted", "interrupted")

_EDGES: Final = (1, 9999)

Bad = Callable[[str], JobStateError]


def row_of(job_id: str, saved: SavedJob, now: str) -> tuple[Any, ...]:
    """The values of a version 2 row (``INSERT`` order)."""
    running = (
        "[" + ",".join(f'"{at.isoformat()}"' for at in saved.running) + "]"
        if saved.running
        else None
    )
    last, following = saved.last_fire_time, saved.next_fire_time
    return (
        job_id,
        saved.fingerprint,
        None if last is None else last.isoformat(),
        None if following is None else following.isoformat(),
        running,
        None if saved.paused is None else int(saved.paused),
        saved.last_outcome,
        now,
    )


_PAUSED: Final = {None: None, 0: False, 1: True}


#: The rows a start-up takes up in bulk (:func:`read_columns`): no claimed fire time, a
#: next one, not recorded as paused. Never NULL, so ``NOT (...)`` is the exact rest.
_PLAIN: Final = "running IS NULL AND next_fire_time IS NOT NULL AND (paused IS NULL OR paused = 0)"
#: At most this many distinct fingerprints are matched in SQL (see read_columns).
MAX_MATCHED: Final = 32
#: SQLite's page cache during read_columns' scan of the table: negative, in KiB.
_SCAN_CACHE_KIB: Final = -256


@dataclass(slots=True)
class SavedColumns:
    """The saved states for a start-up, without an object per job.

    The plain rows come as parallel lists of their raw values (``ids[i]`` is the job
    of ``fingerprints[i]``, ...), unchecked: the scheduler converts (and so checks)
    only what a job needs to resume its schedule, and reads any row it cannot take up
    that way again, checked, with :func:`read_some` (a malformed row is reported then,
    naming its job). A fingerprint that is one of those the scheduler asked about
    comes as its index in that list (an int), and an outcome that is one of
    :data:`OUTCOME_CODES` as its index there. ``others`` are the rest (claimed fire
    times, paused, exhausted), read and checked as :func:`read_rows` reads them.
    """

    ids: list[Any] = field(default_factory=list)
    fingerprints: list[Any] = field(default_factory=list)
    next_fire_times: list[Any] = field(default_factory=list)
    last_fire_times: list[Any] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    others: dict[str, SavedJob] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids) + len(self.others)


def _column_arrays(known: list[str]) -> str:
    """The SQL of :class:`SavedColumns`' five arrays, aggregated over the rows selected
    (read_columns), each fingerprint one of ``known`` (bound as parameters, in order) as
    its index, and each known outcome as its index in :data:`OUTCOME_CODES`: a small
    number is no object to make in ``json.loads`` (Python keeps one of each), where
    50,000 ``"completed"`` were 50,000 strings (~3 MB) to make and hash."""
    matched = "".join(f" WHEN ? THEN {i}" for i in range(len(known)))
    fingerprint = f"CASE fingerprint{matched} ELSE fingerprint END" if known else "fingerprint"
    coded = "".join(f" WHEN '{outcome}' THEN {i}" for i, outcome in enumerate(OUTCOME_CODES))
    return (
        f"json_group_array(job_id), json_group_array({fingerprint}),"
        " json_group_array(next_fire_time), json_group_array(last_fire_time),"
        f" json_group_array(CASE last_outcome{coded} ELSE last_outcome END)"
    )


def read_columns(path: str, conn: sqlite3.Connection, known: list[str]) -> SavedColumns:
    """The version 2 rows of the open file, for a start-up. :raises JobStateError:

    One JSON array per column over all plain rows: SQLite builds the arrays in C and
    ``json.loads`` reads each in C, where a cursor makes a tuple and converts each value
    in Python's ``sqlite3`` per row (the ids and next fire times of 50,000 rows: ~19 ms
    against ~69 ms). The fingerprints were half the bytes of those arrays (~70 characters a
    row, mostly the same few): one of the ``known`` ones (if there are at most
    :data:`MAX_MATCHED`) comes as its index instead, and so does a known outcome
    (see :func:`_column_arrays`).
    """
    known = known if len(known) <= MAX_MATCHED else []
    # With the number of all rows (SQLite counts them without reading them): when every
    # row is plain, the rest need no second pass over the table (~8 ms at 50,000).
    query = f"SELECT (SELECT count(*) FROM jobs), {_column_arrays(known)} FROM jobs WHERE {_PLAIN}"
    # The scan reads every page of the table once: SQLite's page cache (2 MB by
    # default, a page fault per 4 KiB of it, ~3 us each here) would only fill up with
    # pages read once. Small for the scan, the default again after.
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {_SCAN_CACHE_KIB}")
    try:
        rows, *arrays = conn.execute(query, known).fetchone()
        columns = SavedColumns(*(json.loads(array) for array in arrays))
    except (sqlite3.DataError, sqlite3.OperationalError, ValueError):
        # A value JSON cannot hold (a BLOB): the checked read says which row.
        return SavedColumns(others=read_rows(path, conn))
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
    if rows != len(columns.ids):
        columns.others = read_rows(path, conn, where=f"NOT ({_PLAIN})")
    return columns


def read_some(path: str, conn: sqlite3.Connection, ids: Iterable[object]) -> dict[str, SavedJob]:
    """The rows of the jobs ``ids``, checked. :raises JobStateError:"""
    return read_rows(
        path,
        conn,
        where="job_id IN (SELECT value FROM json_each(?))",
        parameters=(json.dumps(list(ids)),),
    )


def read_rows(
    path: str,
    conn: sqlite3.Connection,
    *,
    ordered: bool = False,
    where: str = "",
    parameters: tuple[Any, ...] = (),
) -> dict[str, SavedJob]:
    """The version 2 rows of the open file (those ``where`` selects) as saved states.
    :raises JobStateError:

    The loop is the start-up's cost per saved job, so it converts and checks only what
    a row in the form :func:`row_of` writes needs; any other row (claimed fire times, an
    odd value) goes to :func:`_read_checked`, which says what is wrong with it if
    anything is. Checking each row's form in SQL instead (``GLOB``, ``typeof``) was
    measured: the query took 0.16 s for 50,000 rows against 0.07 s without.
    """
    parse = datetime.fromisoformat
    paused_of = _PAUSED.get
    edges = _EDGES
    outcomes = OUTCOMES
    saved: dict[str, SavedJob] = {}
    query = (
        f"SELECT {JOB_COLUMNS} FROM jobs"
        + (f" WHERE {where}" if where else "")
        + (" ORDER BY job_id" if ordered else "")
    )
    try:
        for job_id, fingerprint, last, following, running, paused, outcome in conn.execute(
            query, parameters
        ).fetchall():
            last_at = None if last is None else parse(last)
            next_at = None if following is None else parse(following)
            if (
                running is not None
                or type(fingerprint) is not str
                or type(job_id) is not str
                # No offset, or a year where the offset may not move it to UTC.
                or (last_at is not None and (last_at.tzinfo is None or last_at.year in edges))
                or (next_at is not None and (next_at.tzinfo is None or next_at.year in edges))
                or (outcome is not None and outcome not in outcomes)
                or paused not in _PAUSED
            ):
                saved[job_id] = _read_checked(
                    path, job_id, fingerprint, last, following, running, paused, outcome
                )
            else:
                saved[job_id] = SavedJob(
                    fingerprint, last_at, next_at, (), paused_of(paused), outcome
                )
    except (TypeError, ValueError, OverflowError) as exc:
        # Something the loop's conversions refused (a 13th month): find it, say so.
        for row in conn.execute(query, parameters):
            _read_checked(path, *row)
        # Not expected (the checked read refuses all the loop does): still one line.
        raise JobStateError(f"{path} has a malformed job state ({exc})") from None
    return saved


def _read_checked(
    path: str,
    job_id: object,
    fingerprint: object,
    last: object,
    following: object,
    running: object,
    paused: object,
    outcome: object,
) -> SavedJob:
    bad = _bad(path, job_id)
    if not isinstance(job_id, str):
        raise bad("its id is not text")
    if not isinstance(fingerprint, str):
        raise bad("no fingerprint")
    times: tuple[datetime, ...] = ()
    if running is not None:
        if not isinstance(running, str):
            raise bad(f"running {running!r} is not a JSON array")
        claimed = _json(running, bad)
        if not isinstance(claimed, list):
            raise bad(f"running {running!r} is not a JSON array")
        times = tuple(t for t in (_parse_time(at, bad) for at in claimed) if t is not None)
    if paused not in (None, 0, 1):
        raise bad(f"paused {paused!r} is not 0 or 1")
    if outcome is not None and outcome not in OUTCOMES:
        raise bad(f"last outcome {outcome!r} is not one of {', '.join(sorted(OUTCOMES))}")
    return SavedJob(
        fingerprint,
        _parse_time(last, bad),
        _parse_time(following, bad),
        times,
        None if paused is None else bool(paused),
        None if outcome is None else str(outcome),
    )


def _bad(path: str, job_id: object) -> Bad:
    def bad(why: str) -> JobStateError:
        return JobStateError(f"{path}: the saved state of job {job_id!r} is malformed ({why})")

    return bad


def _json(text: str, bad: Bad) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise bad(f"not JSON: {exc}") from None
    except RecursionError:
        raise bad("JSON nested too deeply") from None


def parse_v1(path: str, job_id: object, state: object) -> SavedJob:
    """A version 1 row: one JSON document (pausing and outcomes were not recorded)."""
    bad = _bad(path, job_id)
    if not isinstance(job_id, str) or not isinstance(state, str):
        raise bad("not text")
    data = _json(state, bad)
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
        raise bad("no fingerprint")
    running = data.get("running", [])
    if not isinstance(running, list):
        raise bad(f"running {running!r} is not a list")
    return SavedJob(
        data["fingerprint"],
        _parse_time(data.get("last_fire_time"), bad),
        _parse_time(data.get("next_fire_time"), bad),
        tuple(t for t in (_parse_time(at, bad) for at in running) if t is not None),
    )


def migrate_v1(conn: sqlite3.Connection, path: str, now: str) -> dict[str, SavedJob]:
    """Rewrite a version 1 file as version 2 rows (of this version), in the caller's
    transaction; its states.

    Every row is checked first: a malformed one refuses the file unchanged.
    """
    rows = conn.execute("SELECT job_id, state FROM jobs").fetchall()
    saved = {str(job_id): parse_v1(path, job_id, state) for job_id, state in rows}
    conn.execute("ALTER TABLE jobs RENAME TO jobs_v1")
    conn.execute(SCHEMA[1])
    conn.executemany(
        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [row_of(job_id, state, now) for job_id, state in saved.items()],
    )
    conn.execute("DROP TABLE jobs_v1")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(FORMAT_VERSION),))
    return saved


def _parse_time(value: object, bad: Bad) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"fire time {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"fire time {value!r} is not an ISO 8601 datetime") from None
    if parsed.tzinfo is None:
        raise bad(f"fire time {value!r} has no timezone")
    try:
        # Checked here, where the file is judged: a time near the ends of the datetime
        # range can be written but not moved to UTC (year 1 at +05:00, for one).
        parsed.astimezone(UTC)
    except OverflowError:
        raise bad(f"fire time {value!r} is out of range") from None
    return parsed
