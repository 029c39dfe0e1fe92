"""Calling user code, the one way handlers and jobs both use.

User code is async (awaited on the loop) or sync (run in a worker thread, so that it
never blocks the loop). Either way:

* a stray ``asyncio.CancelledError`` (one that no cancel scope of ours delivered) is
  the call's failure, not a cancellation of the worker that made it;
* a sync call cannot be interrupted: on cancellation (timeout, shutdown) it is
  abandoned and left to finish, and counted while it runs (:func:`running_threads`),
  so that the command line can exit without waiting for it;
* threads are bounded even when calls hang: sync calls share
  :data:`MAX_USER_THREADS` slots per event loop, and an abandoned call keeps its slot
  until its thread really returns. A callable with :data:`MAX_ABANDONED_PER_CALLABLE`
  abandoned calls still running (or any, once :data:`MAX_ABANDONED` are running in
  all) is not started again until one returns: the call is refused at once with
  :class:`CallRefusedError`, a failure of the handler or job, counted
  (:func:`abandoned_calls`). So one hung callable holds at most a few threads, and
  callables that do return keep the rest;
* a sync callable that returns an awaitable (``lambda e: notify(e)``) has it awaited
  on the loop, as its author meant, rather than dropped unawaited (asyncio) or
  refused by the thread runner (trio).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import math
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from inspect import CO_COROUTINE
from types import FunctionType
from typing import Any, NoReturn, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._exceptions import CallRefusedError, StrayCancellationError, UserBaseExceptionError

__all__ = [
    "MAX_ABANDONED",
    "MAX_ABANDONED_PER_CALLABLE",
    "MAX_USER_THREADS",
    "AbandonedCalls",
    "CallTally",
    "abandoned_calls",
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

#: Worker threads that sync user calls (handlers and jobs) may hold at once, per event
#: loop, abandoned ones included; further calls wait for a slot. The same number as
#: anyio's default thread limiter, but a limiter of its own, so that hung user code
#: never holds the threads anyio (and the job store) use for everything else.
MAX_USER_THREADS = 40
#: Abandoned calls of one callable still running past which it is refused at once:
#: enough to ride out a few slow calls, few enough that one hung callable cannot
#: take the slots of the others.
MAX_ABANDONED_PER_CALLABLE = 4
#: Abandoned calls, all callables together, past which any callable that has one
#: still running is refused: keeps ``MAX_USER_THREADS - MAX_ABANDONED`` slots for
#: callables that return, however many hang.
MAX_ABANDONED = 32

_lock = threading.Lock()
_running = 0


@dataclass(frozen=True, slots=True)
class AbandonedCalls:
    """Sync calls abandoned on cancellation (a timeout, shutdown) and what followed."""

    total: int
    """Calls abandoned, ever."""
    in_flight: int
    """Abandoned calls whose thread has not returned yet (each holds a slot)."""
    refused: int
    """Calls refused at once, without a thread, because their callable had too many
    abandoned calls still running."""


class CallTally:
    """Counts of abandoned and refused calls, for one owner (a scheduler's pipeline).

    Updated under this module's lock, from the loop and from worker threads.
    """

    __slots__ = ("abandoned", "in_flight", "refused")

    def __init__(self) -> None:
        self.abandoned = 0
        self.in_flight = 0
        self.refused = 0

    def snapshot(self) -> AbandonedCalls:
        with _lock:
            return AbandonedCalls(self.abandoned, self.in_flight, self.refused)


# Process-wide counts (abandoned_calls()) and abandoned calls in flight per callable.
_everywhere = CallTally()
_abandoned_by_key: dict[object, int] = {}


class _Slots:
    """One event loop's thread slots and a way to release one from another thread."""

    __slots__ = ("limiter", "post", "unlimited")

    def __init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(MAX_USER_THREADS)
        # anyio's runner still wants a limiter: one that never makes anybody wait.
        self.unlimited = anyio.CapacityLimiter(math.inf)
        # Releasing must happen on the loop thread, and the thread that finishes an
        # abandoned call must not block on a loop that may have stopped meanwhile.
        self.post: Callable[[Callable[[], object]], object]
        try:
            self.post = asyncio.get_running_loop().call_soon_threadsafe
        except RuntimeError:  # no asyncio loop: trio
            import trio

            self.post = trio.lowlevel.current_trio_token().run_sync_soon


_slots: anyio.lowlevel.RunVar[_Slots] = anyio.lowlevel.RunVar("eventsched_user_threads")


def _current_slots() -> _Slots:
    try:
        return _slots.get()
    except LookupError:
        slots = _Slots()
        _slots.set(slots)
        return slots


# Where a sync call is; changed under _lock only, so that exactly one of the caller
# and the thread frees its slot.
_WAITING = 0  # not started in its thread yet
_RUNNING = 1
_FINISHED = 2  # returned or raised, its caller still waiting: the caller frees the slot
_ABANDONED = 3  # the caller was cancelled while it ran: the thread frees the slot
_DROPPED = 4  # the caller was cancelled before it started: it never will


class _ThreadCall:
    """One sync call: whose it is, and where it is (see _WAITING and the others)."""

    __slots__ = ("key", "slots", "state", "tally")

    def __init__(self, key: object, slots: _Slots, tally: CallTally | None) -> None:
        self.key = key
        self.slots = slots
        self.tally = tally
        self.state = _WAITING


def is_async(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine to await (else: run it in a thread)."""
    # An ``async def`` function, told from its code's flag: what inspect finds too, at a
    # tenth of the cost (50,000 add_job calls ask this of the same function). Anything
    # else (a sync function, a partial, a callable object) takes inspect's way.
    if type(func) is FunctionType and func.__code__.co_flags & CO_COROUTINE:
        return True
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


async def call_user(
    func: Callable[..., Any],
    *args: Any,
    in_thread: bool,
    key: object = None,
    tally: CallTally | None = None,
) -> Any:
    """Call ``func(*args)`` once, awaited on the loop or in a worker thread.

    Returns what it returned; raises what it raised, a stray CancelledError turned
    into :class:`StrayCancellationError`. Cancelling the caller abandons a thread.
    ``key`` is the user's callable the limits of abandoned calls apply to (default:
    ``func``, partials unwrapped); ``tally`` also counts this owner's abandoned calls.

    :raises CallRefusedError: ``key`` has too many abandoned calls still running
    """
    try:
        if not in_thread:
            return await func(*args)
        result = await _in_thread(func, args, key, tally)
        if inspect.isawaitable(result):
            return await result
        return result  # noqa: TRY300 (the except clause is for the call, not the return)
    except BaseException as exc:
        reraise_as_failure(exc)


async def _in_thread(
    func: Callable[..., Any], args: tuple[Any, ...], key: object, tally: CallTally | None
) -> Any:
    if key is None:
        key = func
        while isinstance(key, functools.partial):
            key = key.func
    _admit(key, tally)
    slots = _current_slots()
    call = _ThreadCall(key, slots, tally)
    try:
        # Without waiting when a slot is free: the waiting form checkpoints, a trip
        # through the loop that the thread hop below makes anyway.
        slots.limiter.acquire_on_behalf_of_nowait(call)
    except anyio.WouldBlock:
        await slots.limiter.acquire_on_behalf_of(call)
    try:
        # Boxed, so that trio's thread runner does not refuse a coroutine as the result.
        (result,) = await anyio.to_thread.run_sync(
            _tracked, call, func, args, abandon_on_cancel=True, limiter=slots.unlimited
        )
    except BaseException:
        with _lock:
            if call.state == _RUNNING:  # cancelled with the thread still running
                call.state = _ABANDONED
                _abandoned_by_key[key] = _abandoned_by_key.get(key, 0) + 1
                for counts in (_everywhere, tally):
                    if counts is not None:
                        counts.abandoned += 1
                        counts.in_flight += 1
            elif call.state == _WAITING:
                # Cancelled before its thread took it up (asyncio's runner may then skip
                # it, trio's may still start it): make sure the user's code never runs.
                call.state = _DROPPED
        if call.state != _ABANDONED:
            slots.limiter.release_on_behalf_of(call)
        raise
    slots.limiter.release_on_behalf_of(call)
    return result


def _admit(key: object, tally: CallTally | None) -> None:
    """Refuse a call of ``key`` at once if too many of its calls are abandoned and running."""
    with _lock:
        mine = _abandoned_by_key.get(key, 0)
        if not mine or (
            mine < MAX_ABANDONED_PER_CALLABLE and _everywhere.in_flight < MAX_ABANDONED
        ):
            return
        for counts in (_everywhere, tally):
            if counts is not None:
                counts.refused += 1
        total = _everywhere.in_flight
    name = getattr(key, "__qualname__", None) or type(key).__qualname__
    raise CallRefusedError(
        f"{name} not called: {mine} earlier calls of it were abandoned (timed out or "
        f"cancelled) and have not returned ({total} abandoned calls in all); limits: "
        f"{MAX_ABANDONED_PER_CALLABLE} per callable, {MAX_ABANDONED} in all"
    )


def _tracked(call: _ThreadCall, func: Callable[..., T], args: tuple[Any, ...]) -> tuple[T]:
    """Call ``func(*args)`` in this (worker) thread, counted while it runs."""
    global _running
    with _lock:
        if call.state == _DROPPED:
            # Nobody waits for this result: the caller has gone.
            return (None,)  # type: ignore[return-value]
        call.state = _RUNNING
        _running += 1
    try:
        return (func(*args),)
    finally:
        with _lock:
            _running -= 1
            abandoned = call.state == _ABANDONED
            call.state = _FINISHED
            if abandoned:
                left = _abandoned_by_key[call.key] - 1
                if left:
                    _abandoned_by_key[call.key] = left
                else:
                    del _abandoned_by_key[call.key]
                for counts in (_everywhere, call.tally):
                    if counts is not None:
                        counts.in_flight -= 1
        if abandoned:
            # Its caller is gone: give the slot back on the loop thread, if the loop
            # still runs (if not, the slots went with it).
            with contextlib.suppress(Exception):
                call.slots.post(functools.partial(call.slots.limiter.release_on_behalf_of, call))


def abandoned_calls() -> AbandonedCalls:
    """Sync calls abandoned in this process (all schedulers): ever, still running, refused."""
    return _everywhere.snapshot()


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
