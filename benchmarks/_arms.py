"""Shared by the benchmarks that compare arms of one pipeline in fresh processes
(bench_http_cost.py, bench_tracing_cost.py): the measured window, the checks on a
child's figures, and the printed medians and same-run ratios."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import anyio

import eventsched


async def handled_rate(
    scheduler: eventsched.EventScheduler,
    seconds: float,
    warm_up: float,
    started: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Emit ``tick`` as fast as ``emit`` takes it (``overflow="block"``) and count the
    handled events per second over a window of ``seconds`` after ``warm_up``."""
    async with scheduler, anyio.create_task_group() as producers:
        if started is not None:
            started()

        async def produce() -> None:
            while True:
                await scheduler.emit("tick")

        producers.start_soon(produce)
        await anyio.sleep(warm_up)
        handled0, t0 = scheduler.statistics().handled, anyio.current_time()
        await anyio.sleep(seconds)
        handled1, t1 = scheduler.statistics().handled, anyio.current_time()
        producers.cancel_scope.cancel()
        scheduler.stop()
    return {
        "rate": (handled1 - handled0) / (t1 - t0),
        "unaccounted": scheduler.statistics().unaccounted,
        "module": eventsched.__file__,
    }


def checked(figures: dict[str, Any], arm: str, base_src: str | None) -> float:
    """A child's rate, once its accounting held and the base arm ran the other tree."""
    if figures["unaccounted"]:
        raise SystemExit(f"{arm}: {figures['unaccounted']} events unaccounted")
    if arm == "base" and not figures["module"].startswith(str(base_src)):
        raise SystemExit(f"base arm ran {figures['module']}, not {base_src}")
    rate: float = figures["rate"]
    return rate


def print_rates(backend: str, reps: int, seconds: float, rates: dict[str, list[float]]) -> None:
    """Each arm's median rate, then each arm's ratio to ``plain`` taken within each
    repetition (median and range: the range is the run's noise)."""
    print(f"{backend}: {reps} repetitions, {seconds:g} s windows")
    for arm, values in rates.items():
        print(f"  {arm:8}  median {statistics.median(values):>9,.0f} events/s")
    for arm in list(rates)[1:]:
        ratios = [a / b for a, b in zip(rates[arm], rates["plain"], strict=True)]
        print(
            f"  {arm}/plain  median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f})"
        )
