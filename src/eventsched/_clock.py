"""Wall clocks for schedules: the system clock, and a virtual one that follows the loop.

Triggers think in wall-clock datetimes; the scheduler task sleeps on the event loop's
clock. A :class:`Clock` is where the two meet, and it is injectable so that schedules
can be tested in virtual time (see :mod:`eventsched.testing`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

import anyio

__all__ = ["DEFAULT_EPOCH", "Clock", "SystemClock", "VirtualClock"]

#: Where a :class:`VirtualClock` starts unless told otherwise: a Monday, midnight UTC.
DEFAULT_EPOCH: Final = datetime(2030, 1, 7, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock time for triggers. Called on the event loop thread only."""

    def now(self) -> datetime:
        """Return the current time as a timezone-aware datetime."""
        ...


class SystemClock:
    """The real wall clock, in UTC. The default."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """Wall time that follows the event loop's clock from a fixed epoch.

    ``now()`` is ``epoch + (anyio.current_time() - start)``, where ``start`` is the loop
    time of the first call. Under trio's ``MockClock(autojump_threshold=0)`` the loop
    clock skips ahead whenever every task is waiting, so a simulated day of schedules
    passes in a fraction of a second. On a real event loop it is a monotonic wall clock
    that starts at ``epoch``: handy for pinning trigger arithmetic in short real-time
    tests, or for pretending the process started at another time.

    :meth:`advance` makes the wall clock jump forward without the loop clock moving, as
    when a laptop wakes from sleep: the scheduler then sees its fire times as late.

    Must be called on the event loop thread (it reads the loop's clock).
    """

    __slots__ = ("_offset", "_start", "epoch")

    def __init__(self, epoch: datetime = DEFAULT_EPOCH) -> None:
        if epoch.tzinfo is None or epoch.utcoffset() is None:
            raise ValueError(f"epoch={epoch!r} must be timezone-aware (e.g. tzinfo=UTC)")
        self.epoch = epoch
        self._start: float | None = None
        self._offset = 0.0

    def now(self) -> datetime:
        loop_now = anyio.current_time()
        if self._start is None:
            self._start = loop_now
        return self.epoch + timedelta(seconds=loop_now - self._start + self._offset)

    def advance(self, seconds: float) -> None:
        """Move the wall clock forward by ``seconds`` at once (the loop clock stays)."""
        if not seconds >= 0:
            raise ValueError(f"seconds={seconds!r} must be >= 0: wall time only moves on")
        self._offset += seconds

    def __repr__(self) -> str:
        return f"VirtualClock(epoch={self.epoch.isoformat()})"
