"""The public records of the job scheduler: job snapshots, counters, miss reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

__all__ = ["Job", "JobStatistics", "MissReason", "job_record", "slot_setters"]


class MissReason(StrEnum):
    """Why a fire time did not become a run; the ``reason`` of ``JOB_MISSED``."""

    MISFIRE = "misfire"
    """Later than ``misfire_grace_time`` (without ``coalesce``)."""
    COALESCED = "coalesced"
    """Collapsed with later due fire times into one run (``coalesce``)."""
    MAX_INSTANCES = "max_instances"
    """``max_instances`` runs of the job were still going."""
    INTERRUPTED = "interrupted"
    """Claimed for a run (started, or waiting for its fire time) but the process ended
    before the outcome was recorded (a crash, ``kill -9``): reported at the next start,
    never run again (at most once)."""
    NOT_SAVED = "not_saved"
    """The job store could not record the claim on it, so it was not run (at most once)."""
    SHUTDOWN = "shutdown"
    """Claimed for a run that shutdown stopped before it began, and not handed back to the
    schedule for the next start because a later fire time of the job had already run or
    been reported (it would have come round again), or the job was removed, replaced or
    had no more fire times."""
    WITHDRAWN = "withdrawn"
    """Claimed ahead of its fire time, but the job was removed or replaced (or, with a
    shared store, another definition of it took over) before that time came: not run,
    since the job it was claimed for is no longer scheduled; a job paused meanwhile
    hands the fire time back instead (skipped, as every fire time while paused)."""


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job, as :meth:`JobScheduler.get_jobs` returns it."""

    id: str
    """Unique id; also the key of the job's saved state."""
    name: str
    """Readable name (the function's qualified name unless given)."""
    trigger: str
    """Description of the trigger, e.g. ``interval[0:00:10]``."""
    next_fire_time: datetime | None
    """When it is due next (jitter included); None before start, or while paused."""
    last_fire_time: datetime | None
    """The latest fire time handled (ran or reported missed)."""
    paused: bool
    """Whether it is paused."""
    running: int
    """Runs in progress."""
    runs: int
    """Runs started since this scheduler started."""
    failures: int
    """Runs that raised or timed out."""
    max_instances: int
    """Most runs allowed at once."""
    coalesce: bool
    """Whether due fire times collapse into one run."""
    misfire_grace_time: float | None
    """Seconds a run may be late (without ``coalesce``); None: no limit."""
    timeout: float | None
    """Seconds a run may take before it is cancelled; None: no limit."""
    missed: Mapping[str, int] = field(default_factory=dict)
    """Fire times of this job that did not become runs since this scheduler started, by
    :class:`MissReason` value (only reasons that occurred)."""


def slot_setters(cls: type, names: Sequence[str] | None = None) -> tuple[Any, ...]:
    """The setters of a frozen, slotted dataclass's fields, in their order: a record
    built with them (``object.__new__`` then each setter) is the one ``cls(...)``
    makes, without the frozen ``__init__``'s ``object.__setattr__`` per field (the
    scheduler's own records: :func:`job_record`, ``_store.saved_job``). ``names``: the
    fields the caller was written for, checked once here (a field added to ``cls``
    but not to its caller fails at import, not in a record)."""
    found = [each.name for each in fields(cls)]
    if names is not None and found != list(names):  # pragma: no cover - guard
        raise AssertionError(f"{cls.__name__}'s fields changed ({found}): update its builder")
    return tuple(getattr(cls, name).__set__ for name in found)


_JOB_SLOTS: Final = slot_setters(Job)


def job_record(*values: Any) -> Job:
    """``Job(*values)``: the same record (all fields given, in order), built cheaper
    (a fifth of an ``add_job``'s instructions went to the ``Job`` it returns; this way
    ~30% less of that, callgrind, issue 16)."""
    job = object.__new__(Job)
    for set_slot, value in zip(_JOB_SLOTS, values, strict=True):
        set_slot(job, value)
    return job


@dataclass(frozen=True, slots=True)
class JobStatistics:
    """Counters of the job scheduler, from :meth:`JobScheduler.statistics`.

    ``runs_started = runs_completed + runs_failed + runs_aborted + running``; a retry
    waiting for its delay is running, and aborted if shutdown comes first.
    """

    jobs: int
    """Jobs scheduled (finished and removed ones excluded)."""
    running: int
    """Runs in progress."""
    runs_started: int
    """Runs begun."""
    runs_completed: int
    """Runs that returned."""
    runs_failed: int
    """Runs that raised or timed out."""
    runs_timed_out: int
    """Of the failed runs, those cancelled by their job's ``timeout``."""
    runs_aborted: int
    """Runs cancelled by shutdown after the grace period, and retries still waiting
    for their delay when shutdown began."""
    missed: Mapping[str, int]
    """Fire times that did not become runs, by :class:`MissReason`."""
    runs_retried: int = 0
    """Of the runs started, the retries of failed runs (each announced by ``JOB_RETRY``;
    counted when scheduled, as it holds its instance slot from then on)."""
    runs_manual: int = 0
    """Of the runs started, those started by ``run_job`` outside the schedule."""

    @property
    def missed_total(self) -> int:
        """All missed fire times, whatever the reason."""
        return sum(self.missed.values())

    def as_dict(self) -> dict[str, object]:
        """Plain data, for logs and reports."""
        figures: dict[str, object] = {
            name: getattr(self, name) for name in self.__dataclass_fields__
        }
        figures["missed"] = dict(self.missed)
        figures["missed_total"] = self.missed_total
        return figures
