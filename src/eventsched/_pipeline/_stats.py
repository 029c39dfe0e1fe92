"""Counters of the event pipeline and the frozen record :func:`statistics` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["DropReason", "OverflowPolicy", "RejectReason", "Statistics"]


class OverflowPolicy(StrEnum):
    """What an emit does when the event queue is full. Chosen once per scheduler."""

    DROP_NEWEST = "drop_newest"
    """Refuse the new event and count it as dropped (``queue_full``). The default."""
    DROP_OLDEST = "drop_oldest"
    """Evict the oldest buffered event (counted as dropped, ``evicted``), accept the new one."""
    BLOCK = "block"
    """Make the emitter wait for room (optionally up to ``block_timeout``, then a drop)."""
    REJECT = "reject"
    """Raise :class:`QueueFullError` to the emitter (counted as rejected, ``queue_full``)."""


class DropReason(StrEnum):
    """Why an event that was emitted correctly was nevertheless lost to overflow."""

    QUEUE_FULL = "queue_full"
    """``drop_newest``: the queue was full (also ``emit_nowait`` under ``block`` on the loop)."""
    EVICTED = "evicted"
    """``drop_oldest``: the event was buffered, then evicted to make room for a newer one."""
    BLOCK_TIMEOUT = "block_timeout"
    """``block``: the emitter waited ``block_timeout`` seconds without finding room."""
    CANCELLED = "cancelled"
    """``block``: the emitter was cancelled (its own timeout, say) while waiting for room."""


class RejectReason(StrEnum):
    """Why an emit was refused before the event could enter the queue."""

    INVALID = "invalid"
    """The event's data was not acceptable (:class:`InvalidEventError`)."""
    QUEUE_FULL = "queue_full"
    """``reject``: the queue was full (:class:`QueueFullError`)."""
    NOT_RUNNING = "not_running"
    """The scheduler had not started yet."""
    SHUTTING_DOWN = "shutting_down"
    """Shutdown had begun (or the scheduler had stopped).

    Once shutdown has begun, nobody waits for room under ``block`` any more: an emit
    that finds the queue full is refused this way, and so is one that was waiting.
    """


@dataclass(frozen=True, slots=True)
class Statistics:
    """A consistent snapshot of the scheduler's accounting.

    Two identities always hold (see :attr:`unaccounted`)::

        emitted  = accepted + dropped + rejected
        accepted = handled + failed + timed_out + aborted_in_flight + in_flight + still_queued

    ``accepted`` counts events that entered the queue and were not evicted from it
    later (an evicted event moves from accepted to dropped). ``in_flight`` is zero
    once the scheduler has stopped.
    """

    emitted: int
    """Emit attempts with an outcome, whatever it was (an emitter still waiting for room
    under ``block`` is counted once it gets in, gives up or is refused)."""
    accepted: int
    """Events that entered the queue (and were not evicted later)."""
    dropped: Mapping[str, int]
    """Events lost to overflow, by :class:`DropReason`."""
    rejected: Mapping[str, int]
    """Emits refused with an error or after shutdown began, by :class:`RejectReason`."""
    handled: int
    """Events every subscribed handler finished without error (or that had none)."""
    failed: int
    """Events at least one handler raised for."""
    timed_out: int
    """Events at least one handler timed out on (and none raised for)."""
    aborted_in_flight: int
    """Events a handler was working on when shutdown cancelled it."""
    in_flight: int
    """Events handlers are working on right now."""
    still_queued: int
    """Events in the queue, measured on the stream itself."""
    handler_errors: int
    """Handler calls that raised (an event with two failing handlers counts two)."""
    handler_timeouts: int
    """Handler calls that exceeded their timeout."""
    queue_capacity: int
    """Size of the bounded queue."""
    queue_high_water: int
    """Most events ever buffered at once."""
    latency_p50: float | None
    """Median seconds from emit to the start of handling (sampled), or None."""
    latency_p99: float | None
    """99th percentile of the same, or None."""
    latency_samples: int = field(default=0)
    """How many samples the latency figures rest on."""
    abandoned_calls: int = field(default=0)
    """Sync handler calls abandoned on a timeout or at shutdown (their thread could not
    be stopped and was left to return on its own)."""
    abandoned_in_flight: int = field(default=0)
    """Of those, calls whose thread has not returned yet: each still holds a thread."""
    refused_calls: int = field(default=0)
    """Sync handler calls refused at once, without a thread, because earlier calls of
    the same handler were abandoned and still run (also counted in ``handler_errors``)."""

    def as_dict(self) -> dict[str, object]:
        """Plain data (for JSON logs and reports), derived totals included."""
        figures: dict[str, object] = {
            name: getattr(self, name) for name in self.__dataclass_fields__
        }
        figures["dropped"] = dict(self.dropped)
        figures["rejected"] = dict(self.rejected)
        figures["dropped_total"] = self.dropped_total
        figures["rejected_total"] = self.rejected_total
        figures["unaccounted"] = self.unaccounted
        return figures

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def rejected_total(self) -> int:
        """All rejections, whatever the reason."""
        return sum(self.rejected.values())

    @property
    def finished(self) -> int:
        """Events that reached an outcome: handled, failed, timed out or aborted."""
        return self.handled + self.failed + self.timed_out + self.aborted_in_flight

    @property
    def unaccounted(self) -> int:
        """How far the two identities are off; zero unless eventsched has a bug."""
        first = self.emitted - self.accepted - self.dropped_total - self.rejected_total
        second = self.accepted - self.finished - self.in_flight - self.still_queued
        return abs(first) + abs(second)
