"""Planning: which due fire times run and which are missed, and why; no event loop."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from eventsched import MissReason
from eventsched._jobs import Miss, Plan, plan
from eventsched.testing import DEFAULT_EPOCH

NOW = DEFAULT_EPOCH


def ago(*seconds: float) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds]


def test_one_fire_time_on_time_runs() -> None:
    decided = plan(ago(0), NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=0)
    assert decided == Plan(run=tuple(ago(0)), missed=())


def test_coalescing_runs_the_latest_and_reports_the_others() -> None:
    due = ago(30, 20, 10)
    decided = plan(due, NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=0)
    assert decided.run == (due[-1],)
    assert decided.missed == (Miss(MissReason.COALESCED, tuple(due[:2])),)


def test_coalescing_runs_however_late() -> None:
    due = ago(3600)
    decided = plan(due, NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=0)
    assert decided.run == tuple(due)


@pytest.mark.parametrize(("grace", "late"), [(5.0, 2), (None, 0), (30.0, 0)])
def test_without_coalescing_each_runs_within_its_grace(grace: float | None, late: int) -> None:
    due = ago(20, 10, 1)
    decided = plan(due, NOW, coalesce=False, misfire_grace_time=grace, max_instances=9, running=0)
    assert decided.run == tuple(due[late:])
    if late:
        assert decided.missed == (Miss(MissReason.MISFIRE, tuple(due[:late])),)
    else:
        assert decided.missed == ()


def test_runs_beyond_max_instances_are_missed() -> None:
    due = ago(2, 1, 0)
    decided = plan(due, NOW, coalesce=False, misfire_grace_time=None, max_instances=2, running=1)
    assert decided.run == (due[0],)
    assert decided.missed == (Miss(MissReason.MAX_INSTANCES, tuple(due[1:])),)


def test_a_full_job_runs_nothing() -> None:
    due = ago(0)
    decided = plan(due, NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=1)
    assert decided == Plan(run=(), missed=(Miss(MissReason.MAX_INSTANCES, tuple(due)),))


def test_fire_times_left_out_are_flagged_more() -> None:
    due = ago(20, 10)
    decided = plan(
        due, NOW, coalesce=False, misfire_grace_time=1, max_instances=1, running=0, more=True
    )
    assert decided.missed == (Miss(MissReason.MISFIRE, tuple(due), more=True),)
    coalesced = plan(
        due, NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=0, more=True
    )
    assert coalesced.missed == (Miss(MissReason.COALESCED, (due[0],), more=True),)


def test_nothing_due_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan([], NOW, coalesce=True, misfire_grace_time=1, max_instances=1, running=0)
