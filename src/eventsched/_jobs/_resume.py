"""A start-up's take-up of saved schedules in bulk, without an object per saved job.

A store that has ``load_columns`` (:class:`~eventsched.SQLiteJobStore`) hands over its
plain rows (no claimed fire time, a next one, not paused) as parallel lists of raw
values (:class:`~._sqliterows.SavedColumns`). :func:`resume_plain` gives each job added
before the start whose row that is, unchanged in definition, its saved schedule in one
pass, and puts it on the timeline; it leaves everything else (another definition, a
paused job, a value it cannot use) to the job-by-job take-up, which reads those rows
again, checked. So a row is never used unchecked, and a malformed one is still
reported by name.

The cost is per saved job, and at 50,000 of them a pass over the jobs is several
milliseconds whatever it does (each job is its own object, somewhere in memory). So
the values are checked column by column in C (``map``, ``set``: what the checked read
would refuse), and the jobs are visited once: the loop that gives a job its schedule
also gives it its ticket on the timeline (see :meth:`~._timeline.Timeline.filling`).
Measured at 50,000 saved jobs: see ``docs/benchmarks.md`` (start-up).
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from datetime import datetime
from itertools import compress
from operator import attrgetter, not_
from typing import Any, Final, cast

from loguru import logger

from ._entry import Entry
from ._sqliterows import OUTCOME_CODES, OUTCOMES, SavedColumns
from ._startnotes import StartNotes
from ._timeline import Timeline
from ._triggers import set_start

__all__ = ["resume_plain"]

log = logger.bind(component="jobs")

#: What a plain row's ``last_outcome`` may be.
_OUTCOMES: Final = OUTCOMES | {None}
#: A known outcome's text by its index (see _sqliterows._column_arrays); None stays None.
_OUTCOME_OF: Final[dict[Any, str | None]] = {None: None, **dict(enumerate(OUTCOME_CODES))}
#: Years where a UTC offset may not move a time to UTC: the checked read decides.
_EDGES: Final = frozenset({1, 9999})
_PARSE: Final = datetime.fromisoformat
_TIMESTAMP: Final = datetime.timestamp
_TZINFO: Final = attrgetter("tzinfo")
_YEAR: Final = attrgetter("year")
#: What an unparsable time becomes: naive, so refused like a time without an offset.
_UNUSABLE: Final = datetime.min


def resume_plain(
    entries: Mapping[str, Entry],
    columns: SavedColumns,
    known: list[str],
    now: float,
    timeline: Timeline,
    notes: StartNotes,
    before: float | None = None,
) -> tuple[int, list[object]]:
    """Resume the jobs whose plain row ``columns`` holds and queue them on ``timeline``;
    ``known``: the fingerprints the store was asked about (a row's may be an index in
    them); ``now`` as a POSIX timestamp; ``notes``: where a fire time missed while the
    scheduler was not running is noted; ``before``: the store's ``claimed_before`` as a
    timestamp (a row whose next fire time is earlier goes the job-by-job way, which
    works out what was claimed since: see _claims).

    Returns how many jobs were resumed and the ids of the rows left for the job-by-job
    take-up; ``columns``' lists are used up (emptied). A resumed job's row is written
    nowhere: it is the row it would save (no claim, the same definition, pausing as the
    code has it).

    The garbage collector is off meanwhile (no await in here, nothing else runs): the
    heap's 50,000 new ``(key, ticket)`` pairs set off ~70 young collections, and the
    first of each generation traversed every column and the list of jobs, all young
    and just built (a column of jobs is a cache miss per job): 20-28 ms of collections
    in a start-up of 0.25-0.3 s at 50,000 jobs (see docs/benchmarks.md). Off, the
    one collection after finds only the heap's new pairs (7-11 ms), the columns being
    freed by then and the heap and its dict old (see Timeline.filling).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _resume(entries, columns, known, now, timeline, notes, before)
    finally:
        if enabled:
            gc.enable()


def _resume(
    entries: Mapping[str, Entry],
    columns: SavedColumns,
    known: list[str],
    now: float,
    timeline: Timeline,
    notes: StartNotes,
    before: float | None,
) -> tuple[int, list[object]]:
    """:func:`resume_plain`, the garbage collector off."""
    ids, fingerprints = columns.ids, columns.fingerprints
    outcomes = _outcomes(columns.outcomes)
    nexts = _parse_all(columns.next_fire_times)
    lasts = _parse_all(columns.last_fire_times)
    # Their text is not needed again: freed now, its memory holds what comes next
    # rather than the process asking the system for more (a new page costs ~3 us, and
    # a start-up at 50,000 jobs faulted ~8,600 of them: see docs/benchmarks.md).
    columns.next_fire_times = columns.last_fire_times = []
    # The other columns too, so that they are gone with this call's locals before the
    # collector is on again (see resume_plain).
    columns.ids = columns.fingerprints = columns.outcomes = []
    left: list[object] = []
    if not _usable(nexts, lasts, outcomes):  # rare: those rows go the checked way
        usable = list(map(_row_usable, nexts, lasts, outcomes))
        left = [job_id for job_id, ok in zip(ids, usable, strict=True) if not ok]
        ids, fingerprints, outcomes, nexts, lasts = (
            list(compress(column, usable)) for column in (ids, fingerprints, outcomes, nexts, lasts)
        )
    keys = list(map(_TIMESTAMP, nexts))
    if before is not None and min(keys, default=before) < before:  # after a crash
        kept = [key >= before for key in keys]
        left += compress(ids, map(not_, kept))
        ids, fingerprints, outcomes, nexts, lasts, keys = (
            list(compress(column, kept))
            for column in (ids, fingerprints, outcomes, nexts, lasts, keys)
        )
    try:  # indexes in ``known`` (usually all of them): their text, in C
        fingerprints = list(map(known.__getitem__, fingerprints))
    except TypeError:  # some came as text
        fingerprints = [known[f] if f.__class__ is int else f for f in fingerprints]
    # The rows come in the order they were first saved, which is usually the order the
    # jobs were added in: then no id needs hashing and looking up (~3 ms against ~7).
    if ids == list(entries):
        jobs: list[Any] = list(entries.values())
    else:  # a row of no job (or whose id is not text) is left; the others by their id
        jobs = list(map(entries.get, ids))
        if None in jobs:
            found = [job is not None for job in jobs]
            left += compress(ids, map(not_, found))
            jobs, fingerprints, outcomes, nexts, lasts, keys = (
                list(compress(column, found))
                for column in (jobs, fingerprints, outcomes, nexts, lasts, keys)
            )
    # The ids' 50,000 strings are freed here (a job's own is ``job.id``): their memory
    # holds the heap's items next.
    ids = []
    due = min(keys, default=now) < now  # usually none: no comparison per job
    ticket = timeline.reserve(len(jobs))
    resumed = 0
    with timeline.filling() as (heap, queued):
        push = heap.append
        for job, fingerprint, at, last_at, outcome, key in zip(
            jobs, fingerprints, nexts, lasts, outcomes, keys, strict=True
        ):
            if (
                job.fingerprint != fingerprint
                or job.paused  # the row says not paused: it is written again
                or not job.persist
            ):
                left.append(job.id)
                continue
            if job.deferred is not None:  # "start": "now" does not persist
                set_start(job.trigger, at)
                job.deferred = None
            job.last_fire = last_at
            job.last_outcome = outcome
            job.next_fire = job.fire_at = at  # set_next() without jitter
            if due and key < now:
                notes.due(job.id, at)
            if job.jitter:
                job.set_next(at)
                key = _TIMESTAMP(job.fire_at)
            ticket += 1
            job.ticket = ticket
            queued[ticket] = job
            push((key, ticket))
            resumed += 1
    return resumed, left


def _parse_all(texts: list[Any]) -> list[Any]:
    """Each time parsed (None stays None), in C when none or all are None; one that does not
    parse (or is not text) becomes :data:`_UNUSABLE`, which :func:`_usable` refuses."""
    try:
        if None not in texts:
            return list(map(_PARSE, texts))
        if texts.count(None) == len(texts):  # no job has run yet: nothing to parse
            return texts
        return [text if text is None else _PARSE(text) for text in texts]
    except (TypeError, ValueError):
        return [None if text is None else _parsed(text) for text in texts]


def _parsed(text: object) -> datetime:
    try:
        return _PARSE(text)  # type: ignore[arg-type]  # not text: TypeError
    except (TypeError, ValueError):
        return _UNUSABLE


def _outcomes(codes: list[Any]) -> list[Any]:
    """The outcomes of the rows, each known one given as its index in OUTCOME_CODES
    (see _sqliterows._column_arrays); anything else is kept as it came, for _usable to
    refuse."""
    try:
        return list(map(_OUTCOME_OF.__getitem__, codes))
    except (KeyError, TypeError):  # text (not an outcome), or not even hashable
        return [_OUTCOME_OF.get(code, code) if code.__class__ is int else code for code in codes]


def _usable(nexts: list[datetime], lasts: list[datetime | None], outcomes: list[Any]) -> bool:
    """Whether every row's values are as the checked read would take them, column by
    column in C: an outcome it knows, each time with a UTC offset and in a year where
    that offset can move it to UTC. (A plain row's next fire time is never None.)

    The times by their earliest and latest alone (two passes of comparisons, ~1 ms for
    50,000, against ~3 for the offset and the year of each): comparing a time without an
    offset with one that has one is a TypeError, so if the earliest has an offset all
    have; an offset moves a time by less than a day, so no time is in year 1 (or 9999)
    if the earliest is after year 2 (the latest before 9998). A column that fails this
    goes row by row (:func:`_row_usable`), which may still take every row.
    """
    # (A datetime is never false: filter(None, ...) drops the Nones, in C.)
    times = (nexts, list(filter(None, lasts)) if None in lasts else cast(list[datetime], lasts))
    return set(outcomes) <= _OUTCOMES and all(map(_within, times))


def _within(column: list[datetime]) -> bool:
    """Every time of ``column`` has a UTC offset and lies between years 2 and 9998."""
    if not column:
        return True
    try:
        earliest, latest = min(column), max(column)
    except TypeError:  # with and without an offset
        return False
    return earliest.tzinfo is not None and _YEAR(earliest) > 2 and _YEAR(latest) < 9998


def _row_usable(at: datetime, last_at: datetime | None, outcome: Any) -> bool:
    """:func:`_usable` for one row, exactly: each time's own offset and year."""
    times = (at,) if last_at is None else (at, last_at)
    return (
        outcome in _OUTCOMES
        and None not in map(_TZINFO, times)
        and _EDGES.isdisjoint(map(_YEAR, times))
    )
