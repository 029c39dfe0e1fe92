"""Lessons about cancellation: cancel-scopes, level-triggered, deadlines, on both backends.

Durations are asserted only against the lesson's own constants (a timeout cannot end
before its deadline, a cleanup not before it has run), never as speeds.
"""

from __future__ import annotations

import math

import anyio
import pytest

from eventsched.lessons import find_lesson
from eventsched.lessons.cancel_scopes import TIMEOUT, CancelScopesOutcome
from eventsched.lessons.deadlines import BUDGET, NEEDS, STEPS, DeadlinesOutcome
from eventsched.lessons.level_triggered import CLEANUP, LevelTriggeredOutcome

pytestmark = pytest.mark.anyio

LIMIT = 30.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(LIMIT):
        return await find_lesson(name).demonstrate()


async def test_cancel_scopes(anyio_backend_name: str) -> None:
    """move_on_after leaves, fail_after raises, scope.cancel() stops the block only."""
    outcome = await demonstrate("cancel-scopes")
    assert isinstance(outcome, CancelScopesOutcome)
    assert outcome.move_on_caught
    assert TIMEOUT <= outcome.move_on_elapsed < 5  # a 10 s sleep under a 50 ms deadline
    assert outcome.fail_after_raised
    assert TIMEOUT <= outcome.fail_after_elapsed < 5
    assert outcome.cancelled_by_call == 3
    assert outcome.ran_after_block
    assert outcome.held


async def test_level_triggered(anyio_backend_name: str) -> None:
    """anyio cancels the awaits in finally; asyncio.timeout waits for the whole cleanup."""
    outcome = await demonstrate("level-triggered")
    assert isinstance(outcome, LevelTriggeredOutcome)
    assert outcome.anyio_elapsed < CLEANUP / 2
    assert outcome.anyio_cleanup_finished is False
    assert outcome.scope_recancels
    assert outcome.shielded_cleanup_finished
    if anyio_backend_name == "asyncio":
        assert outcome.timeout_elapsed is not None
        assert outcome.timeout_elapsed >= CLEANUP
        assert outcome.wait_for_elapsed is not None
        assert outcome.wait_for_elapsed >= CLEANUP
        assert outcome.swallowed_ran_on is True
        assert (outcome.cancelling_after_swallow, outcome.cancelling_after_uncancel) == (1, 0)
        assert outcome.outside_cancel_in_timeout == "CancelledError"
        assert outcome.asyncio_shield_raised_first is True
        assert outcome.asyncio_shield_finished_later is True
    else:
        assert outcome.timeout_elapsed is None
        assert outcome.swallowed_ran_on is None
    assert outcome.held


async def test_deadlines(anyio_backend_name: str) -> None:
    """One deadline ends a request on budget; a timeout per step runs over."""
    outcome = await demonstrate("deadlines")
    assert isinstance(outcome, DeadlinesOutcome)
    assert outcome.deadline_elapsed >= BUDGET
    # Each step got its own BUDGET: the third was cut only after the first two had run.
    assert outcome.per_step_elapsed >= sum(STEPS[:2]) + BUDGET
    assert math.isinf(outcome.no_deadline)
    assert outcome.inner_sees_outer
    assert outcome.outer_caught
    assert 0 < outcome.budget_left < NEEDS
    assert outcome.careful_step_started is False
    assert outcome.held
