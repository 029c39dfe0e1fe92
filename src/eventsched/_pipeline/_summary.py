"""The final summary: a readable table in the log, with the figures as structured data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from ._stats import Statistics

if TYPE_CHECKING:
    from .._jobs import JobStatistics

__all__ = ["format_summary", "log_summary"]

log = logger.bind(component="summary")


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.3f} ms"


def _by_reason(counts: dict[str, int]) -> str:
    items = counts.items()
    return ", ".join(f"{reason} {n}" for reason, n in sorted(items)) or "none"


def format_summary(stats: Statistics, jobs: JobStatistics | None = None) -> list[str]:
    """Rows of the summary table, one string each (no newlines inside).

    With ``jobs`` (and any job scheduled or run), the job runs get rows too.
    """
    dropped = dict(stats.dropped)
    rejected = dict(stats.rejected)
    rows = [
        ("emitted", f"{stats.emitted}"),
        ("  accepted", f"{stats.accepted}"),
        ("  dropped", f"{stats.dropped_total} ({_by_reason(dropped)})"),
        ("  rejected", f"{stats.rejected_total} ({_by_reason(rejected)})"),
        ("accepted events", ""),
        ("  handled", f"{stats.handled}"),
        ("  failed", f"{stats.failed} ({stats.handler_errors} handler error(s))"),
        ("  timed out", f"{stats.timed_out} ({stats.handler_timeouts} handler timeout(s))"),
        ("  aborted in flight", f"{stats.aborted_in_flight}"),
        ("  in flight", f"{stats.in_flight}"),
        ("  left in queue", f"{stats.still_queued}"),
        ("queue high-water", f"{stats.queue_high_water} of {stats.queue_capacity}"),
        (
            "latency emit->handler",
            f"p50 {_ms(stats.latency_p50)}, p99 {_ms(stats.latency_p99)} "
            f"({stats.latency_samples} samples)",
        ),
        ("unaccounted", f"{stats.unaccounted}"),
    ]
    if jobs is not None and (jobs.jobs or jobs.runs_started or jobs.missed_total):
        missed = ", ".join(f"{reason} {n}" for reason, n in sorted(jobs.missed.items()) if n)
        rows += [
            ("job runs started", f"{jobs.runs_started}{_of_which(jobs)}"),
            ("  completed", f"{jobs.runs_completed}"),
            ("  failed", f"{jobs.runs_failed} ({jobs.runs_timed_out} timed out)"),
            ("  aborted", f"{jobs.runs_aborted}"),
            ("  running", f"{jobs.running}"),
            ("job fire times missed", f"{jobs.missed_total} ({missed or 'none'})"),
        ]
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {value}".rstrip() for name, value in rows]


def _of_which(jobs: JobStatistics) -> str:
    # Retries and manual runs are runs started too; named only when there are some.
    parts = [
        f"{n} {what}"
        for n, what in ((jobs.runs_retried, "retries"), (jobs.runs_manual, "manual"))
        if n
    ]
    return f" ({', '.join(parts)})" if parts else ""


def log_summary(stats: Statistics, jobs: JobStatistics | None = None, *, forced: bool) -> None:
    """Log the summary: a headline, then one line per row (so JSON logs stay one line each)."""
    figures = stats.as_dict()
    if jobs is not None:
        figures["jobs"] = jobs.as_dict()
    title = "Summary (forced exit)" if forced else "Summary"
    log.bind(summary=figures).info(
        "{}: {} emitted, {} handled, {} failed, {} timed out, {} aborted, {} dropped, "
        "{} rejected, {} left in queue, {} unaccounted",
        title,
        stats.emitted,
        stats.handled,
        stats.failed,
        stats.timed_out,
        stats.aborted_in_flight,
        stats.dropped_total,
        stats.rejected_total,
        stats.still_queued,
        stats.unaccounted,
    )
    for row in format_summary(stats, jobs):
        log.info("  {}", row)
