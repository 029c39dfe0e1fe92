"""Medians with min-max, ratios to the baseline backend, the terminal table, run comparison.

Every function here takes the JSON document :func:`._runner.run_bench` builds (or one
read back from ``--json``), so a saved run can be reported or compared again later.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any, Final

from ._config import METRICS, NO_RATIO_UNITS, metric

__all__ = ["compare", "format_report", "paired_ratio", "ratios", "summarize"]

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
_UNITS: Final = {"events/s": "ev/s", "fraction": "share", "count": "count", "stalls/s": "/s"}


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


def _reference_ratios(document: dict[str, Any], backend: str) -> dict[str, float]:
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


def _number(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
    if unit == "fraction":
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
    text = _number(med, unit)
    low_text, high_text = _number(low, unit), _number(high, unit)
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
        f"{config['reps']} repetition(s) per backend ({_processes(config)}), interleaved, of "
        f"{config.get('trials', 1)} interleaved trial(s) each; cells: median (min-max) and "
        f"the ratio to {baseline} (median of the repetitions' own ratios); "
        "(+) higher is better, (-) lower is better",
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
            # At least one space between columns, also when a cell is wider than its column.
            row += " " + _cell(figures, m.unit, backend != baseline).rjust(_CELL - 1)
        lines.append(row)
    lines += ["", *reference_lines(document)]
    return "\n".join(lines)


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
        found = _reference_ratios(document, backend)
        parts = [f"{found[ref]:.2f}x {name}" for ref, name in REFERENCES if ref in found]
        lines.append(
            f"{backend}: eventsched (1 task) {_number(ours, 'events/s')} events/s = "
            + ", ".join(parts)
        )
    if lines:
        lines.append(
            "(ratios are medians of each repetition's own ratio; a repetition's throughput "
            "is the best of its trials)"
        )
    return lines


def ratios(document: dict[str, Any]) -> dict[str, float]:
    """The ratios a reader takes from a run: each backend to the baseline, and
    eventsched's throughput to each reference of the same backend."""
    summary = document["summary"]
    baseline = document["baseline"]
    found: dict[str, float] = {}
    for metric_id, per in summary.items():
        if metric(metric_id).unit in NO_RATIO_UNITS:
            continue  # summarize() gives these none; a --compare file from before did
        for backend, figures in per.items():
            if backend != baseline and figures.get("ratio") is not None:
                found[f"{metric_id} {backend}/{baseline}"] = figures["ratio"]
    for backend in document["backends"]:
        for ref, ratio in _reference_ratios(document, backend).items():
            found[f"throughput.eventsched_1/{ref.partition('.')[2]} on {backend}"] = ratio
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
    lines += [
        f"machine pauses (time a busy loop lost, medians per backend): {name} {stalls}"
        for name, stalls in (("this run", _stalls(document)), ("the other", _stalls(other)))
        if stalls
    ]
    return "\n".join(lines), agree, total


def _stalls(document: dict[str, Any]) -> str:
    """The machine row of a run, as ``1.2-2.0%``: what its tails stood on."""
    figures = document["summary"].get("latency.stall_share", {})
    medians = sorted(f["median"] for f in figures.values() if f.get("median") is not None)
    if not medians:
        return ""
    low, high = medians[0], medians[-1]
    return f"{low:.1%}" if low == high else f"{low:.1%}-{high:.1%}"
