"""Property: under any load, policy, buffer size and failure rate, the accounting adds up."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventsched import Event, EventScheduler, OverflowPolicy, QueueFullError, Statistics


@dataclass(frozen=True)
class Burst:
    size: int
    nowait: bool
    yields: int


@dataclass(frozen=True)
class Load:
    policy: OverflowPolicy
    queue_size: int
    workers: int
    fail_percent: int
    handler_yields: bool
    bursts: tuple[Burst, ...]


loads = st.builds(
    Load,
    policy=st.sampled_from(list(OverflowPolicy)),
    queue_size=st.integers(1, 16),
    workers=st.integers(1, 3),
    fail_percent=st.sampled_from([0, 1, 10, 50, 100]),
    handler_yields=st.booleans(),
    bursts=st.lists(
        st.builds(Burst, st.integers(0, 40), st.booleans(), st.integers(0, 3)),
        min_size=1,
        max_size=6,
    ).map(tuple),
)


def check(stats: Statistics) -> None:
    assert stats.emitted == stats.accepted + stats.dropped_total + stats.rejected_total, stats
    assert stats.accepted == stats.finished + stats.in_flight + stats.still_queued, stats
    assert stats.unaccounted == 0


async def exercise(load: Load) -> None:
    scheduler = EventScheduler(
        queue_size=load.queue_size, overflow=load.policy, workers=load.workers
    )
    outcomes = {"handled": 0, "failed": 0}
    offered = 0

    async def handler(event: Event) -> None:
        if load.handler_yields:
            await anyio.lowlevel.checkpoint()
        if (event.data["i"] * 7919) % 100 < load.fail_percent:
            outcomes["failed"] += 1
            raise RuntimeError("planned failure")
        outcomes["handled"] += 1

    scheduler.on("n", handler)
    with anyio.fail_after(20):
        async with scheduler:
            for burst in load.bursts:
                for _ in range(burst.size):
                    offered += 1
                    try:
                        if burst.nowait:
                            scheduler.emit_nowait("n", {"i": offered})
                        else:
                            await scheduler.emit("n", {"i": offered})
                    except QueueFullError:
                        assert load.policy is OverflowPolicy.REJECT
                check(scheduler.statistics())
                for _ in range(burst.yields):
                    await anyio.lowlevel.checkpoint()
    stats = scheduler.statistics()
    check(stats)
    # Graceful exit with quick handlers: nothing left, nothing aborted.
    assert stats.still_queued == 0
    assert stats.aborted_in_flight == 0
    assert stats.in_flight == 0
    # What the handler saw is what the counters say (SHUTDOWN_REQUESTED and drop
    # reports have no handler here, so they count as handled).
    assert stats.failed == outcomes["failed"]
    system_events = stats.handled - outcomes["handled"]
    assert 1 <= system_events <= 1 + len(load.bursts) + 1
    assert stats.emitted == offered + system_events + stats.rejected.get("shutting_down", 0)
    if load.policy is OverflowPolicy.BLOCK:
        assert set(stats.dropped) <= {"queue_full"}  # only emit_nowait, which cannot wait
        if all(not burst.nowait for burst in load.bursts):
            assert stats.dropped_total == 0
    if load.policy is OverflowPolicy.REJECT:
        assert stats.dropped_total == 0
    if load.policy is OverflowPolicy.DROP_NEWEST:
        assert set(stats.dropped) <= {"queue_full"}
    assert stats.queue_high_water <= load.queue_size


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(load=loads)
def test_accounting_adds_up_under_any_load(backend: str, load: Load) -> None:
    """Random bursts, policies, buffer sizes and failure rates: every event is accounted for."""
    anyio.run(exercise, load, backend=backend)
