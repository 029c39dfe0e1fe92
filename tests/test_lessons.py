"""The lessons' claims, asserted on both backends, and the ``lesson`` command itself.

Counts and orderings are asserted exactly; timings only as generous ratios.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import eventsched.lessons
from eventsched.lessons import LESSONS, find_lesson
from eventsched.lessons.bounded_buffers import BURST, QUEUE_SIZE, BoundedBuffersOutcome
from eventsched.lessons.cancel_scopes import CancelScopesOutcome
from eventsched.lessons.checkpoints import CHUNKS, ITEMS, CheckpointsOutcome
from eventsched.lessons.correlation import ORDERS, CorrelationOutcome
from eventsched.lessons.shutdown import ShutdownOutcome
from eventsched.lessons.task_groups import TaskGroupOutcome
from eventsched.lessons.testing_time import VirtualDayOutcome
from eventsched.lessons.timers import SAMPLES, TimersOutcome

#: Bound on one lesson's demonstration (each takes well under 5 s).
LIMIT = 30.0
#: Bound on one ``python -m eventsched lesson`` child.
CHILD_LIMIT = 60.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(LIMIT):
        return await find_lesson(name).demonstrate()


# -- the registry ------------------------------------------------------------------------


def test_every_lesson_module_is_registered() -> None:
    """Each public module of the package is one lesson, listed once, with its file."""
    modules = {
        info.name
        for info in pkgutil.iter_modules(eventsched.lessons.__path__)
        if not info.name.startswith("_")
    }
    assert {lesson.module.rsplit(".", 1)[-1] for lesson in LESSONS} == modules
    assert len({lesson.name for lesson in LESSONS}) == len(LESSONS) == 8
    for lesson in LESSONS:
        assert lesson.path.is_file()
        assert importlib.import_module(lesson.module).LESSON is lesson


def test_unknown_lesson_names_the_known_ones() -> None:
    """Asking for a lesson that does not exist lists the ones that do."""
    with pytest.raises(LookupError, match="task-groups"):
        find_lesson("no-such-lesson")


# -- each lesson's claim, on asyncio and trio ---------------------------------------------


@pytest.mark.anyio
async def test_task_groups(anyio_backend_name: str) -> None:
    """A failing child cancels both siblings and its error reaches the parent."""
    outcome = await demonstrate("task-groups")
    assert isinstance(outcome, TaskGroupOutcome)
    assert outcome.error_reached_parent
    assert outcome.siblings_cancelled == 2
    if anyio_backend_name == "asyncio":
        assert outcome.cancellation_type == "CancelledError"
        assert outcome.detached_error_seen_by_parent is False
        assert outcome.detached_error_only_logged is True
    else:
        assert outcome.cancellation_type == "Cancelled"
        assert outcome.detached_error_seen_by_parent is None
    assert outcome.held


@pytest.mark.anyio
async def test_cancel_scopes(anyio_backend_name: str) -> None:
    """Timeouts, nested deadlines, shielded cleanup and level-triggered cancellation."""
    outcome = await demonstrate("cancel-scopes")
    assert isinstance(outcome, CancelScopesOutcome)
    assert outcome.move_on_caught
    assert outcome.move_on_elapsed < 5  # it was a 10 s sleep under a 50 ms deadline
    assert outcome.fail_after_raised
    assert outcome.inner_sees_outer_deadline
    assert outcome.outer_caught_inner_not
    assert outcome.shorter_inner_only
    assert (outcome.cleanup_done_shielded, outcome.cleanup_done_unshielded) == (True, False)
    assert outcome.scope_recancels
    expected_raw = True if anyio_backend_name == "asyncio" else None
    assert outcome.raw_asyncio_swallowed is expected_raw
    assert outcome.held


@pytest.mark.anyio
async def test_bounded_buffers(anyio_backend_name: str) -> None:
    """Each policy loses (or not) exactly the events it promises, all of them counted."""
    outcome = await demonstrate("bounded-buffers")
    assert isinstance(outcome, BoundedBuffersOutcome)
    runs = {run.policy: run for run in outcome.runs}
    lost = BURST - QUEUE_SIZE
    assert runs["block"].lost == ()
    assert runs["block"].waited > 0
    assert runs["drop_newest"].handled == tuple(range(QUEUE_SIZE))
    assert runs["drop_newest"].refused_by_emit == lost
    assert runs["drop_oldest"].handled == tuple(range(lost, BURST))
    assert runs["drop_oldest"].dropped == {"evicted": lost}
    assert runs["reject"].raised == lost
    assert runs["reject"].rejected == {"queue_full": lost}
    assert all(run.unaccounted == 0 for run in outcome.runs)
    assert outcome.held


@pytest.mark.anyio
@pytest.mark.slow
async def test_shutdown(anyio_backend_name: str) -> None:
    """Drain, cancel after the grace period, the second signal, Ctrl+C per backend."""
    outcome = await demonstrate("shutdown")
    assert isinstance(outcome, ShutdownOutcome)
    assert (outcome.drained_handled, outcome.drained_aborted) == (20, 0)
    assert (outcome.stuck_aborted, outcome.stuck_still_queued) == (1, 5)
    assert outcome.stuck_unaccounted == 0
    assert outcome.second_signal_exit_code == 130
    ctrl_c = {c.backend: c for c in outcome.ctrl_c}
    assert ctrl_c["asyncio"].caught_type == "KeyboardInterrupt"
    assert ctrl_c["asyncio"].except_keyboardinterrupt_catches
    assert ctrl_c["trio"].caught_type == "BaseExceptionGroup"
    assert ctrl_c["trio"].inside == "KeyboardInterrupt"
    assert not ctrl_c["trio"].except_keyboardinterrupt_catches
    assert outcome.held


@pytest.mark.anyio
async def test_correlation(anyio_backend_name: str) -> None:
    """Ids follow the work into handlers, child tasks and threads, not into messages."""
    outcome = await demonstrate("correlation")
    assert isinstance(outcome, CorrelationOutcome)
    assert outcome.chains == outcome.complete_chains == ORDERS
    assert outcome.causes_in_chain
    assert outcome.lost_ids == ORDERS
    assert outcome.held


@pytest.mark.anyio
async def test_checkpoints(anyio_backend_name: str) -> None:
    """send() yields every time, send_nowait() never; a greedy task starves the rest."""
    outcome = await demonstrate("checkpoints")
    assert isinstance(outcome, CheckpointsOutcome)
    assert outcome.ticks_during_send >= ITEMS // 2
    assert outcome.ticks_during_send_nowait == 0
    assert outcome.ticks_during_greedy == 0
    assert outcome.ticks_during_cooperative >= CHUNKS // 2
    if anyio_backend_name == "asyncio":
        assert outcome.ticks_during_queue_put == 0
    else:
        assert outcome.ticks_during_queue_put is None
    # Measured 18-33x; a generous bound, since the machine is shared.
    assert outcome.speedup > 1.5
    assert outcome.held


@pytest.mark.anyio
async def test_timers(anyio_backend_name: str) -> None:
    """No timer fires early; a busy loop fires them sooner than an idle one."""
    outcome = await demonstrate("timers")
    assert isinstance(outcome, TimersOutcome)
    assert {(m.backend, m.loop) for m in outcome.measurements} == {
        ("asyncio", "idle"),
        ("asyncio", "busy"),
        ("trio", "idle"),
        ("trio", "busy"),
    }
    assert all(m.earliest_ms >= 0 for m in outcome.measurements)
    assert all(0 <= m.over_1ms <= SAMPLES for m in outcome.measurements)
    for backend in ("asyncio", "trio"):
        # A ratio, not a figure: the idle loop sleeps in epoll, the busy one only polls.
        assert outcome.get(backend, "busy").median_ms < outcome.get(backend, "idle").median_ms
    # The asyncio/trio ratio is printed, not asserted: it is within noise here.


@pytest.mark.anyio
async def test_testing_time(anyio_backend_name: str) -> None:
    """A virtual day runs every cron job as often as scheduled, on time, in under 10 s."""
    outcome = await demonstrate("testing-time")
    assert isinstance(outcome, VirtualDayOutcome)
    assert {job.job_id: job.runs for job in outcome.jobs} == {
        "hourly-report": 24,
        "quarter-hour-sync": 96,
        "weekday-digest": 1,
        "nightly-backup": 1,
    }
    assert outcome.latest_start_s == 0
    assert outcome.wall_seconds < 10
    assert outcome.held


# -- the command line ----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"BACKEND", "LOG_LEVEL"}}
    return subprocess.run(
        [sys.executable, "-m", "eventsched", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_LIMIT,
        check=False,
    )


@pytest.mark.slow
def test_cli_lists_the_lessons(tmp_path: Path) -> None:
    """``eventsched lesson`` lists every lesson, one line each, and exits 0."""
    result = run_cli("lesson", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(listed) == len(LESSONS)
    for line, lesson in zip(listed, LESSONS, strict=True):
        assert lesson.name in line


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["lesson", "task-groups"], id="asyncio"),
        pytest.param(["lesson", "task-groups", "--backend", "trio"], id="trio"),
        pytest.param(["--backend", "trio", "lesson", "task-groups"], id="trio-shared-flag"),
    ],
)
def test_cli_runs_a_lesson(tmp_path: Path, args: list[str]) -> None:
    """A lesson prints its idea, figures and verdict on the chosen backend, and its file."""
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    backend = "trio" if "trio" in args else "asyncio"
    out = result.stdout
    for heading in ("The idea", "What was measured", "asyncio and trio", "Read the code:"):
        assert heading in out
    assert f"The claim (HELD on {backend})" in out
    assert str(find_lesson("task-groups").path) in out


@pytest.mark.slow
def test_cli_unknown_lesson_is_a_usage_error(tmp_path: Path) -> None:
    """An unknown lesson name is one line on stderr naming the lessons, and exit code 2."""
    result = run_cli("lesson", "no-such-lesson", cwd=tmp_path)
    assert result.returncode == 2
    assert "no lesson named 'no-such-lesson'" in result.stderr
    assert "testing-time" in result.stderr
