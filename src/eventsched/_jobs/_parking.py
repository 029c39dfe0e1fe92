"""Parking: one task waits until another wakes it, at the backend's own lowest cost.
Also the loop's clock, read the same way (:func:`loop_clock`).

An :class:`anyio.Event` costs ~5 us per wait and wake in anyio's dispatch (the event
object, the backend lookups), a fifth of a trivial job run; the job scheduler parks a
task once or twice per run (:mod:`._lanes`, :mod:`._alarms`). A :class:`Parking` is an
asyncio future, or on trio the task itself rescheduled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sniffio

__all__ = ["Parking", "loop_clock", "on_trio"]


def _trio_lowlevel() -> Any:
    # Imported on trio only: importing eventsched must not import trio.
    import trio.lowlevel

    return trio.lowlevel


def on_trio() -> bool:
    """Whether the current task runs on trio (else asyncio). Asked once per loop by
    whoever makes parkings (~0.4 us a question, two parkings a run)."""
    return sniffio.current_async_library() == "trio"


def loop_clock(trio: bool) -> Callable[[], float]:
    """The running loop's clock, the one ``anyio.current_time()`` reads, as a function
    that reads it without anyio finding the backend each time (76 / 154 ns a read on
    asyncio / trio against 512 / 628; a job run reads it twice). Valid while that loop
    runs."""
    if trio:
        import trio as trio_module  # on trio only: importing eventsched must not import trio

        return trio_module.current_time
    return asyncio.get_running_loop().time


class Parking:
    """Where the current task waits to be woken, once.

    Made by the task that will wait. Cancellation works as for any await (anyio
    cancels the future; trio aborts the wait); a wake after that is ignored, so the
    waker must not count on it having been seen: the woken side checks what it was
    handed.
    """

    __slots__ = ("_future", "_lowlevel", "_task")

    def __init__(self, trio: bool) -> None:
        """``trio``: whether the loop is trio's (:func:`on_trio`, asked once per loop)."""
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
