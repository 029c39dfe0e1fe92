"""Parking: one task waits until another wakes it, at the backend's own lowest cost.

An :class:`anyio.Event` costs ~5 us per wait and wake in anyio's dispatch (the event
object, the backend lookups), a fifth of a trivial job run; the job scheduler parks a
task once or twice per run (:mod:`._lanes`, :mod:`._alarms`). A :class:`Parking` is an
asyncio future, or on trio the task itself rescheduled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sniffio

__all__ = ["Parking", "on_trio"]


def _trio_lowlevel() -> Any:
    # Imported on trio only: importing eventsched must not import trio.
    import trio.lowlevel

    return trio.lowlevel


def on_trio() -> bool:
    """Whether the current task runs on trio (else asyncio)."""
    return sniffio.current_async_library() == "trio"


class Parking:
    """Where the current task waits to be woken, once.

    Made by the task that will wait. Cancellation works as for any await (anyio
    cancels the future; trio aborts the wait); a wake after that is ignored, so the
    waker must not count on it having been seen: the woken side checks what it was
    handed.
    """

    __slots__ = ("_future", "_lowlevel", "_task")

    def __init__(self, trio: bool | None = None) -> None:
        """``trio``: whether the loop is trio's, when the maker knows (:func:`on_trio`,
        asked once per loop: ~0.4 us a parking, two parkings a run); None: asked now."""
        if trio is None:
            trio = on_trio()
        if trio:
            self._lowlevel = _trio_lowlevel()
            self._task = self._lowlevel.current_task()
            self._future: asyncio.Future[None] | None = None
        else:
            self._lowlevel = self._task = None
            self._future = asyncio.get_running_loop().create_future()

    async def wait(self) -> None:
        if self._future is not None:
            await self._future
        else:
            await self._lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, raise_cancel: Any) -> Any:
        self._task = None  # cancelled: nothing may reschedule it now
        return self._lowlevel.Abort.SUCCEEDED

    def wake(self) -> None:
        """Wake the task, unless it was woken or cancelled already."""
        future = self._future
        if future is not None:
            if not future.done():
                future.set_result(None)
        elif self._task is not None:
            task, self._task = self._task, None
            self._lowlevel.reschedule(task)
