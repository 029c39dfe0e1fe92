"""``--plot FILE.png``: one panel per workload, each backend's median relative to the baseline.

Needs matplotlib (the optional extra ``eventsched[plot]``); :func:`plot_available`
says whether it is there before a long run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._config import METRICS, NO_RATIO_UNITS, WORKLOADS, Metric

__all__ = ["chart_rows", "plot", "plot_available"]


def plot_available() -> bool:
    """Whether matplotlib can be imported (tried, not looked up: a broken one counts as absent)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def chart_rows(document: dict[str, Any]) -> dict[str, list[Metric]]:
    """The rows of each workload's panel: those with figures and a meaningful ratio.

    Bars are ratios to the baseline, so shares, counts and the machine's pauses are
    left out, as the table leaves out their ratios.
    """
    summary = document["summary"]
    workloads = [w for w in WORKLOADS if w in document["config"]["workloads"]]
    return {
        w: [
            m
            for m in METRICS
            if m.workload == w and summary.get(m.id) and m.unit not in NO_RATIO_UNITS
        ]
        for w in workloads
    }


def plot(document: dict[str, Any], path: Path) -> None:
    """Draw the comparison: bars are medians / the baseline's median, whiskers min-max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = document["summary"]
    baseline = document["baseline"]
    backends = [b for b, s in document["backends"].items() if s["available"]]
    rows = chart_rows(document)
    workloads = [w for w, metrics in rows.items() if metrics]
    heights = [max(1, len(rows[w])) * 0.32 + 0.8 for w in workloads]
    fig, axes = plt.subplots(
        len(workloads),
        1,
        figsize=(10, sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    bar = 0.8 / max(1, len(backends))
    for axis, workload in zip(axes[:, 0], workloads, strict=True):
        metrics = rows[workload]
        for index, backend in enumerate(backends):
            ys, xs, low, high = [], [], [], []
            for row, m in enumerate(metrics):
                figures = summary[m.id].get(backend)
                base = summary[m.id].get(baseline, {}).get("median")
                if not figures or not base:
                    continue
                ys.append(row + (index - (len(backends) - 1) / 2) * bar)
                xs.append(figures["median"] / base)
                low.append(max(0.0, (figures["median"] - figures["min"]) / base))
                high.append(max(0.0, (figures["max"] - figures["median"]) / base))
            axis.barh(ys, xs, height=bar, xerr=[low, high], label=backend, capsize=2)
        axis.axvline(1.0, color="grey", linewidth=0.8)
        axis.set_yticks(range(len(metrics)))
        axis.set_yticklabels([f"{m.label} ({m.better} better)" for m in metrics], fontsize=7)
        axis.invert_yaxis()
        axis.set_title(f"{workload}: median relative to {baseline}", fontsize=9, loc="left")
        axis.tick_params(axis="x", labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    machine = document["machine"]
    fig.suptitle(
        f"eventsched bench {document['started']} - Python {machine['python']}, "
        f"{machine['cpu_count']} CPUs, {document['config']['reps']} reps",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.99))  # room for the title above the first panel
    fig.savefig(path, dpi=110)
    plt.close(fig)
