"""The verdict block: for each backend, in plain words, how eventsched does against asyncio.

A word ("faster", "slower", "about the same") is given only when the run can support it:
at least :data:`MIN_REPS` repetitions, and a ratio further from 1 than the run's noise
(the spread of that row's per-repetition ratios, and never less than :data:`FLOOR`, the
change two default runs on a quiet machine stayed within). A ``--quick`` run prints its
ratios as indicative, without words.
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from ._config import NO_RATIO_UNITS

__all__ = ["FLOOR", "MIN_REPS", "VERDICT_ROWS", "noise", "verdict_lines"]

#: Fewest repetitions a verdict word needs: with one, two quick runs moved some ratios 2x.
MIN_REPS: Final = 3
#: The smallest change called a difference: two default runs agreed within 15% on every
#: ratio, so a smaller one is not a finding.
FLOOR: Final = 0.15

#: The rows of the verdict: (metric id, what it is, word if lower ratio, if higher).
VERDICT_ROWS: Final = (
    ("throughput.eventsched_1", "throughput, 1 handler task", "slower", "faster"),
    ("apps.io_rate", "I/O handlers, hundreds in flight", "slower", "faster"),
    ("apps.fanout_rate", "fan-out to 10 handlers", "slower", "faster"),
    ("latency.eventsched_p50", "latency p50", "lower (better)", "higher (worse)"),
    ("latency.eventsched_p99", "latency p99", "lower (better)", "higher (worse)"),
    ("timers.jobs_p50", "timer lateness p50", "lower (better)", "higher (worse)"),
    ("timers.jobs_p99", "timer lateness p99", "lower (better)", "higher (worse)"),
    ("apps.io_cpu_us", "CPU per event (I/O handlers)", "cheaper", "costlier"),
    ("jobs.many_cpu_share", "CPU, many interval jobs", "cheaper", "costlier"),
    ("startup.ready_ms", "start-up to first event", "quicker", "slower"),
)


#: The rows of peers, by the library they measure (asyncio libraries: none runs on trio).
_PEERS: Final = {
    "throughput.asyncio_queue": "asyncio.Queue",
    "apps.asyncio_queue_io_rate": "asyncio.Queue",
    "apps.aiojobs_io_rate": "aiojobs",
    "apps.pyee_fanout_rate": "pyee",
    "jobs.aps_many_p50": "APScheduler 3",
}


def _per_rep_ratios(document: dict[str, Any], metric_id: str, backend: str) -> list[float]:
    samples = document["metrics"][metric_id]["samples"]
    values, base = samples.get(backend, []), samples.get(document["baseline"], [])
    if len(values) != len(base):
        return []
    return [value / other for value, other in zip(values, base, strict=True) if other]


def noise(document: dict[str, Any], metric_id: str, backend: str) -> float | None:
    """Half the range of the row's per-repetition ratios, relative to their median."""
    pairs = _per_rep_ratios(document, metric_id, backend)
    if len(pairs) < 2:
        return None
    middle = statistics.median(pairs)
    return (max(pairs) - min(pairs)) / 2 / middle if middle else None


def _run_noise(document: dict[str, Any]) -> float | None:
    """The median of every ratio row's noise: what the run's ratios wobble by."""
    found = [
        spread
        for metric_id, entry in document["metrics"].items()
        if entry["unit"] not in NO_RATIO_UNITS
        for backend in entry["samples"]
        if backend != document["baseline"]
        and (spread := noise(document, metric_id, backend)) is not None
    ]
    return statistics.median(found) if found else None


def verdict_lines(document: dict[str, Any]) -> list[str]:
    """The block printed first: one line per backend and row, ratio to the baseline."""
    baseline, summary = document["baseline"], document["summary"]
    reps = document["config"]["reps"]
    backends = [
        name
        for name, status in document["backends"].items()
        if status["available"] and name != baseline
    ]
    run_noise = _run_noise(document)
    if reps < MIN_REPS:
        lines = [
            f"VERDICT: INDICATIVE ONLY ({reps} repetition(s); two quick runs moved some "
            f"ratios 2x): eventsched on each backend / on {baseline}, no verdict words"
        ]
    else:
        said = f"{run_noise:.0%}" if run_noise is not None else "?"
        lines = [
            f"VERDICT: eventsched on each backend against {baseline}, {reps} repetitions; "
            f"noise: ratios move +-{said} between repetitions (median row); a word is given "
            f"past +-{FLOOR:.0%} and the row's own noise"
        ]
    for backend in backends:
        first = True
        for metric_id, what, lower, higher in VERDICT_ROWS:
            figures = summary.get(metric_id, {}).get(backend)
            if not figures or figures.get("ratio") is None:
                continue
            ratio = figures["ratio"]
            word = ""
            if reps >= MIN_REPS:
                band = max(FLOOR, noise(document, metric_id, backend) or 0.0)
                if ratio < 1 - band:
                    word = lower
                elif ratio > 1 + band:
                    word = higher
                else:
                    word = "about the same"
            name = backend if first else ""
            lines.append(f"  {name:8}{what:34}{ratio:6.2f}x  {word}".rstrip())
            first = False
        if first:
            lines.append(f"  {backend:8}no verdict row measured (see --workloads)")
    for name, status in document["backends"].items():
        if not status["available"]:
            lines.append(f"  {name:8}not run: {status['note']}")
    peers = sorted(
        {
            _PEERS[key]
            for key, entry in document["metrics"].items()
            if entry.get("asyncio_only") and key in _PEERS
        }
    )
    if peers and "trio" in backends:
        lines.append(f"  on trio, these asyncio libraries cannot run: {', '.join(peers)}")
    return lines
