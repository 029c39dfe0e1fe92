"""Medians with min-max, ratios to the baseline backend, and the terminal table.

Every function here takes the JSON document :func:`._runner.run_bench` builds (or one
read back from ``--json``), so a saved run can be reported or compared again later.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any, Final

from ._config import NO_RATIO_UNITS, WORKLOADS
from ._jobsreport import jobs_lines

__all__ = ["format_report", "number", "paired_ratio", "reference_ratios", "summarize"]

#: The rows eventsched's throughput is read against, within one backend.
REFERENCES: Final = (
    ("throughput.asyncio_queue", "asyncio.Queue"),
    ("throughput.anyio", "anyio idiomatic"),
    ("throughput.ceiling", "the ceiling"),
)

#: What the table's marks mean, printed once above it.
LEGEND: Final = (
    "cells: median (min-max over repetitions), then x = the ratio to asyncio (the median of",
    "  each repetition's own ratio); (+) higher is better, (-) lower is better",
    "rows: 'eventsched' is eventsched; 'ref:' the same work without it (a bare anyio stream,",
    "  asyncio.Queue) or a peer (pyee, aiojobs, APScheduler 3); 'ceiling:' the bare stream's",
    "  own limit; 'machine:' this machine's pauses (context for the tails, never a ratio)",
)

_LABEL: Final = 44
_UNIT: Final = 11
_CELL: Final = 26
#: Short forms of the units, with the direction that is better.
_UNITS: Final = {
    "events/s": "ev/s",
    "fraction": "share",
    "count": "count",
    "stalls/s": "/s",
    "cpu": "core",
}


def paired_ratio(values: list[float], base: list[float]) -> float | None:
    """The median of the repetitions' own ratios, ``values[i] / base[i]``.

    Figures of one repetition were measured seconds apart (and, within one backend,
    in the same process), so a slow spell of the machine scales both sides of each
    ratio; the ratio of two medians would mix repetitions measured minutes apart.
    Falls back to the ratio of the medians when the counts differ.
    """
    if len(values) == len(base) and values:
        pairs = [value / other for value, other in zip(values, base, strict=True) if other]
        if pairs:
            return statistics.median(pairs)
    if not values or not base:
        return None
    median_base = statistics.median(base)
    return statistics.median(values) / median_base if median_base else None


def summarize(document: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per metric and backend: median, min, max, repetitions, ratio to the baseline."""
    baseline = document["baseline"]
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for metric_id, entry in document["metrics"].items():
        per: dict[str, dict[str, float | None]] = {}
        samples = entry["samples"]
        base = samples.get(baseline, []) if entry["unit"] not in NO_RATIO_UNITS else []
        for backend, values in samples.items():
            if values:
                per[backend] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "n": len(values),
                    "ratio": paired_ratio(values, base) if base else None,
                }
        summary[metric_id] = per
    return summary


def reference_ratios(document: dict[str, Any], backend: str) -> dict[str, float]:
    """eventsched's throughput over each reference's, paired repetition by repetition."""
    metrics = document["metrics"]

    def samples(metric_id: str) -> list[float]:
        entry = metrics.get(metric_id)
        return list(entry["samples"].get(backend, [])) if entry else []

    ours = samples("throughput.eventsched_1")
    found: dict[str, float] = {}
    for ref, _ in REFERENCES:
        ratio = paired_ratio(ours, samples(ref)) if ours else None
        if ratio is not None:
            found[ref] = ratio
    return found


def number(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
    if unit in ("fraction", "cpu"):
        return f"{value:.1%}"
    if unit in ("ns", "B", "count", "stalls/s"):
        return f"{value:.0f}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _cell(figures: dict[str, float | None] | None, unit: str, show_ratio: bool) -> str:
    if not figures or figures.get("median") is None:
        return "-"
    med, low, high = figures["median"], figures["min"], figures["max"]
    assert med is not None
    assert low is not None
    assert high is not None
    text = number(med, unit)
    low_text, high_text = number(low, unit), number(high, unit)
    if low_text != high_text:  # a range that prints as one figure says nothing
        text += f" ({low_text}-{high_text})"
    ratio = figures.get("ratio")
    if show_ratio:
        text += f" x{ratio:.2f}" if ratio is not None else "     "
    return text


def _medians(summary: dict[str, Any], backend: str) -> Iterator[tuple[str, float]]:
    for metric_id, per in summary.items():
        figures = per.get(backend)
        if figures and figures.get("median") is not None:
            yield metric_id, figures["median"]


def format_report(document: dict[str, Any]) -> str:
    """The terminal table: one row per metric, one column per backend, then the readings."""
    backends = list(document["backends"])
    config = document["config"]
    machine = document["machine"]
    packages = machine["packages"]
    from ._verdict import verdict_lines

    lines = [
        *verdict_lines(document),
        "",
        f"eventsched bench: {document['started']}, Python {machine['python']}, "
        f"{machine['cpu_count']} CPUs, load {_load(machine)}",
        "versions: " + ", ".join(f"{name} {v}" for name, v in packages.items() if v is not None),
        f"{config['reps']} repetition(s) per backend, interleaved "
        f"({_processes(config)}), {config.get('trials', 1)} trial(s) each",
        *LEGEND,
    ]
    for name, status in document["backends"].items():
        if not status["available"]:
            lines.append(f"{name}: {status['note']}")
    header = f"{'':{_LABEL}}{'unit':>{_UNIT}}" + "".join(f"{b:>{_CELL}}" for b in backends)
    entries = document["metrics"]
    for workload in [*WORKLOADS, *{e["workload"] for e in entries.values()} - set(WORKLOADS)]:
        rows = [(key, e) for key, e in entries.items() if e["workload"] == workload]
        if rows:
            lines += ["", f"{workload.upper():{_LABEL}}" + header[_LABEL:]]
        for key, entry in rows:
            lines.append(_row(key, entry, document, backends))
    lines += ["", *reference_lines(document), *jobs_lines(document)]
    return "\n".join(lines)


def _row(key: str, entry: dict[str, Any], document: dict[str, Any], backends: list[str]) -> str:
    unit = entry["unit"]
    mark = f"{_UNITS.get(unit, unit)} {'(+)' if entry['better'] == 'higher' else '(-)'}"
    row = f"{entry['label']:{_LABEL}}{mark:>{_UNIT}}"
    for backend in backends:
        if not document["backends"][backend]["available"]:
            row += f"{'not installed':>{_CELL}}"
            continue
        figures = document["summary"].get(key, {}).get(backend)
        if figures is None and entry.get("asyncio_only") and backend == "trio":
            row += f"{'(asyncio only)':>{_CELL}}"
            continue
        # At least one space between columns, also when a cell is wider than its column.
        show_ratio = backend != document["baseline"]
        row += " " + _cell(figures, unit, show_ratio).rjust(_CELL - 1)
    return row


def _processes(config: dict[str, Any]) -> str:
    """How many processes each repetition ran per backend, workload by workload."""
    # A --json file of an earlier run names the latency processes `latency_runs`, and
    # ran its timers in one process.
    latency = config.get("latency_processes", config.get("latency_runs", 1))
    timers = config.get("timer_processes", 1)
    return f"processes in each: latency {latency}, timers {timers}, other workloads 1"


def _load(machine: dict[str, Any]) -> str:
    load = machine.get("load_average")
    return "?" if not load else "/".join(f"{x:.2f}" for x in load)


def reference_lines(document: dict[str, Any]) -> list[str]:
    """eventsched's throughput read against the references of the same backend and run."""
    summary = document["summary"]
    lines = []
    for backend, status in document["backends"].items():
        if not status["available"]:
            continue
        ours = dict(_medians(summary, backend)).get("throughput.eventsched_1")
        if ours is None:
            continue
        found = reference_ratios(document, backend)
        parts = [f"{found[ref]:.2f}x {name}" for ref, name in REFERENCES if ref in found]
        lines.append(
            f"{backend}: eventsched (1 task) {number(ours, 'events/s')} events/s = "
            + ", ".join(parts)
        )
    if lines:
        lines.append(
            "(ratios are medians of each repetition's own ratio; a repetition's throughput "
            "is the best of its trials)"
        )
    return lines
