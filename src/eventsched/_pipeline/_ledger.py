"""The ledger: every counter of the pipeline, the latency sample, drop reports, failures.

One place for the accounting the scheduler promises (see :class:`Statistics` for the two
identities): the queue and the workers only move figures here, and everything that
reads them (``statistics()``, the drop reports, the summary) reads them from here.
"""

from __future__ import annotations

from collections import deque
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import anyio
from loguru import logger

from .._events import Event, EventType
from .._exceptions import InvalidEventError
from .._invoke import CallTally, describe_error
from ._stats import DropReason, RejectReason, Statistics

if TYPE_CHECKING:
    from ._queue import EventQueue
    from ._routing import Handler

__all__ = ["LATENCY_SAMPLE_MASK", "Ledger", "report_drops", "report_drops_now"]

log = logger.bind(component="bus")

# One event in this many is timed for the latency percentiles: timing every event
# would cost a clock read per event on the hot path. Latency runs from the event's
# creation (Event.create, which emit(type, data) calls) to the start of its handling,
# on the wall clock the event's timestamp uses.
LATENCY_SAMPLE_MASK: Final = 15
_LATENCY_WINDOW: Final = 8192


class Ledger:
    """The counters. Plain attributes, so that the hot path adds to them inline."""

    __slots__ = (
        "aborted",
        "accepted",
        "capacity",
        "drop_signal",
        "dropped",
        "dropped_unreported",
        "emitted",
        "failed",
        "handled",
        "handler_errors",
        "handler_timeouts",
        "high_water",
        "latency",
        "received",
        "rejected",
        "thread_calls",
        "timed_out",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # This scheduler's sync handler calls abandoned in their threads (_invoke).
        self.thread_calls = CallTally()
        self.emitted = 0
        self.accepted = 0
        self.received = 0
        self.dropped = dict.fromkeys(DropReason, 0)
        self.dropped_unreported = dict.fromkeys(DropReason, 0)
        self.rejected = dict.fromkeys(RejectReason, 0)
        self.handled = 0
        self.failed = 0
        self.timed_out = 0
        self.aborted = 0
        self.handler_errors = 0
        self.handler_timeouts = 0
        self.high_water = 0
        self.latency: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        # Set on the first drop since the last report; the reporter task waits on it.
        self.drop_signal: anyio.Event | None = None

    # -- intake ------------------------------------------------------------------------

    def count_invalid(self, error: InvalidEventError) -> None:
        """Count a refused emit once, however many layers see the same error."""
        if not error.counted:
            error.counted = True
            self.emitted += 1
            self.rejected[RejectReason.INVALID] += 1

    def drop(self, reason: DropReason) -> None:
        self.dropped[reason] += 1
        self.dropped_unreported[reason] += 1
        signal = self.drop_signal
        if signal is not None and not signal.is_set():
            signal.set()

    def take_unreported_drops(self) -> dict[str, int]:
        taken = {reason.value: n for reason, n in self.dropped_unreported.items() if n}
        for reason in self.dropped_unreported:
            self.dropped_unreported[reason] = 0
        return taken

    # -- handling ----------------------------------------------------------------------

    def handler_failed(self, name: str, event: Event, exc: BaseException) -> None:
        """Count and log a handler call that raised.

        The message goes through ``describe_error``: an exception whose ``__str__``
        raises (or returns something huge) must not take the worker down with it.
        """
        self.handler_errors += 1
        log.opt(exception=exc).error(
            "Handler {} failed on event {} (type {}, correlation {}): {}",
            name,
            event.id,
            event.type,
            event.correlation_id,
            describe_error(exc),
        )

    def handler_timed_out(self, handler: Handler, event: Event) -> None:
        self.handler_timeouts += 1
        log.warning(
            "Handler {} timed out after {}s on event {} (type {}, correlation {})",
            handler.name,
            handler.timeout,
            event.id,
            event.type,
            event.correlation_id,
        )

    # -- reading -----------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Events a worker has taken from the queue and not finished yet."""
        return self.received - self.handled - self.failed - self.timed_out - self.aborted

    @property
    def queued(self) -> int:
        """Events in the buffer by our count (evictions take back their acceptance)."""
        return self.accepted - self.received

    def snapshot(self, still_queued: int) -> Statistics:
        """The figures as a :class:`Statistics`; ``still_queued`` comes from the stream."""
        latencies = sorted(self.latency)
        calls = self.thread_calls.snapshot()
        p50 = p99 = None
        if latencies:
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, (len(latencies) * 99) // 100)]
        return Statistics(
            emitted=self.emitted,
            accepted=self.accepted,
            dropped=MappingProxyType({r.value: n for r, n in self.dropped.items() if n}),
            rejected=MappingProxyType({r.value: n for r, n in self.rejected.items() if n}),
            handled=self.handled,
            failed=self.failed,
            timed_out=self.timed_out,
            aborted_in_flight=self.aborted,
            in_flight=self.in_flight,
            still_queued=still_queued,
            handler_errors=self.handler_errors,
            handler_timeouts=self.handler_timeouts,
            queue_capacity=self.capacity,
            queue_high_water=self.high_water,
            latency_p50=p50,
            latency_p99=p99,
            latency_samples=len(latencies),
            abandoned_calls=calls.total,
            abandoned_in_flight=calls.in_flight,
            refused_calls=calls.refused,
        )


# -- drop reports: the EVENTS_DROPPED events ---------------------------------------------


async def report_drops(queue: EventQueue, interval: float) -> None:
    """Report drops at most once per ``interval`` seconds; the reports are never dropped."""
    while True:
        signal = queue.drop_signal
        assert signal is not None
        await signal.wait()
        queue.drop_signal = anyio.Event()
        await report_drops_now(queue)
        # Rate limit: drops during this pause are gathered into the next report.
        await anyio.sleep(interval)


async def report_drops_now(queue: EventQueue) -> None:
    """Log and emit one ``EVENTS_DROPPED`` for the drops not reported yet, if any.

    Payload: ``count`` (drops since the last report), ``by_reason`` (reason -> count,
    see :class:`DropReason`) and ``total`` (all drops since start).
    """
    by_reason = queue.take_unreported_drops()
    if not by_reason:
        return
    count = sum(by_reason.values())
    total = sum(queue.dropped.values())
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(by_reason.items()))
    log.warning(
        "Dropped {} event(s) since the last report ({}); {} dropped in all",
        count,
        reasons,
        total,
    )
    report = Event.create(
        EventType.EVENTS_DROPPED,
        {"count": count, "by_reason": by_reason, "total": total},
    )
    await queue.emit_protected(report)
