"""Alarms: runs whose fire times fall in the same short slice of wall time share a timer.

A run is handed to its lane a few milliseconds early and waits there for its fire
time. One timer per run was the largest cost left on trio, where a timed sleep is a
cancel scope whose deadline ends it with a ``Cancelled`` exception (~40 us of CPU, three
times asyncio's ``call_later``). With 10,000 jobs a second, fire times are a tenth of a
millisecond apart, so the slices of :data:`QUANTUM` seconds of wall time each hold
several: the first run of a slice sleeps until the slice ends, the others park
(:class:`~._parking.Parking`, a few microseconds) and are woken with it.

The price: a run starts up to :data:`QUANTUM` after its fire time (half that on
average), never before it. The run itself checks the clock again once woken, so a
sleeper woken early (cancelled, or a coarse loop clock) costs another wait, not an
early start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import anyio

from .._clock import Clock
from ._parking import Parking, on_trio

__all__ = ["QUANTUM", "Alarms"]

#: Seconds of wall time whose fire times share one timer (and the most a run can be
#: delayed past its fire time by sharing it).
QUANTUM: Final = 0.0005
_SLICE: Final = timedelta(seconds=QUANTUM)
_POSIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class _Alarm:
    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[Parking] = []


class Alarms:
    """The timers of the runs waiting for their fire times, one per slice of wall time."""

    __slots__ = ("_alarms", "_clock", "_trio", "timers")

    def __init__(self, clock: Callable[[], Clock]) -> None:
        self._clock = clock
        self._alarms: dict[int, _Alarm] = {}
        self._trio: bool | None = None  # whether on trio: asked at the first wait
        #: Timers started so far (for tests: fewer than the runs that waited).
        self.timers = 0

    def __len__(self) -> int:
        """Timers running now (for tests)."""
        return len(self._alarms)

    async def wait_for(self, fire_time: datetime) -> None:
        """Return at the end of the slice of wall time that ``fire_time`` falls in.

        Slices end on multiples of :data:`QUANTUM` (POSIX time) and include their end,
        so a fire time on a whole millisecond, as most are, is not delayed at all.

        May return earlier when cancelled (it raises then) or when the task sleeping
        for the slice was cancelled: callers check the clock and wait again.
        """
        # Exact (timedelta arithmetic): a float division could put a fire time that
        # is on a boundary into the next slice.
        key = -(-(fire_time - _POSIX_EPOCH) // _SLICE)
        alarm = self._alarms.get(key)
        if alarm is not None:
            trio = self._trio
            if trio is None:
                trio = self._trio = on_trio()
            parking = Parking(trio)
            alarm.waiters.append(parking)
            await parking.wait()
            return
        alarm = self._alarms[key] = _Alarm()
        self.timers += 1
        try:
            deadline = key * QUANTUM
            clock = self._clock()
            while (ahead := deadline - clock.now().timestamp()) > 0:  # noqa: ASYNC110
                await anyio.sleep(ahead)
        finally:
            # Cancelled or not, the parked runs are woken: each checks the clock, and
            # the first still early sleeps for the slice in turn.
            if self._alarms.get(key) is alarm:
                del self._alarms[key]
            for parking in alarm.waiters:
                parking.wake()
