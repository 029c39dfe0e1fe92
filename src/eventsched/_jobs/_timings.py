"""How late job runs start and how long they take: histograms with fixed buckets.

Why fixed buckets kept as counters, rather than a window of samples with quantiles
computed at scrape time: a job run costs one ``bisect`` and two additions here, a
scrape copies a dozen integers, and the figures are Prometheus histograms, which
(unlike quantiles) can be summed across processes and turned into a rate or a quantile
over any window by ``histogram_quantile()``. The price is resolution: a figure is known
only to its bucket. The buckets run from a millisecond (a run's start is normally within
a few of its fire time) to an hour (a long batch job).

``lateness`` is the start of the job's call minus the fire time it runs for (the
jittered one, if the job has jitter): the scheduler's own delay, plus any time the loop
was blocked. Runs that never start are not observed. ``duration`` is the call's time on
the loop clock, for every run that ends with an outcome (completed, failed, timed out);
a run aborted by shutdown has none.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS", "Buckets", "JobTimings", "RunHistogram"]

#: Upper bounds (seconds) of the lateness buckets; +Inf is implied.
LATENESS_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)
#: Upper bounds (seconds) of the duration buckets; +Inf is implied.
DURATION_BUCKETS: Final = (
    0.001,
    0.01,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True, slots=True)
class RunHistogram:
    """A snapshot of one histogram: observations per bucket, and their sum."""

    bounds: tuple[float, ...]
    """Upper bounds of the buckets, ascending; the last bucket (+Inf) has no bound here."""
    counts: tuple[int, ...]
    """Observations in each bucket (not cumulative): one more entry than ``bounds``."""
    sum: float
    """Sum of the observed seconds."""

    @property
    def count(self) -> int:
        """All observations."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` per bucket, +Inf last: Prometheus' ``le``."""
        running = 0
        buckets = []
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            buckets.append((bound, running))
        return buckets


@dataclass(frozen=True, slots=True)
class JobTimings:
    """Lateness and duration of the job runs, from :meth:`EventScheduler.job_timings`."""

    lateness: RunHistogram
    """Seconds from each run's fire time to the start of its call."""
    duration: RunHistogram
    """Seconds each run's call took, for runs that ended with an outcome."""


class Buckets:
    """The counters behind a :class:`RunHistogram`; ``observe`` is the whole hot path."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be ascending and distinct")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le is <=).
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def snapshot(self) -> RunHistogram:
        return RunHistogram(self._bounds, tuple(self._counts), self._sum)
