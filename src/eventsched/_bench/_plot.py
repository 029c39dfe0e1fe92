"""``--plot FILE.png``: the verdict's figures, one small panel per metric.

Each panel has its own scale and shows absolute values (the median, whiskers min-max
when there are several repetitions), one bar per backend, labelled with the value and the
ratio to the baseline; the panel's title says its unit and which direction is better.
The colours are the same in every panel and named once, in the figure's legend.

Needs matplotlib (the optional extra ``eventsched[plot]``); :func:`plot_available`
says whether it is there before a long run starts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

from ._report import number
from ._verdict import VERDICT_ROWS

__all__ = ["chart_rows", "plot", "plot_available"]

#: Shown beside the verdict's rows: what the process holds per buffered event.
_EXTRA: Final = (("memory.eventsched", "memory per buffered event"),)
_COLUMNS: Final = 3
_UNIT_NAMES: Final = {"cpu": "share of a core"}
_COLOURS: Final = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


def plot_available() -> bool:
    """Whether matplotlib can be imported (tried, not looked up: a broken one counts as absent)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def chart_rows(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The panels: (metric id, title) of the verdict's rows and memory the run measured."""
    rows = [(metric_id, what) for metric_id, what, _, _ in VERDICT_ROWS] + list(_EXTRA)
    return [(key, what) for key, what in rows if document["summary"].get(key)]


def plot(document: dict[str, Any], path: Path) -> None:
    """Draw the panels into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    summary, baseline = document["summary"], document["baseline"]
    backends = [b for b, s in document["backends"].items() if s["available"]]
    colours = {b: _COLOURS[i % len(_COLOURS)] for i, b in enumerate(backends)}
    panels = chart_rows(document)
    rows = max(1, math.ceil(len(panels) / _COLUMNS))
    fig, axes = plt.subplots(rows, _COLUMNS, figsize=(14, 2.1 * rows + 0.9), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.axis("off")
    for axis, (metric_id, what) in zip(axes.flat, panels, strict=False):
        entry = document["metrics"][metric_id]
        unit = entry["unit"]
        shown = [b for b in backends if summary[metric_id].get(b)]
        medians = [summary[metric_id][b]["median"] for b in shown]
        low = [m - summary[metric_id][b]["min"] for b, m in zip(shown, medians, strict=True)]
        high = [summary[metric_id][b]["max"] - m for b, m in zip(shown, medians, strict=True)]
        several = any(summary[metric_id][b]["n"] > 1 for b in shown)
        ys = list(range(len(shown)))
        axis.barh(
            ys,
            medians,
            color=[colours[b] for b in shown],
            xerr=[low, high] if several else None,
            capsize=3,
            ecolor="black",
        )
        top = max(max(medians) + max(high, default=0), 1e-12)
        # The figures go beside the backend's name, not on the bar, where whiskers
        # would cross them.
        names = []
        for backend, value in zip(shown, medians, strict=True):
            ratio = summary[metric_id][backend].get("ratio")
            suffix = f"  x{ratio:.2f}" if backend != baseline and ratio else ""
            names.append(f"{backend}  {number(value, unit)}{suffix}")
        axis.set_xlim(0, top * 1.05)
        axis.set_yticks(ys)
        axis.set_yticklabels(names, fontsize=8)
        axis.invert_yaxis()
        better = "higher is better" if entry["better"] == "higher" else "lower is better"
        shown_unit = _UNIT_NAMES.get(unit, unit)
        axis.set_title(f"{what}\n{shown_unit}, {better}", fontsize=8.5, loc="left")
        axis.tick_params(axis="x", labelsize=7)
        axis.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _, unit=unit: number(x, unit) if x else "0")
        )
    machine, config = document["machine"], document["config"]
    quick = ": indicative only" if config["reps"] < 3 else ""
    fig.suptitle(
        f"eventsched bench {document['started']}: Python {machine['python']}, "
        f"{machine['cpu_count']} CPUs, {config['reps']} repetition(s); "
        f"x = ratio to {baseline}{quick}",
        fontsize=10,
    )
    handles = [Rectangle((0, 0), 1, 1, color=colours[b]) for b in backends]
    fig.legend(handles, backends, loc="lower center", ncol=len(backends), fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
