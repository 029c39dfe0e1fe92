"""The final summary: a readable table in the log, with the figures as structured data."""

from __future__ import annotations

from loguru import logger

from ._stats import Statistics

__all__ = ["format_summary", "log_summary"]

log = logger.bind(component="summary")


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.3f} ms"


def _by_reason(counts: dict[str, int]) -> str:
    items = counts.items()
    return ", ".join(f"{reason} {n}" for reason, n in sorted(items)) or "none"


def format_summary(stats: Statistics) -> list[str]:
    """Rows of the summary table, one string each (no newlines inside)."""
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
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {value}".rstrip() for name, value in rows]


def log_summary(stats: Statistics, *, forced: bool) -> None:
    """Log the summary: a headline, then one line per row (so JSON logs stay one line each)."""
    figures = stats.as_dict()
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
    for row in format_summary(stats):
        log.info("  {}", row)
