"""Two runs side by side: what changed, better or worse, and why they may not compare.

Used by ``bench --compare OLD.json`` (the new run against a saved one) and by
``bench report OLD.json NEW.json`` (two saved runs). Every row says its direction: a
latency that grows by 125% is *worse*, a rate that grows by 125% is *better*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ._config import NO_RATIO_UNITS
from ._report import number, reference_ratios

__all__ = ["Comparison", "compare_runs", "differences", "ratios"]

#: Two figures agree when they differ by at most this share of the earlier one.
TOLERANCE: Final = 0.15
#: The machine description's entries that decide a figure.
_MACHINE_KEYS: Final = ("processor", "cpu_count", "cpu_affinity", "python", "implementation")


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of :func:`compare_runs`."""

    text: str
    """The lines to print."""
    agree: int
    """Ratios (backend to baseline, eventsched to a reference) within the tolerance."""
    total: int
    """Ratios found in both runs."""
    better: list[str] = field(default_factory=list)
    """Figures and ratios that moved past the tolerance for the better."""
    worse: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Why the runs may not compare: different sizes, code or machine."""


def ratios(document: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """The ratios a reader takes from a run, with the direction that is better: each
    backend to the baseline, and eventsched's throughput to each reference."""
    summary, baseline, metrics = document["summary"], document["baseline"], document["metrics"]
    found: dict[str, tuple[float, str]] = {}
    for metric_id, per in summary.items():
        entry = metrics.get(metric_id, {})
        if entry.get("unit") in NO_RATIO_UNITS:
            continue  # summarize() gives these none; files from before did
        for backend, figures in per.items():
            if backend != baseline and figures.get("ratio") is not None:
                found[f"{metric_id} {backend}/{baseline}"] = (figures["ratio"], entry["better"])
    for backend in document["backends"]:
        for ref, ratio in reference_ratios(document, backend).items():
            key = f"throughput.eventsched_1/{ref.partition('.')[2]} on {backend}"
            found[key] = (ratio, "higher")
    return found


def _describe(document: dict[str, Any]) -> str:
    source = document["machine"].get("source") or {}
    commit = (source.get("commit") or "?")[:10]
    modified = " + changes" if source.get("modified") else ""
    return f"{document['started']} (commit {commit}{modified}, {document['config']['reps']} reps)"


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why two runs' figures may not compare: their sizes, code and machine."""
    warnings = []
    old_config, new_config = before["config"], after["config"]
    changed = [
        f"{key} {old_config.get(key)} -> {new_config.get(key)}"
        for key in sorted(set(old_config) | set(new_config))
        if old_config.get(key) != new_config.get(key)
    ]
    if changed:
        warnings.append("the runs' sizes differ: " + ", ".join(changed))
    few = [name for name, d in (("first", before), ("second", after)) if d["config"]["reps"] < 3]
    if few:
        warnings.append(
            f"the {' and '.join(few)} run{'s' if len(few) > 1 else ''} had fewer than 3 "
            "repetitions: indicative only (two quick runs moved some ratios 2x)"
        )
    old_source = before["machine"].get("source") or {}
    new_source = after["machine"].get("source") or {}
    if old_source.get("commit") != new_source.get("commit"):
        warnings.append(
            f"the code differs: commit {old_source.get('commit')} -> {new_source.get('commit')}"
        )
    for name, source in (("first", old_source), ("second", new_source)):
        if source.get("modified"):
            shown = ", ".join(source["modified"][:5])
            warnings.append(f"the {name} run had uncommitted changes: {shown}")
    machine = [
        f"{key} {before['machine'].get(key)!r} -> {after['machine'].get(key)!r}"
        for key in _MACHINE_KEYS
        if before["machine"].get(key) != after["machine"].get(key)
    ]
    old_packages = before["machine"].get("packages", {})
    new_packages = after["machine"].get("packages", {})
    machine += [
        f"{name} {old_packages.get(name)} -> {new_packages.get(name)}"
        for name in sorted(set(old_packages) | set(new_packages))
        if old_packages.get(name) != new_packages.get(name)
    ]
    if machine:
        warnings.append("the machine differs: " + ", ".join(machine))
    return warnings


def _verdict(change: float, better: str) -> str:
    return "better" if (change > 0) == (better == "higher") else "worse"


def compare_runs(
    before: dict[str, Any], after: dict[str, Any], tolerance: float = TOLERANCE
) -> Comparison:
    """What changed from ``before`` to ``after``: eventsched's own figures on each backend,
    then the ratios; each change past ``tolerance`` marked better or worse."""
    lines = [f"from {_describe(before)}", f"  to {_describe(after)}"]
    warnings = differences(before, after)
    lines += [f"warning: {warning}" for warning in warnings]
    better: list[str] = []
    worse: list[str] = []

    lines.append(f"figures that moved by more than {tolerance:.0%} (median of each run):")
    moved = 0
    for metric_id, entry in after["metrics"].items():
        old_entry = before["metrics"].get(metric_id)
        if old_entry is None or entry["unit"] in NO_RATIO_UNITS:
            continue
        for backend, figures in after["summary"].get(metric_id, {}).items():
            old = before["summary"].get(metric_id, {}).get(backend)
            if not old or not old.get("median") or figures.get("median") is None:
                continue
            change = figures["median"] / old["median"] - 1
            if abs(change) <= tolerance:
                continue
            moved += 1
            word = _verdict(change, entry["better"])
            unit = entry["unit"]
            text = (
                f"  {entry['label']} on {backend}: {number(old['median'], unit)} -> "
                f"{number(figures['median'], unit)} {unit} ({change:+.0%}, {word})"
            )
            (better if word == "better" else worse).append(text.strip())
            lines.append(text)
    if not moved:
        lines.append("  none")

    ours, theirs = ratios(after), ratios(before)
    agree = total = 0
    lines.append(f"ratios that moved by more than {tolerance:.0%}:")
    shown = len(lines)
    for key, (ratio, direction) in ours.items():
        if key not in theirs or not theirs[key][0]:
            continue
        total += 1
        change = ratio / theirs[key][0] - 1
        if abs(change) <= tolerance:
            agree += 1
            continue
        word = _verdict(change, direction)
        text = f"  {key}: {theirs[key][0]:.2f} -> {ratio:.2f} ({change:+.0%}, {word})"
        (better if word == "better" else worse).append(text.strip())
        lines.append(text)
    if len(lines) == shown:
        lines.append("  none")
    lines.append(
        f"{agree} of {total} ratios within {tolerance:.0%}; "
        f"{len(better)} changes better, {len(worse)} worse"
    )
    lines += [
        f"machine pauses (time a busy loop lost, medians per backend): {name} {stalls}"
        for name, stalls in (("first run", _stalls(before)), ("second run", _stalls(after)))
        if stalls
    ]
    return Comparison("\n".join(lines), agree, total, better, worse, warnings)


def _stalls(document: dict[str, Any]) -> str:
    """The machine row of a run, as ``1.2-2.0%``: what its tails stood on."""
    figures = document["summary"].get("latency.stall_share", {})
    medians = sorted(f["median"] for f in figures.values() if f.get("median") is not None)
    if not medians:
        return ""
    low, high = medians[0], medians[-1]
    return f"{low:.1%}" if low == high else f"{low:.1%}-{high:.1%}"
