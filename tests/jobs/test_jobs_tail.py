"""The start lateness tail with a durable store: passes claim a bounded number of jobs,
held runs are nothing the garbage collector tracks, a start's new rows and a round of
ended runs are saved by the writer in chunks, never in one large save a pass waits for.

Virtual time; the tests count saves and rows, never time them (the figures are in
docs/benchmarks.md, "the tail with a state file").
"""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest
from jobtools import EPOCH

from eventsched._jobs._held import Held

pytestmark = pytest.mark.anyio


class _Job:
    """Stands in for a job (an object the garbage collector tracks)."""


def test_held_runs_are_nothing_the_collector_tracks() -> None:
    """A held run lives the claim lead (0.1 s with a state file): long enough to reach
    the oldest generation, whose growth sets off full collections. Its heap item is a
    datetime and a number, untracked at its first collection; the job is found apart."""
    held = Held()
    jobs = [_Job() for _ in range(5)]
    at = [EPOCH + timedelta(seconds=s) for s in (3, 1, 2, 1, 5)]
    for job, fire_time in zip(jobs, at, strict=True):
        held.push(job, fire_time)  # type: ignore[arg-type]
    gc.collect()
    assert not any(gc.is_tracked(item) for item in held._heap)
    assert held.earliest() == at[1]
    assert list(held.due(at[2])) == [(jobs[1], at[1]), (jobs[3], at[3]), (jobs[2], at[2])]
    assert list(held.due(at[0])) == [(jobs[0], at[0])]
    assert held.drain() == [(jobs[4], at[4])]
    assert len(held) == 0
    assert not held._jobs
