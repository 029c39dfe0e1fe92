"""Lessons about the loop: checkpoints, threads, timers, testing-time, correlation.

Counts and orderings are asserted exactly; timings only against the lessons' own
constants (a thread that sleeps 0.2 s cannot finish sooner), and speed only as the
same-run ratio the checkpoints lesson prints.
"""

from __future__ import annotations

import anyio
import pytest

from eventsched.lessons import find_lesson
from eventsched.lessons.checkpoints import CHUNKS, ITEMS, CheckpointsOutcome
from eventsched.lessons.correlation import CHAIN, ORDERS, CorrelationOutcome
from eventsched.lessons.testing_time import HOUR, THREAD_WORK, VirtualDayOutcome
from eventsched.lessons.threads import BLOCK, ThreadsOutcome
from eventsched.lessons.timers import SAMPLES, TimersOutcome

pytestmark = pytest.mark.anyio

LIMIT = 30.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(LIMIT):
        return await find_lesson(name).demonstrate()


async def test_checkpoints(anyio_backend_name: str) -> None:
    """send() yields every time, send_nowait() never; trio's Lock and Event yield, asyncio's
    do not; a greedy task starves the rest."""
    outcome = await demonstrate("checkpoints")
    assert isinstance(outcome, CheckpointsOutcome)
    assert outcome.ticks_during_send >= ITEMS // 2
    assert outcome.ticks_during_send_nowait == 0
    assert outcome.ticks_during_greedy == 0
    assert outcome.ticks_during_cooperative >= CHUNKS // 2
    if anyio_backend_name == "asyncio":
        assert outcome.ticks_during_queue_put == 0
        assert (outcome.ticks_during_lock, outcome.ticks_during_event) == (0, 0)
    else:
        assert outcome.ticks_during_queue_put is None
        assert outcome.ticks_during_lock >= ITEMS // 2
        assert outcome.ticks_during_event >= ITEMS // 2
    # A same-run ratio, with a generous bound: the machine is shared.
    assert outcome.speedup > 1.5
    assert outcome.held


async def test_threads(anyio_backend_name: str) -> None:
    """Blocking in the loop stops it; a timeout waits for a thread unless it abandons it."""
    outcome = await demonstrate("threads")
    assert isinstance(outcome, ThreadsOutcome)
    assert outcome.turns_blocking_in_loop == 0
    assert outcome.turns_in_thread > 0
    assert outcome.waited_for_thread >= BLOCK
    assert outcome.abandoned_after < BLOCK
    assert outcome.abandoned_thread_finished_later
    assert outcome.from_thread_in_loop_thread
    assert outcome.portal_result == 42
    if anyio_backend_name == "asyncio":
        assert outcome.asyncio_to_thread_after is not None
        assert outcome.asyncio_to_thread_after < BLOCK
    else:
        assert outcome.asyncio_to_thread_after is None
    assert outcome.held


async def test_timers(anyio_backend_name: str) -> None:
    """No timer fires early on asyncio or trio, on an idle or a busy loop."""
    outcome = await demonstrate("timers")
    assert isinstance(outcome, TimersOutcome)
    measured = {(m.backend, m.loop) for m in outcome.measurements}
    assert {("asyncio", "idle"), ("asyncio", "busy"), ("trio", "idle"), ("trio", "busy")} <= (
        measured
    )
    assert measured <= {
        (b, loop) for b in ("asyncio", "trio", "uvloop") for loop in ("idle", "busy")
    }
    assert all(m.earliest_ms >= 0 for m in outcome.measurements if m.backend != "uvloop")
    assert all(0 <= m.over_1ms <= SAMPLES for m in outcome.measurements)
    assert outcome.held
    # How late, and busy against idle, are printed, not asserted: they depend on the load.


async def test_testing_time(anyio_backend_name: str) -> None:
    """A virtual day runs every cron job on time; a worker thread escapes virtual time."""
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
    assert outcome.thread_real_s >= THREAD_WORK
    assert outcome.thread_virtual_s >= HOUR
    assert any(line.startswith("weekday-digest: 1 run ") for line in outcome.figures())
    assert outcome.held


async def test_correlation(anyio_backend_name: str) -> None:
    """Ids follow the work into handlers, child tasks and threads, not into messages."""
    outcome = await demonstrate("correlation")
    assert isinstance(outcome, CorrelationOutcome)
    assert outcome.chains == outcome.complete_chains == ORDERS
    assert outcome.causes_in_chain
    assert outcome.lost_ids == ORDERS
    # The tree: one line per event of the chain, shipped a root beside order_placed.
    assert len(outcome.tree) == len(CHAIN)
    assert outcome.roots == ("order_placed", "shipped")
    assert outcome.reached_from_order == len(CHAIN) - 1
    assert all(line.startswith("  ") for line in outcome.tree)
    assert outcome.held
