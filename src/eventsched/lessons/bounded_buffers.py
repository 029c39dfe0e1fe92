"""Lesson: bounded buffers, and what overload does under each policy.

A queue between a producer and a slow consumer must be bounded, or a burst grows it
until the process runs out of memory. Once it is bounded, something has to give when
it is full, and you have to choose what. eventsched's ``EventScheduler`` offers four
``overflow`` policies; this lesson runs the same overload under each:

* ``block``: the producer waits for room. Nothing is lost; the producer slows down
  (backpressure). Right when the producer can afford to wait.
* ``drop_newest``: the new event is refused (``emit`` returns False). The queue keeps
  the oldest events.
* ``drop_oldest``: the oldest buffered event is evicted to make room. The queue keeps
  the newest events; the producer is told nothing.
* ``reject``: ``emit`` raises ``QueueFullError``. The producer must decide.

Whatever is lost is counted in ``scheduler.statistics()`` by reason, and reported as an
``EVENTS_DROPPED`` event: loss is a decision you can see, never silent.

The overload: a queue of 10, one worker whose handler waits on a gate, and a burst of
50 events. Under ``block`` the gate is open (else the producer would wait forever);
under the others it opens only after the burst, so exactly 40 cannot fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import sniffio

from .. import Event, EventScheduler, EventType, OverflowPolicy, QueueFullError
from ._base import Lesson

QUEUE_SIZE = 10
BURST = 50
#: Bound on each policy's run, in seconds (it takes milliseconds).
WAIT_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy under the burst."""

    policy: str
    accepted_by_emit: int
    """emit() returned True."""
    refused_by_emit: int
    """emit() returned False (the producer can see it)."""
    raised: int
    """emit() raised QueueFullError."""
    waited: int
    """emits that found the queue full and had to wait for room."""
    handled: tuple[int, ...]
    """Sequence numbers of the events the handler saw, in order."""
    dropped: dict[str, int]
    """statistics().dropped: lost to overflow, by reason."""
    rejected: dict[str, int]
    """statistics().rejected: refused with an error, by reason."""
    reported_drops: int
    """Total of the counts in the EVENTS_DROPPED events the scheduler emitted."""
    unaccounted: int
    """statistics().unaccounted: zero when every event is accounted for."""

    @property
    def lost(self) -> tuple[int, ...]:
        """Sequence numbers that never reached the handler."""
        seen = set(self.handled)
        return tuple(n for n in range(BURST) if n not in seen)

    def feels(self) -> str:
        """What the producer felt, in words."""
        if self.policy == OverflowPolicy.BLOCK:
            return f"waited for room {self.waited} times"
        if self.policy == OverflowPolicy.DROP_NEWEST:
            return f"emit() returned False {self.refused_by_emit} times"
        if self.policy == OverflowPolicy.DROP_OLDEST:
            return f"nothing: emit() returned True {self.accepted_by_emit} times"
        return f"QueueFullError raised {self.raised} times"

    def as_expected(self) -> bool:
        """Whether this run shows what the policy promises."""
        lost = self.lost
        if self.unaccounted != 0 or len(self.handled) + len(lost) != BURST:
            return False
        if self.policy == OverflowPolicy.BLOCK:
            return not lost and self.waited > 0 and self.handled == tuple(range(BURST))
        if len(lost) < BURST - QUEUE_SIZE - 1:  # the burst must have overflowed
            return False
        if self.policy == OverflowPolicy.DROP_NEWEST:
            # The first ones are kept, the newer ones refused, and the producer was told.
            return (
                max(self.handled) < min(lost)
                and self.refused_by_emit == len(lost)
                and self.dropped == {"queue_full": len(lost)}
                and self.reported_drops == len(lost)
            )
        if self.policy == OverflowPolicy.DROP_OLDEST:
            # The newest QUEUE_SIZE are kept; every emit "succeeded".
            newest = tuple(range(BURST - QUEUE_SIZE, BURST))
            return (
                self.handled[-QUEUE_SIZE:] == newest
                and self.accepted_by_emit == BURST
                and self.dropped == {"evicted": len(lost)}
                and self.reported_drops == len(lost)
            )
        return self.raised == len(lost) and self.rejected == {"queue_full": len(lost)}


@dataclass(frozen=True, slots=True)
class BoundedBuffersOutcome:
    """What the demonstration measured."""

    backend: str
    runs: tuple[PolicyRun, ...]

    @property
    def claim(self) -> str:
        return (
            f"With a queue of {QUEUE_SIZE} and a burst of {BURST}: block loses nothing and "
            "makes the producer wait; drop_newest keeps the oldest and tells the producer "
            "(False); drop_oldest keeps the newest and tells it nothing; reject raises "
            "QueueFullError. Every loss is counted by reason and nothing is unaccounted."
        )

    @property
    def headline(self) -> str:
        lost = ", ".join(f"{run.policy} {len(run.lost)}" for run in self.runs)
        unaccounted = sum(run.unaccounted for run in self.runs)
        return f"a burst of {BURST} into {QUEUE_SIZE}: lost {lost}; unaccounted {unaccounted}"

    @property
    def held(self) -> bool:
        return len(self.runs) == 4 and all(run.as_expected() for run in self.runs)

    def figures(self) -> list[str]:
        lines = []
        for run in self.runs:
            counted = {**run.dropped, **{f"rejected {k}": n for k, n in run.rejected.items()}}
            lines.append(
                f"{run.policy}: producer {run.feels()}; handled {len(run.handled)} "
                f"({_ranges(run.handled)}), lost {len(run.lost)} ({_ranges(run.lost)}); "
                f"counted {counted or 'nothing'}, reported in EVENTS_DROPPED "
                f"{run.reported_drops}; unaccounted {run.unaccounted}"
            )
        return lines


def _ranges(numbers: tuple[int, ...]) -> str:
    """``(0, 1, 2, 7)`` -> ``"#0-2, #7"``: short enough to read."""
    if not numbers:
        return "none"
    parts: list[str] = []
    start = previous = numbers[0]
    for n in (*numbers[1:], None):
        if n is not None and n == previous + 1:
            previous = n
            continue
        parts.append(f"#{start}" if start == previous else f"#{start}-{previous}")
        if n is not None:
            start = previous = n
    return ", ".join(parts)


async def _overload(policy: OverflowPolicy) -> PolicyRun:
    scheduler = EventScheduler(queue_size=QUEUE_SIZE, overflow=policy, workers=1)
    gate = anyio.Event()
    if policy is OverflowPolicy.BLOCK:
        gate.set()  # a closed gate would make a blocked producer wait forever
    handled: list[int] = []
    reported = 0

    @scheduler.on("work")
    async def slow_consumer(event: Event) -> None:
        await gate.wait()  # the consumer is stuck until the burst is over
        handled.append(event.data["n"])

    @scheduler.on(EventType.EVENTS_DROPPED)
    async def count_reports(event: Event) -> None:
        nonlocal reported
        reported += event.data["count"]

    accepted = refused = raised = waited = 0
    with anyio.fail_after(WAIT_LIMIT):
        async with scheduler:
            for n in range(BURST):
                # What "full" looks like from the producer's side, before it emits.
                if scheduler.statistics().still_queued >= QUEUE_SIZE:
                    waited += policy is OverflowPolicy.BLOCK
                try:
                    if await scheduler.emit("work", {"n": n}):
                        accepted += 1
                    else:
                        refused += 1
                except QueueFullError:
                    raised += 1
            gate.set()
        # Leaving the block shut the scheduler down gracefully: the queue is drained.
    stats = scheduler.statistics()
    return PolicyRun(
        policy=policy.value,
        accepted_by_emit=accepted,
        refused_by_emit=refused,
        raised=raised,
        waited=waited,
        handled=tuple(handled),
        dropped=dict(stats.dropped),
        rejected=dict(stats.rejected),
        reported_drops=reported,
        unaccounted=stats.unaccounted,
    )


async def demonstrate() -> BoundedBuffersOutcome:
    """Run the same burst under each policy on the current backend."""
    policies = (
        OverflowPolicy.BLOCK,
        OverflowPolicy.DROP_NEWEST,
        OverflowPolicy.DROP_OLDEST,
        OverflowPolicy.REJECT,
    )
    runs = [await _overload(policy) for policy in policies]
    return BoundedBuffersOutcome(backend=sniffio.current_async_library(), runs=tuple(runs))


LESSON = Lesson(
    name="bounded-buffers",
    title="Bounded buffers: the same overload under block, drop_newest, drop_oldest, reject",
    idea=(
        "A queue must be bounded, and then something gives when it is full: the producer "
        "waits (block), the new item is refused (drop_newest), the oldest is evicted "
        "(drop_oldest), or the producer gets an error (reject). Each choice moves the "
        "pain somewhere else; eventsched counts every loss by reason."
    ),
    demonstrate=demonstrate,
    differences=(
        "The outcome is the same: eventsched's queue is an anyio memory object stream. "
        "Under block, how often the producer has to wait depends on the order in which "
        "the scheduler runs ready tasks, which differs (asyncio: strictly first in, first "
        "out; trio: in batches, in an order it does not promise), so the count differs."
    ),
)
