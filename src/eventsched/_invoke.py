"""Calling user code, the one way handlers and jobs both use.

User code is async (awaited on the loop) or sync (run in a worker thread, so that it
never blocks the loop). Either way:

* a stray ``asyncio.CancelledError`` (one that no cancel scope of ours delivered) is
  the call's failure, not a cancellation of the worker that made it;
* a sync call cannot be interrupted: on cancellation (timeout, shutdown) it is
  abandoned and left to finish, and counted while it runs (:func:`running_threads`),
  so that the command line can exit without waiting for it;
* a sync callable that returns an awaitable (``lambda e: notify(e)``) has it awaited
  on the loop, as its author meant, rather than dropped unawaited (asyncio) or
  refused by the thread runner (trio).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import anyio
import anyio.to_thread

from ._exceptions import StrayCancellationError, UserBaseExceptionError

__all__ = [
    "call_user",
    "describe_error",
    "exit_hook",
    "failure_instead_of",
    "is_async",
    "reraise_as_failure",
    "running_threads",
    "stray_cancellation",
]

T = TypeVar("T")

_lock = threading.Lock()
_running = 0


def is_async(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine to await (else: run it in a thread)."""
    # Only real partials are unwrapped: following any callable ``.func`` attribute
    # never ends on a Mock, whose every attribute is another callable Mock.
    target: Any = func
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return True
    # A callable object: look at its class's __call__ (ruff's B004 is about testing
    # callability, which is not what this does).
    call = getattr(type(target), "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


async def call_user(func: Callable[..., Any], *args: Any, in_thread: bool) -> Any:
    """Call ``func(*args)`` once, awaited on the loop or in a worker thread.

    Returns what it returned; raises what it raised, a stray CancelledError turned
    into :class:`StrayCancellationError`. Cancelling the caller abandons a thread.
    """
    try:
        if not in_thread:
            return await func(*args)
        # Boxed, so that trio's thread runner does not refuse a coroutine as the result.
        (result,) = await anyio.to_thread.run_sync(_tracked, func, args, abandon_on_cancel=True)
        if inspect.isawaitable(result):
            return await result
        return result  # noqa: TRY300 (the except clause is for the call, not the return)
    except BaseException as exc:
        reraise_as_failure(exc)


def _tracked(func: Callable[..., T], args: tuple[Any, ...]) -> tuple[T]:
    """Call ``func(*args)`` in this (worker) thread, counted while it runs."""
    global _running
    with _lock:
        _running += 1
    try:
        return (func(*args),)
    finally:
        with _lock:
            _running -= 1


def running_threads() -> int:
    """Sync handler and job calls running in worker threads now, abandoned ones included."""
    return _running


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


#: Set by a running scheduler (its tasks inherit it): told of a SystemExit or
#: KeyboardInterrupt that user code raised, so that it stops and raises it again.
exit_hook: ContextVar[Callable[[BaseException], None] | None] = ContextVar(
    "eventsched_exit_hook", default=None
)


def failure_instead_of(exc: BaseException) -> Exception | None:
    """What to count as the call's failure instead of ``exc``; None: pass ``exc`` on.

    Only a cancellation that a cancel scope of ours delivered is passed on. A stray
    CancelledError becomes :class:`StrayCancellationError`; any other BaseException
    (SystemExit, KeyboardInterrupt, GeneratorExit, a user's own) becomes
    :class:`UserBaseExceptionError`, and the first two also reach :data:`exit_hook`.
    """
    if isinstance(exc, Exception):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return stray_cancellation(exc)  # on trio always stray: nothing there raises it
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, cancelled):
        return None
    if isinstance(exc, BaseExceptionGroup) and exc.split(cancelled)[0] is not None:
        return None  # a cancellation of ours, seen through the user's task group
    failure = UserBaseExceptionError(f"user code raised {describe_error(exc)}")
    failure.__cause__ = exc
    if isinstance(exc, SystemExit | KeyboardInterrupt):
        hook = exit_hook.get()
        if hook is not None:
            hook(exc)
    return failure


def reraise_as_failure(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, or the failure to count in its place (see failure_instead_of).

    For code inside a timeout scope: the scope still sees a cancellation of its own,
    while a stray one (or a SystemExit) arrives as an Exception, the caller's failure.
    """
    failure = failure_instead_of(exc)
    if failure is None or failure is exc:
        raise exc
    raise failure from exc


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for a log line or an event, whatever the exception's methods do.

    User exceptions may have a ``__str__`` that raises or returns something huge; this
    never raises, and cuts the message to 500 characters.
    """
    kind = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception as error:  # a broken __str__ is the user's bug, not a crash of ours
        text = f"<str() raised {type(error).__qualname__}>"
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    if len(text) > 500:
        text = text[:497] + "..."
    return f"{kind}: {text}" if text else kind
