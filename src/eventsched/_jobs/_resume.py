"""A start-up's take-up of saved schedules in bulk, without an object per saved job.

A store that has ``load_columns`` (:class:`~eventsched.SQLiteJobStore`) hands over its
plain rows (no claimed fire time, a next one, not paused) as parallel lists of raw
values (:class:`~._sqliterows.SavedColumns`). :func:`resume_plain` gives each job added
before the start whose row that is, unchanged in definition, its saved schedule in one
pass: it parses the two times the job needs, checks what the store's checked read
would refuse, and leaves everything else (another definition, a paused job, a value
it cannot use) to the job-by-job take-up, which reads those rows again, checked.
So a row is never used unchecked, and a malformed one is still reported by name.

Measured at 50,000 saved jobs (``benchmarks/bench_jobs_startup.py``, see
``docs/benchmarks.md``): a ``SavedJob`` per row and the job-by-job take-up were
~0.2 s of a 0.36-0.41 s start; the lists and this loop take a fraction of that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from loguru import logger

from ._entry import Entry
from ._sqliterows import OUTCOMES, SavedColumns
from ._triggers import set_start

__all__ = ["resume_plain"]

log = logger.bind(component="jobs")

#: What a plain row's ``last_outcome`` may be.
_OUTCOMES: Final = OUTCOMES | {None}
#: Years where a UTC offset may not move a time to UTC: the checked read decides.
_EDGES: Final = (1, 9999)


def resume_plain(
    entries: Mapping[str, Entry], columns: SavedColumns, known: list[str], now: float
) -> tuple[list[float], list[Entry], list[object]]:
    """Resume the jobs whose plain row ``columns`` holds; ``known``: the fingerprints
    the store was asked about (a row's may be an index in them); ``now`` as a POSIX
    timestamp.

    Returns the timeline keys of the resumed jobs' fire times (POSIX timestamps), those
    jobs, and the ids of the rows left for the job-by-job take-up (two lists rather than
    a pair per job: 50,000 pairs kept a while set off a full garbage collection).
    A resumed job's row is written nowhere: it is the row it would save (no claim, the
    same definition, pausing as the code has it).
    """
    ids = columns.ids
    # Looked up and parsed by map() in C (a fifth of the loop's time); a value that
    # does not parse becomes an unusable time that the loop's checks send on.
    jobs = list(map(entries.get, ids))
    try:
        nexts = list(map(_PARSE, columns.next_fire_times))
    except (TypeError, ValueError):
        nexts = [_parsed(text) for text in columns.next_fire_times]
    try:
        lasts = [text if text is None else _PARSE(text) for text in columns.last_fire_times]
    except (TypeError, ValueError):
        lasts = [None if text is None else _parsed(text) for text in columns.last_fire_times]
    outcomes = _OUTCOMES
    edges = _EDGES
    keys: list[float] = []
    resumed: list[Entry] = []
    left: list[object] = []
    for job, fingerprint, at, last_at, outcome, job_id in zip(
        jobs, columns.fingerprints, nexts, lasts, columns.outcomes, ids, strict=True
    ):
        if fingerprint.__class__ is int:
            fingerprint = known[fingerprint]
        if (
            job is None  # also an id that is not text
            or job.fingerprint != fingerprint
            or job.paused  # the row says not paused: it is written again
            or not job.persist
            or outcome not in outcomes
            # No offset (or unparsed), or a year where the offset may not move the
            # time to UTC: the checked read decides.
            or at.tzinfo is None
            or at.year in edges
            or (last_at is not None and (last_at.tzinfo is None or last_at.year in edges))
        ):
            left.append(job_id)
            continue
        if job.deferred is not None:  # "start": "now" does not persist
            set_start(job.trigger, at)
            job.deferred = None
        job.last_fire = last_at
        job.last_outcome = outcome
        key = at.timestamp()
        if key < now:
            log.info(
                "Job {} was due at {} while the scheduler was not running",
                job.id,
                at.isoformat(),
            )
        if job.jitter:
            job.set_next(at)
            key = job.fire_at.timestamp()
        else:
            job.next_fire = job.fire_at = at  # set_next() without jitter
        keys.append(key)
        resumed.append(job)
    return keys, resumed, left


_PARSE: Final = datetime.fromisoformat
#: What an unparsable time becomes: naive, so refused like a time without an offset.
_UNUSABLE: Final = datetime.min


def _parsed(text: object) -> datetime:
    try:
        return _PARSE(text)  # type: ignore[arg-type]  # not text: TypeError
    except (TypeError, ValueError):
        return _UNUSABLE
