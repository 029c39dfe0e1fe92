"""The fire times of the scheduled jobs, earliest first: a heap with lazy deletion.

The scheduler task asks it what is due and when the next fire time is; the job
methods push a job when its fire time changes. Every change costs O(log n) and a pass
costs O(log n) per due job, never a scan of all jobs.

A job is pushed with a ticket; pushing it again (a new fire time) or removing, pausing
or retiring it leaves its old items in the heap, which are recognised as stale when
they reach the top (their ticket is no longer the job's, or the job no longer fires)
and dropped there. The heap is keyed on POSIX timestamps: floats compare several times
faster than aware datetimes (whose time zones may differ), and at today's dates a float
still tells microseconds apart, so the order is the datetimes' order. When stale items
outnumber the live jobs the heap is rebuilt, so its size stays proportional to the
number of jobs.

An item is a pair of numbers, ``(key, ticket)``, and a dict maps each ticket in the
heap to its job. A tuple of numbers only is untracked by the garbage collector at its
first collection, where one holding the job stays tracked for as long as it is in the
heap: a start-up that queues 50,000 jobs then leaves the collector nothing to traverse
(the 50,000 tracked tuples had set off dozens of young collections and, kept, a full
one). The price is a dict store and pop per item: 20,000 pushes and 10,000 pops of
10,000 jobs, alternated in one process 25 times, took 110 / 170 ms (best / median)
against 127 / 175 with the job in the tuple, within the noise of a loaded machine.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from ._entry import Entry

__all__ = ["Timeline"]

#: Below this size the heap is never rebuilt: stale items cost less than a rebuild.
_MIN_REBUILD = 64


class Timeline:
    """Scheduled jobs ordered by their next fire time (``Entry.fire_at``)."""

    __slots__ = ("_heap", "_queued", "_ticket", "popped")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        # The job of each item in the heap, by its ticket (an entry per item).
        self._queued: dict[int, Entry] = {}
        self._ticket = 0
        #: Items taken off the heap, live or stale: the work of the passes, for tests.
        self.popped = 0

    def __len__(self) -> int:
        return len(self._heap)

    @staticmethod
    def _live(job: Entry, ticket: int) -> bool:
        # Every change of a job's fire time pushes it again with a new ticket.
        return job.ticket == ticket and not job.removed and not job.paused

    def push(self, job: Entry) -> None:
        """Queue a job at its current fire time; its earlier items become stale."""
        if job.fire_at is None or job.paused or job.removed:
            job.ticket = -1  # any item of it left in the heap is stale
            return
        self._ticket += 1
        ticket = job.ticket = self._ticket
        self._queued[ticket] = job
        heapq.heappush(self._heap, (job.fire_at.timestamp(), ticket))

    def push_all(self, jobs: Iterable[Entry]) -> None:
        """:meth:`push` each job, and order the heap once (O(n), not O(n log n))."""
        self.push_keyed(*_firing(jobs))

    def push_keyed(self, keys: Iterable[float], jobs: Iterable[Entry]) -> None:
        """:meth:`push_all` for jobs that fire, with their keys (each one's ``fire_at``
        as a POSIX timestamp) already known."""
        heap = self._heap
        queued = self._queued
        ticket = self._ticket
        # One loop: measured faster than filling the dict and the heap from zip()s.
        for key, job in zip(keys, jobs, strict=True):
            ticket += 1
            job.ticket = ticket
            queued[ticket] = job
            heap.append((key, ticket))
        if ticket != self._ticket:  # else nothing was added: the heap is in order
            self._ticket = ticket
            heapq.heapify(heap)

    def reserve(self, count: int) -> int:
        """Set aside ``count`` tickets for :meth:`filling`: the ones after the
        number returned, up to it plus ``count`` (unused ones are never handed out)."""
        ticket = self._ticket
        self._ticket += count
        return ticket

    @contextmanager
    def filling(self) -> Iterator[tuple[list[tuple[float, int]], dict[int, Entry]]]:
        """The heap and the dict themselves, for a caller that queues many jobs at once
        and went over them already (the start-up's take-up, :mod:`._resume`): it appends
        ``(key, ticket)`` items to the heap and stores each ticket's job (whose ticket it
        is) in the dict, tickets from :meth:`reserve`; the heap is put in order on the
        way out. Nothing else may use the timeline meanwhile (no await in the block).

        The timeline's own heap and dict rather than new ones handed over: those are as
        old as the scheduler, so the garbage collector's young collections never
        traverse them, where a new heap and dict of 50,000 items were traversed whole,
        twice (their first collection in each young generation), jobs and all (see
        :func:`~._resume.resume_plain`); and no second dict of 50,000 items is built
        to be copied (~2.5 MB of new memory, a page fault per 4 KiB).
        """
        heap = self._heap
        before = len(heap)
        try:
            yield heap, self._queued
        finally:
            if len(heap) != before:  # else nothing was added: the heap is in order
                heapq.heapify(heap)

    def earliest(self) -> datetime | None:
        """The earliest fire time of a job that fires, dropping stale items on top."""
        heap = self._heap
        queued = self._queued
        while heap:
            ticket = heap[0][1]
            job = queued[ticket]
            if self._live(job, ticket):
                return job.fire_at
            heapq.heappop(heap)
            del queued[ticket]
            self.popped += 1
        return None

    def pop_due(self, horizon: datetime, most: int | None = None) -> list[Entry]:
        """Take the jobs due by ``horizon`` off the heap, earliest first (each once),
        at most ``most`` of them (None: all)."""
        heap = self._heap
        queued = self._queued
        due: list[Entry] = []
        limit = horizon.timestamp()
        most = len(heap) if most is None else most
        while heap and heap[0][0] <= limit and len(due) < most:
            ticket = heapq.heappop(heap)[1]
            job = queued.pop(ticket)
            self.popped += 1
            if self._live(job, ticket):
                job.ticket = -1  # taken: push it again once it has a new fire time
                due.append(job)
        return due

    def compact(self, jobs: Iterable[Entry], live: int) -> None:
        """Rebuild the heap from ``jobs`` when stale items outnumber the ``live`` jobs."""
        if len(self._heap) <= max(_MIN_REBUILD, 2 * live):
            return
        self._heap, self._queued = [], {}
        self.push_keyed(*_firing(job for job in jobs if job.ticket >= 0))


def _firing(jobs: Iterable[Entry]) -> tuple[list[float], list[Entry]]:
    """The jobs that fire, with their keys; the others are marked not queued."""
    keys: list[float] = []
    firing: list[Entry] = []
    for job in jobs:
        if job.fire_at is None or job.paused or job.removed:
            job.ticket = -1
        else:
            keys.append(job.fire_at.timestamp())
            firing.append(job)
    return keys, firing
