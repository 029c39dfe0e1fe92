"""Run lanes: long-lived tasks that carry out job runs, one run at a time each.

Spawning a task per run was the largest single cost of a run: anyio (4.16) gives every
task it spawns a handle, a cancel scope and an event of its own, ~35-40 us per task on
either backend, more than the rest of a trivial run put together. A lane is a task
that, once its run is done, waits to be handed the next one. It waits on the backend's
own cheapest primitive (:class:`~._parking.Parking`). A run still never waits for
another: when no lane is idle, a new one is spawned, so a slow job only ever holds its
own lane. Idle lanes beyond :data:`MAX_IDLE` end, so a burst of long runs does not
leave thousands of tasks behind.

What a lane does not give that a task per run did: a fresh copy of the context per
run. The job scheduler sets the context it relies on (``current_event``) per run; a
``ContextVar`` a job sets and never resets is seen by later runs on the same lane
(docs/guide.md says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from anyio.abc import TaskGroup

from ._entry import Entry
from ._parking import Parking, loop_clock, on_trio

__all__ = ["MAX_IDLE", "Lanes"]

#: Idle lanes kept for the next runs; a lane finishing a run beyond these ends. 10,000
#: runs a second keep ~150 lanes busy at most while the loop keeps up; a burst beyond
#: this (runs piled up while the loop was late) spawns lanes that end after it. Not
#: more: an idle lane is ~25 objects the garbage collector tracks (a task, its
#: coroutines, its parking), traversed by every full collection for as long as it is
#: kept; 1,024 of them were more such objects than 10,000 jobs' entries and triggers.
MAX_IDLE: Final = 256

Run = Callable[[Entry, datetime], Awaitable[None]]


class _Lane:
    """An idle lane's mailbox: the run it is handed, and where it waits."""

    __slots__ = ("parking", "run")

    def __init__(self, parking: Parking) -> None:
        self.run: tuple[Entry, datetime] | None = None
        self.parking = parking


class Lanes:
    """Hands runs to idle lanes, spawning a lane in ``group`` when none is idle.

    ``run(job, fire_time)`` carries out one run and accounts for it whatever happens
    (a run cancelled before its fire time included); ``lost(job, fire_time)`` accounts
    for a run handed to a lane that was cancelled before it could begin it.
    """

    __slots__ = ("_closed", "_group", "_idle", "_lost", "_run", "_trio", "loop_time", "spawned")

    def __init__(self, group: TaskGroup, run: Run, lost: Callable[[Entry, datetime], None]) -> None:
        self._group = group
        self._run = run
        self._lost = lost
        self._idle: list[_Lane] = []
        self._closed = False
        self._trio = on_trio()  # made on the loop its lanes run on
        #: That loop's clock, for the runs' durations (see :func:`~._parking.loop_clock`).
        self.loop_time = loop_clock(self._trio)
        #: Lane tasks spawned so far (for tests: at most the most runs ever at once).
        self.spawned = 0

    @property
    def group(self) -> TaskGroup:
        """The task group the lanes run in."""
        return self._group

    @property
    def idle(self) -> int:
        """Lanes waiting for a run (for tests)."""
        return len(self._idle)

    def submit(self, job: Entry, fire_time: datetime) -> None:
        """Start a run on an idle lane, or on a new one."""
        if self._idle:
            lane = self._idle.pop()
            lane.run = (job, fire_time)
            lane.parking.wake()
        else:
            self.spawned += 1
            self._group.start_soon(self._lane, job, fire_time, name="eventsched job run")

    def close(self) -> None:
        """No more runs: idle lanes end now, busy ones after their run."""
        self._closed = True
        idle, self._idle = self._idle, []
        for lane in idle:
            lane.parking.wake()

    async def _lane(self, job: Entry, fire_time: datetime) -> None:
        run = self._run
        while True:
            await run(job, fire_time)
            if self._closed or len(self._idle) >= MAX_IDLE:
                return
            lane = _Lane(Parking(self._trio))
            self._idle.append(lane)
            try:
                await lane.parking.wait()
            except BaseException:
                # Cancelled while idle (shutdown): a run handed over meanwhile never
                # began, and is accounted for as such.
                if lane.run is not None:
                    self._lost(*lane.run)
                elif lane in self._idle:
                    self._idle.remove(lane)
                raise
            if lane.run is None:
                return  # closed
            job, fire_time = lane.run
