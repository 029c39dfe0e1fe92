"""Telling a cancellation of this task from a stray ``CancelledError`` (asyncio only)."""

from __future__ import annotations

import asyncio
from typing import NoReturn

from ._exceptions import StrayCancellationError


def stray_cancellation(exc: BaseException) -> StrayCancellationError | None:
    """The error to count instead of ``exc`` if ``exc`` is a stray CancelledError, else None.

    Every cancellation of a task on asyncio, anyio's cancel scopes included, goes
    through ``Task.cancel()``, which raises ``Task.cancelling()`` until the scope that
    caught it calls ``uncancel()``. A ``CancelledError`` seen while that count is zero
    was raised by something else: a future or task that another task cancelled.
    """
    if not isinstance(exc, asyncio.CancelledError):
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no asyncio loop (trio): nothing on asyncio can cancel us
        task = None
    if task is not None and task.cancelling():
        return None
    stray = StrayCancellationError(
        "asyncio.CancelledError raised while nothing was cancelling this task "
        f"(an awaited future or task was cancelled elsewhere): {exc!r}"
    )
    stray.__cause__ = exc
    return stray


def reraise_as_failure(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, or, if it is a stray CancelledError, its failure in its place.

    For code inside a timeout scope: the scope still sees a cancellation of its own,
    while a stray one arrives as an Exception, the caller's failure.
    """
    stray = stray_cancellation(exc)
    if stray is None:
        raise exc
    raise stray from exc
