"""Claimed runs held back until shortly before their fire times.

With a durable store a pass claims the runs of its claim lead ahead (20 ms: ~400 runs
at 10,000 a second, see :mod:`._scheduler`). Handed to their lanes at once, each of them
waited there as a chain of coroutines, futures and parkings, some ten objects the
garbage collector tracks, alive until its fire time: every pass then set off a
collection of the young generation (~1 ms each, a third of the main thread's extra
cost with a state file). Held here instead, a claimed run is a tuple the collector
stops tracking at its first collection and an item in a dict, and
a task of its own (the job scheduler's ``_release_held``) hands it to a lane when its
fire time is as near as a pass of the default store would start it (``RUN_LEAD``), so a
run waits in its lane no longer than without a state file. Not the scheduler task: it
may be waiting for the next claim's commit then (found with PostgreSQL: p99 28 ms
against 18 before runs were held; 12 once released by their own task).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from datetime import datetime

from ._entry import Entry

__all__ = ["Held"]


class Held:
    """Claimed runs by fire time, not handed to a lane yet."""

    __slots__ = ("_heap", "_jobs", "_line", "_seq")

    def __init__(self) -> None:
        # (fire time, order of arrival): the order keeps equal fire times first come
        # first served. The job is found by that number in ``_jobs``, not kept in the
        # item: a tuple of a datetime and an int is untracked by the garbage collector
        # at its first collection, one holding the job stays tracked. A held run lives
        # the claim lead (0.1 s with a state file), long enough to be promoted to the
        # oldest generation, whose growth sets off full collections (see
        # docs/benchmarks.md, "the tail with a state file").
        #
        # Passes claim in order of fire time (the timeline's), and each pass beyond the
        # last one's horizon: the items almost always come in order, and go in a line
        # (an append, a pop from the left); only one that comes earlier than the line's
        # last goes to the heap (each push and pop there ~10 comparisons of datetimes
        # at 400 held). ``due`` takes from both in order.
        self._line: deque[tuple[datetime, int]] = deque()
        self._heap: list[tuple[datetime, int]] = []
        self._jobs: dict[int, Entry] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def push(self, job: Entry, fire_time: datetime) -> None:
        self._seq = seq = self._seq + 1
        self._jobs[seq] = job
        line = self._line
        if not line or line[-1][0] <= fire_time:
            line.append((fire_time, seq))
        else:
            heapq.heappush(self._heap, (fire_time, seq))

    def earliest(self) -> datetime | None:
        line, heap = self._line, self._heap
        if not heap:
            return line[0][0] if line else None
        return min(line[0][0], heap[0][0]) if line else heap[0][0]

    def due(self, until: datetime) -> Iterator[tuple[Entry, datetime]]:
        """Take out the runs whose fire times are up to ``until``, earliest first."""
        line, heap, jobs = self._line, self._heap, self._jobs
        while True:
            if heap and heap[0][0] <= until and not (line and line[0] < heap[0]):
                fire_time, seq = heapq.heappop(heap)
            elif line and line[0][0] <= until:
                fire_time, seq = line.popleft()
            else:
                return
            yield jobs.pop(seq), fire_time

    def drain(self) -> list[tuple[Entry, datetime]]:
        """Take out every run held."""
        jobs = self._jobs
        runs = [(jobs[seq], fire_time) for fire_time, seq in sorted([*self._line, *self._heap])]
        self._line, self._heap, self._jobs = deque(), [], {}
        return runs
