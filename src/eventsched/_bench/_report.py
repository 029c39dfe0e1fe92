"""Medians with min-max, ratios to the baseline backend, the terminal table, run comparison.

Every function here takes the JSON document :func:`._runner.run_bench` builds (or one
read back from ``--json``), so a saved run can be reported or compared again later.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any, Final

from ._config import METRICS, metric

__all__ = ["compare", "format_report", "ratios", "summarize"]

#: The rows eventsched's throughput is read against, within one backend.
REFERENCES: Final = (
    ("throughput.asyncio_queue", "asyncio.Queue"),
    ("throughput.anyio", "anyio idiomatic"),
    ("throughput.ceiling", "the ceiling"),
)

_LABEL: Final = 36
_UNIT: Final = 11
_CELL: Final = 26
#: Short forms of the units, with the direction that is better.
_UNITS: Final = {"events/s": "ev/s", "fraction": "share", "count": "count"}


def summarize(document: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per metric and backend: median, min, max, repetitions, ratio to the baseline."""
    baseline = document["baseline"]
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for metric_id, entry in document["metrics"].items():
        per: dict[str, dict[str, float | None]] = {}
        for backend, values in entry["samples"].items():
            if values:
                per[backend] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "n": len(values),
                }
        base = per.get(baseline, {}).get("median")
        for figures in per.values():
            median = figures["median"]
            figures["ratio"] = median / base if base and median is not None else None
        summary[metric_id] = per
    return summary


def _number(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
    if unit == "fraction":
        return f"{value:.1%}"
    if unit in ("ns", "B", "count"):
        return f"{value:.0f}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _cell(figures: dict[str, float | None] | None, unit: str, show_ratio: bool) -> str:
    if not figures or figures.get("median") is None:
        return "-"
    med, low, high = figures["median"], figures["min"], figures["max"]
    assert med is not None
    assert low is not None
    assert high is not None
    text = _number(med, unit)
    if figures.get("n", 1) and low != high:
        text += f" ({_number(low, unit)}-{_number(high, unit)})"
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
    summary = document["summary"]
    baseline = document["baseline"]
    backends = list(document["backends"])
    config = document["config"]
    machine = document["machine"]
    packages = machine["packages"]
    lines = [
        f"eventsched bench: {document['started']}, Python {machine['python']}, "
        f"{machine['cpu_count']} CPUs, load {_load(machine)}",
        "versions: " + ", ".join(f"{name} {v}" for name, v in packages.items() if v is not None),
        f"{config['reps']} repetition(s) per backend, interleaved; cells: median (min-max) "
        f"and the ratio to {baseline}; (+) higher is better, (-) lower is better",
    ]
    for name, status in document["backends"].items():
        if not status["available"]:
            lines.append(f"{name}: {status['note']}")
    header = f"{'':{_LABEL}}{'unit':>{_UNIT}}" + "".join(f"{b:>{_CELL}}" for b in backends)
    workload = None
    for m in METRICS:
        if m.id not in document["metrics"]:
            continue
        if m.workload != workload:
            workload = m.workload
            lines += ["", f"{workload.upper():{_LABEL}}" + header[_LABEL:]]
        unit = f"{_UNITS.get(m.unit, m.unit)} {'(+)' if m.better == 'higher' else '(-)'}"
        row = f"{m.label:{_LABEL}}{unit:>{_UNIT}}"
        for backend in backends:
            if not document["backends"][backend]["available"]:
                row += f"{'not installed':>{_CELL}}"
                continue
            figures = summary.get(m.id, {}).get(backend)
            if figures is None and m.asyncio_only and backend == "trio":
                row += f"{'(asyncio only)':>{_CELL}}"
                continue
            row += _cell(figures, m.unit, backend != baseline).rjust(_CELL)
        lines.append(row)
    lines += ["", *reference_lines(document)]
    return "\n".join(lines)


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
        per = dict(_medians(summary, backend))
        ours = per.get("throughput.eventsched_1")
        if ours is None:
            continue
        parts = [f"{ours / per[ref]:.2f}x {name}" for ref, name in REFERENCES if per.get(ref)]
        lines.append(
            f"{backend}: eventsched (1 task) {_number(ours, 'events/s')} events/s = "
            + ", ".join(parts)
        )
    return lines


def ratios(document: dict[str, Any]) -> dict[str, float]:
    """The ratios a reader takes from a run: each backend to the baseline, and
    eventsched's throughput to each reference of the same backend."""
    summary = document["summary"]
    baseline = document["baseline"]
    found: dict[str, float] = {}
    for metric_id, per in summary.items():
        if metric(metric_id).unit in ("fraction", "count"):
            continue  # shares and counts near zero make meaningless ratios
        for backend, figures in per.items():
            if backend != baseline and figures.get("ratio") is not None:
                found[f"{metric_id} {backend}/{baseline}"] = figures["ratio"]
    for backend in document["backends"]:
        per = dict(_medians(summary, backend))
        ours = per.get("throughput.eventsched_1")
        for ref, _ in REFERENCES:
            if ours and per.get(ref):
                found[f"throughput.eventsched_1/{ref.partition('.')[2]} on {backend}"] = (
                    ours / per[ref]
                )
    return found


def compare(
    document: dict[str, Any], other: dict[str, Any], tolerance: float = 0.15
) -> tuple[str, int, int]:
    """Compare the ratios of two runs; return the text, how many agree, how many compared.

    Two ratios agree when they differ by at most ``tolerance`` of the earlier one.
    """
    ours, theirs = ratios(document), ratios(other)
    lines = [
        f"ratios of this run ({document['started']}) against {other['started']}, "
        f"tolerance {tolerance:.0%}:"
    ]
    agree = total = 0
    for key in ours:
        if key not in theirs or not theirs[key]:
            continue
        total += 1
        change = ours[key] / theirs[key] - 1
        ok = abs(change) <= tolerance
        agree += ok
        if not ok:
            lines.append(f"  {key:60} {theirs[key]:7.2f} -> {ours[key]:7.2f} ({change:+.0%})")
    lines.append(f"{agree} of {total} ratios within {tolerance:.0%}")
    return "\n".join(lines), agree, total
