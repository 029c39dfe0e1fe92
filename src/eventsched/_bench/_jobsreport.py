"""The jobs workload read against APScheduler 3: same-repetition ratios, and fire times.

APScheduler runs in the asyncio process of each repetition, seconds before or after
eventsched's rows on every backend, so each backend's figures are divided by that
repetition's APScheduler figure (trio has no APScheduler of its own).

A start lateness p99 ratio means something only while the reference keeps up: a
saturated APScheduler (a core's worth of CPU, runs queueing behind each other) starts
runs tens to hundreds of milliseconds late, and any ratio to that flatters eventsched.
So the p99 ratio is taken over the repetitions where APScheduler kept up (see
:func:`kept_up`) and the lines say in how many of them it did.
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from ._jobstart import SAVED_PER_JOB
from ._manyjobs import JOB_MISS_REASONS

__all__ = ["KEPT_UP", "jobs_lines", "kept_up"]

#: The reference kept up in a repetition when it ran every fire time in the window and
#: its start lateness p99 was at most this share of the interval (20 ms at 1 s): when a
#: scheduler falls behind, its runs wait for each other and the tail grows to that and
#: well past it (77-866 ms measured at 10,000 jobs), while one that keeps up stays
#: within a few milliseconds.
KEPT_UP: Final = 0.02
_REFERENCE: Final = "asyncio"
_SIZES: Final = ("tenth", "many")


def _samples(document: dict[str, Any], metric_id: str, backend: str) -> list[float]:
    entry = document["metrics"].get(metric_id)
    return list(entry["samples"].get(backend, [])) if entry else []


def kept_up(document: dict[str, Any], size: str) -> list[bool]:
    """Per repetition: whether APScheduler kept up with the ``size`` row's jobs."""
    bound = KEPT_UP * float(document["config"]["job_interval"]) * 1e3
    fires = _samples(document, f"jobs.aps_{size}_fires", _REFERENCE)
    ran = _samples(document, f"jobs.aps_{size}_ran", _REFERENCE)
    p99 = _samples(document, f"jobs.aps_{size}_p99", _REFERENCE)
    if not (len(fires) == len(ran) == len(p99)):
        return []
    return [r >= f and p <= bound for f, r, p in zip(fires, ran, p99, strict=True)]


def _ratios(ours: list[float], theirs: list[float], keep: list[bool] | None = None) -> str:
    if len(ours) != len(theirs) or not ours:
        return "-"
    pairs = [
        mine / other
        for i, (mine, other) in enumerate(zip(ours, theirs, strict=True))
        if other and (keep is None or keep[i])
    ]
    if not pairs:
        return "-"
    return _spread(pairs, ".2f", "x")


def _spread(values: list[float], form: str, unit: str) -> str:
    """The median with ``unit``, then (min-max) when there is more than one value."""
    text = f"{statistics.median(values):{form}}{unit}"
    return text + (f" ({min(values):{form}}-{max(values):{form}})" if len(values) > 1 else "")


def _row_ratios(
    document: dict[str, Any],
    size: str,
    what: str,
    backends: list[str],
    keep: list[bool] | None = None,
) -> str:
    """Each backend's ratio of a ``size`` row's figure to APScheduler's."""
    theirs = _samples(document, f"jobs.aps_{size}_{what}", _REFERENCE)
    return ", ".join(
        f"{b} {_ratios(_samples(document, f'jobs.{size}_{what}', b), theirs, keep)}"
        for b in backends
    )


def _fire_times(document: dict[str, Any], prefix: str, size: str, backend: str) -> str:
    """Fire times run of those in the window, over all repetitions, and the rest."""
    key = f"jobs.{prefix}{size}"
    fires = sum(_samples(document, f"{key}_fires", backend))
    ran = sum(_samples(document, f"{key}_ran", backend))
    text = f"{ran:,.0f} of {fires:,.0f}"
    if ran < fires:
        missed = [
            f"{word} {total:,.0f}"
            for reason, word in JOB_MISS_REASONS.items()
            if (total := sum(_samples(document, f"{key}_{reason}", backend)))
        ]
        unreported = sum(_samples(document, f"{key}_unreported", backend))
        text += f" ({', '.join([*missed, f'unreported {unreported:,.0f}'])})"
    return text


def _state_file_lines(document: dict[str, Any], backends: list[str], pad: str) -> list[str]:
    """eventsched with a state file against eventsched without one, the same backend's
    rows of the same repetition (none in a run saved before the state file's row)."""
    with_file = [b for b in backends if _samples(document, "jobs.state_many_cpu_share", b)]
    if not with_file:
        return []

    def ratios(what: str) -> str:
        texts = []
        for b in with_file:
            ours = _samples(document, f"jobs.state_many_{what}", b)
            texts.append(f"{b} {_ratios(ours, _samples(document, f'jobs.many_{what}', b))}")
        return ", ".join(texts)

    runs = "; ".join(f"{b} {_fire_times(document, 'state_', 'many', b)}" for b in with_file)
    return [
        f"{pad}with a state file / without (eventsched's rows of the same repetition): "
        f"CPU {ratios('cpu_share')}",
        f"{pad}  late p99 {ratios('p99')}; fire times run: {runs}",
    ]


def _start_lines(document: dict[str, Any], jobs: int) -> list[str]:
    """The start-up row: a process started on a state file of saved jobs (see
    :mod:`._jobstart`), per backend: its time, median (min-max), and the rows written."""
    figures = []
    for backend, status in document["backends"].items():
        wall = _samples(document, "jobs.start_wall_ms", backend)
        if not status["available"] or not wall:
            continue
        rows = sum(_samples(document, "jobs.start_rows", backend))
        figures.append(f"{backend} {_spread(wall, '.0f', ' ms')}, rows written {rows:.0f}")
    if not figures:
        return []
    count = SAVED_PER_JOB * jobs
    return [
        f"  start-up on a state file of {count:,} saved jobs (a process of its own, from "
        f"entering the scheduler to its state saved): {'; '.join(figures)}"
    ]


def jobs_lines(document: dict[str, Any]) -> list[str]:
    """eventsched's jobs rows against APScheduler's of the same repetition."""
    if not _samples(document, "jobs.aps_many_p99", _REFERENCE):
        return []
    backends = [
        name
        for name, status in document["backends"].items()
        if status["available"] and _samples(document, "jobs.many_p99", name)
    ]
    jobs = int(document["config"]["jobs"])
    bound = KEPT_UP * float(document["config"]["job_interval"]) * 1e3
    frozen = " (--job-gc-freeze: gc.freeze() in every row)"
    lines = [
        "",
        "jobs against APScheduler 3 (its asyncio process of the same repetition): "
        "eventsched / APScheduler, median (min-max) of the repetitions' own ratios"
        + (frozen if document["config"].get("job_gc_freeze") else ""),
    ]
    for size, count in zip(_SIZES, (max(1, jobs // 10), jobs), strict=True):
        keep = kept_up(document, size)
        reps = len(keep)

        head = f"  {count} jobs: "
        pad = " " * len(head)
        lines.append(f"{head}CPU {_row_ratios(document, size, 'cpu_share', backends)}")
        which = f"{sum(keep)} of {reps} repetitions"
        if not keep:  # a run saved before the bench counted fire times
            lines.append(f"{pad}late p99: no fire times counted in this run, so no ratio")
            continue
        if any(keep):
            lines.append(
                f"{pad}late p99, the {which} where APScheduler kept up: "
                + _row_ratios(document, size, "p99", backends, keep)
            )
        else:
            lines.append(
                f"{pad}late p99: APScheduler kept up in none of the {reps} repetitions: no ratio"
            )
        runs = [f"APScheduler {_fire_times(document, 'aps_', size, _REFERENCE)}"]
        runs += [f"{b} {_fire_times(document, '', size, b)}" for b in backends]
        lines.append(f"{pad}fire times run: {'; '.join(runs)}")
        if size == "many":
            lines += _state_file_lines(document, backends, pad)
    lines += _start_lines(document, jobs)
    lines.append(
        f"(APScheduler kept up: it ran every fire time in the window, p99 <= {bound:g} ms; "
        "the fire times are summed over the repetitions)"
    )
    return lines
