"""Lessons about streams: memory-streams, bounded-buffers, limiting-concurrency."""

from __future__ import annotations

import anyio
import pytest

from eventsched.lessons import find_lesson
from eventsched.lessons.bounded_buffers import BURST, QUEUE_SIZE, BoundedBuffersOutcome
from eventsched.lessons.limiting_concurrency import (
    BUFFER,
    JOBS,
    LIMIT,
    RAISED,
    LimitingOutcome,
)
from eventsched.lessons.memory_streams import BUFFER as STREAM_BUFFER
from eventsched.lessons.memory_streams import ITEMS, PER_PRODUCER, MemoryStreamsOutcome

pytestmark = pytest.mark.anyio

WAIT = 30.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(WAIT):
        return await find_lesson(name).demonstrate()


async def test_memory_streams(anyio_backend_name: str) -> None:
    """Closing ends the loop, a closed receiver breaks send, clones share, buffer 0 waits."""
    outcome = await demonstrate("memory-streams")
    assert isinstance(outcome, MemoryStreamsOutcome)
    assert outcome.received_before_end == ITEMS
    assert outcome.send_to_closed == "BrokenResourceError"
    assert outcome.clone_received == outcome.clone_distinct == 2 * PER_PRODUCER
    assert sum(outcome.clone_split) == 2 * PER_PRODUCER
    assert outcome.clone_loops_ended
    assert (outcome.ahead_unbuffered, outcome.ahead_buffered) == (0, STREAM_BUFFER)
    assert outcome.most_ahead_unbuffered <= 1
    assert outcome.held


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


async def test_limiting_concurrency(anyio_backend_name: str) -> None:
    """A buffer alone lets every job run at once; a limiter or semaphore caps them."""
    outcome = await demonstrate("limiting-concurrency")
    assert isinstance(outcome, LimitingOutcome)
    assert BUFFER < outcome.peak_buffer_only <= JOBS
    assert outcome.peak_limiter == LIMIT
    assert outcome.peak_semaphore == LIMIT
    assert outcome.peak_raised == RAISED
    assert outcome.second_token_refused
    assert outcome.thread_tokens >= 1
    assert outcome.held
