"""What a start says about its saved jobs: a line per job for the first few, then a count.

A start with a job store logs, by name, each job whose trigger changed since its state
was saved (its schedule starts afresh) and each whose saved fire time came while the
scheduler was not running. A start of 50,000 jobs whose definition changed wrote 50,000
such lines, as many for a restart after a long stop. So each kind is logged by name for
the first :data:`MAX_NAMED` jobs of a start, then one line says how many more there
were. Nothing else changes: each of those fire times still runs or is reported as the
job's misfire policy says (a ``JOB_MISSED`` event names every job); only the log is
shorter. After the start, a job added with a changed definition is logged by name as
before, one line each (they come one at a time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from loguru import logger

__all__ = ["MAX_NAMED", "StartNotes"]

log = logger.bind(component="jobs")

#: Jobs of each kind a start names in a line of their own.
MAX_NAMED: Final = 10


class StartNotes:
    """The lines of one start (``limit`` jobs named per kind), or of a running scheduler
    (``limit=None``: every job named)."""

    __slots__ = ("_changed", "_due", "_limit")

    def __init__(self, limit: int | None = MAX_NAMED) -> None:
        self._limit = limit
        self._changed = 0
        self._due = 0

    def changed(self, job_id: str, before: str, after: str) -> None:
        """A job's trigger changed since its state was saved (``before`` -> ``after``)."""
        self._changed += 1
        if self._limit is None or self._changed <= self._limit:
            log.info(
                "Job {}: its trigger changed since the state was saved ({} -> {}); "
                "starting its schedule afresh",
                job_id,
                before,
                after,
            )

    def due(self, job_id: object, at: datetime) -> None:
        """A job's saved fire time ``at`` came while the scheduler was not running."""
        self._due += 1
        if self._limit is None or self._due <= self._limit:
            log.info(
                "Job {} was due at {} while the scheduler was not running", job_id, at.isoformat()
            )

    def close(self) -> None:
        """The count of the jobs not named, one line per kind."""
        limit = self._limit
        if limit is None:
            return
        if self._changed > limit:
            log.info(
                "{} more jobs' triggers changed since their state was saved (the first {} "
                "are named above); their schedules start afresh",
                self._changed - limit,
                limit,
            )
        if self._due > limit:
            log.info(
                "{} more jobs were due while the scheduler was not running (the first {} "
                "are named above)",
                self._due - limit,
                limit,
            )
