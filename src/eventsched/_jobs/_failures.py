"""Failed run attempts: counted, logged with their correlation id, and described as
``JOB_FAILED`` (built only if a handler would receive it), raised or timed out alike.

Functions of :class:`~._runs.Runs` (its counters and event maker), kept apart so that
the run itself reads as one flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from .._events import Event, EventType
from .._invoke import describe_error
from ._entry import Entry
from ._results import format_duration
from ._runslot import RunSlot

if TYPE_CHECKING:
    from ._runs import Runs

__all__ = ["count_failed", "count_timed_out"]

log = logger.bind(component="jobs")


def count_failed(
    runs: Runs, job: Entry, slot: RunSlot, duration: float, exc: Exception
) -> tuple[Event | None, str, str]:
    """Count and log a failed attempt: its JOB_FAILED (if anyone listens), the
    error's type and message."""
    runs.failed += 1
    job.failures += 1
    kind = type(exc).__qualname__
    described = describe_error(exc)  # never raises, whatever the exception's __str__ does
    error = described.removeprefix(kind).removeprefix(": ")
    lineage = slot.lineage()  # a failure is logged with its correlation id
    log.opt(exception=exc).error(
        "Job {} failed after {} (correlation {}): {}",
        job.id,
        format_duration(duration),
        lineage["correlation_id"],
        described,
    )
    if not runs.wants(EventType.JOB_FAILED):
        return None, kind, error
    data = {
        **slot.dated(),
        "duration": duration,
        "reason": "exception",
        "error_type": kind,
        "error": error,
    }
    return runs.event(EventType.JOB_FAILED, data, **lineage), kind, error


def count_timed_out(
    runs: Runs, job: Entry, slot: RunSlot, duration: float
) -> tuple[Event | None, str]:
    """Count and log an attempt cancelled at its timeout: its JOB_FAILED (if anyone
    listens) and the error message."""
    runs.failed += 1
    runs.timed_out += 1
    job.failures += 1
    lineage = slot.lineage()
    error = f"run exceeded its timeout of {job.timeout}s"
    log.warning(
        "Job {} timed out after {} (correlation {}) and was cancelled",
        job.id,
        format_duration(duration),
        lineage["correlation_id"],
    )
    if not runs.wants(EventType.JOB_FAILED):
        return None, error
    data = {
        **slot.dated(),
        "duration": duration,
        "reason": "timeout",
        "error_type": "TimeoutError",
        "error": error,
        "timeout": job.timeout,
    }
    return runs.event(EventType.JOB_FAILED, data, **lineage), error
