"""Lessons about tasks: task-groups, starting-tasks, exception-groups, on both backends."""

from __future__ import annotations

import anyio
import pytest

from eventsched.lessons import find_lesson
from eventsched.lessons.exception_groups import ExceptionGroupsOutcome
from eventsched.lessons.starting_tasks import PORT, StartingTasksOutcome
from eventsched.lessons.task_groups import TaskGroupOutcome

pytestmark = pytest.mark.anyio

#: Bound on one lesson's demonstration (each takes well under a second).
LIMIT = 30.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(LIMIT):
        return await find_lesson(name).demonstrate()


async def test_task_groups(anyio_backend_name: str) -> None:
    """A failing child cancels both siblings; the block waits for its last child."""
    outcome = await demonstrate("task-groups")
    assert isinstance(outcome, TaskGroupOutcome)
    assert outcome.error_reached_parent
    assert outcome.siblings_cancelled == 2
    ends = dict(outcome.timeline)
    assert set(ends) == {"fast", "medium", "slow", "block"}
    assert ends["fast"] <= ends["medium"] <= ends["slow"] <= ends["block"]
    assert outcome.block_waited
    if anyio_backend_name == "asyncio":
        assert outcome.cancellation_type == "CancelledError"
        assert outcome.detached_error_seen_by_parent is False
        assert outcome.detached_error_only_logged is True
        assert outcome.asyncio_taskgroup_cancelled == 2
        assert outcome.gather_siblings_running == 2
    else:
        assert outcome.cancellation_type == "Cancelled"
        assert outcome.detached_error_seen_by_parent is None
        assert outcome.gather_siblings_running is None
    assert outcome.held
    assert "after its last child" in outcome.headline


async def test_starting_tasks(anyio_backend_name: str) -> None:
    """start_soon returns before the service ran; start() once it is ready, with its value."""
    outcome = await demonstrate("starting-tasks")
    assert isinstance(outcome, StartingTasksOutcome)
    assert outcome.ready_after_start_soon is False
    assert outcome.ready_after_start is True
    assert outcome.value_from_start == PORT
    assert outcome.service_ran_on
    assert outcome.start_error == "SetupFailed"
    assert outcome.group_survived
    assert outcome.held


async def test_exception_groups(anyio_backend_name: str) -> None:
    """Three errors in one group; except* handles two and passes one on; wrapping keeps it."""
    outcome = await demonstrate("exception-groups")
    assert isinstance(outcome, ExceptionGroupsOutcome)
    assert sorted(outcome.members) == ["ConnectionError", "KeyError", "ValueError"]
    assert outcome.plain_except_caught is False
    assert outcome.handlers_run == ("ValueError", "ConnectionError")
    assert outcome.passed_on == ("KeyError",)
    assert (outcome.wrapped, outcome.cause_members) == ("OrderFailed", 3)
    assert outcome.held
