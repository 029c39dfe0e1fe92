"""Sync handlers in batches: one long-lived thread per handler task.

A thread hop per event (``anyio.to_thread.run_sync``) costs far more than a trivial
sync handler. So a handler task hands a *batch* (the events already waiting in the
queue for the same lone sync handler, up to :data:`BATCH_MAX`) to a thread of its own
that calls the handler on each in turn and wakes the task once, at the end. What
:mod:`._invoke` promises for one call holds for each call of a batch:

* each call has its own timeout, counted from its own start: the task wakes when the
  call in progress would pass it, and if it has, abandons that call (the thread is
  left to finish it, holding its slot, and then ends); the events after it go to a
  fresh thread;
* a batch holds one of the :data:`MAX_USER_THREADS` slots while it runs (an abandoned
  call keeps it until it returns), and the per-callable and total caps on abandoned
  calls refuse a call at once (:class:`CallRefusedError`) as they do for single calls;
* on cancellation (shutdown past its grace period) the call in progress is abandoned
  and no further event of the batch starts;
* ``current_event()`` in the handler is the event it was called with, and what it
  emits inherits that event's correlation;
* a call that returns an awaitable ends its batch there, and the awaitable is awaited
  on the loop (within what is left of the call's timeout) before the next event.

The thread is not one of anyio's worker threads: ``anyio.from_thread`` calls in a
handler need an explicit ``token=`` (docs/guide.md, "Sync calls and threads").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import queue as _queuemod
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import anyio

from . import _invoke
from ._events import Event, HandlingSlot, _handling
from ._invoke import CallTally, _admit, _current_slots, _lock, _Slots

__all__ = ["BATCH_MAX", "Batch", "BatchThread"]

#: Events handed to a sync handler's thread at once, at most: only those already
#: waiting in the queue are taken, so a batch never waits to fill. Events of a batch
#: not started when shutdown cancels the task are counted ``aborted_in_flight``.
BATCH_MAX: Final = 64

_monotonic = time.monotonic
_copy_context = contextvars.copy_context
_isawaitable = inspect.isawaitable

# Where a batch is; changed under _invoke._lock only, so that exactly one of the task
# and the thread frees the batch's slot.
_RUNNING: Final = 0  # its thread is on it (or about to be)
_FINISHED: Final = 1  # ended by its thread: the task frees the slot
_ABANDONED: Final = 2  # the task gave up on the call in progress: the thread frees the slot
_STOPPED: Final = 3  # the task gave up between calls: no call runs any more, the task frees


class Batch:
    """Events for one sync handler, and how far its thread has gone with them."""

    __slots__ = (
        "calling",
        "done",
        "events",
        "func",
        "key",
        "outcomes",
        "started",
        "state",
        "tally",
    )

    def __init__(
        self, func: Callable[[Event], Any], events: list[Event], tally: CallTally | None
    ) -> None:
        self.func = func
        self.key: object = func
        self.events = events
        self.tally = tally
        #: One per finished call: None, the exception it raised, or the awaitable it
        #: returned (which ends the batch). Appended by the thread under the lock.
        self.outcomes: list[Any] = []
        self.state = _RUNNING
        #: Whether the call of ``events[len(outcomes)]`` is running now.
        self.calling = False
        #: When the current call started (or the previous one ended), monotonic.
        self.started = _monotonic()
        self.done = anyio.Event()


class BatchThread:
    """A handler task's thread for sync handlers: runs one batch at a time."""

    __slots__ = ("_inbox", "_slots", "_thread")

    def __init__(self) -> None:
        self._slots: _Slots = _current_slots()
        self._inbox: _queuemod.SimpleQueue[Batch | None] = _queuemod.SimpleQueue()
        # A copy of the task's context, so that the handler sees what the task sees
        # (its own handling slot is set in it below).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(_serve, self._inbox, self._slots),
            name="eventsched-sync-handler",
            daemon=True,  # a hung call must never keep the process from exiting
        )
        self._thread.start()

    def close(self) -> None:
        """Let the thread end once it is idle (at once if it is)."""
        self._inbox.put(None)

    async def run(self, batch: Batch, timeout: float | None) -> bool:  # noqa: ASYNC109 (per call, not for the whole run)
        """Run ``batch`` and wait for it; False if a call was abandoned or never ran.

        On False, ``len(batch.outcomes)`` events were handled, the next one timed out
        (abandoned if it had started) and the rest never started; this thread has
        ended (or will, when the abandoned call returns): use a new one.

        :raises CallRefusedError: the handler has too many abandoned calls running
        """
        _admit(batch.key, batch.tally)
        slots = self._slots
        try:
            slots.limiter.acquire_on_behalf_of_nowait(batch)
        except anyio.WouldBlock:
            # As for a single call, waiting for a slot counts toward the timeout.
            acquired = False
            with anyio.move_on_after(timeout):
                await slots.limiter.acquire_on_behalf_of(batch)
                acquired = True
            if not acquired:
                batch.state = _STOPPED
                return False
        batch.started = _monotonic()
        self._inbox.put(batch)
        try:
            if timeout is None:
                await batch.done.wait()
            else:
                while not batch.done.is_set():
                    left = _give_up(batch, slots, timeout)
                    if left is None:
                        return False
                    with anyio.move_on_after(left):
                        await batch.done.wait()
        except BaseException:
            if _give_up(batch, slots) is not None:
                slots.limiter.release_on_behalf_of(batch)  # it had finished
            raise
        slots.limiter.release_on_behalf_of(batch)
        return True


def _give_up(batch: Batch, slots: _Slots, timeout: float | None = None) -> float | None:
    """Give up on the call in progress: abandon it (or stop the batch between calls).

    With ``timeout``, only if that call has run that long. None: given up; else the
    seconds it has left (inf: the batch has finished, its wake-up is on its way).
    """
    with _lock:
        # All under the lock: the thread may move on to another call at any moment.
        if batch.state != _RUNNING:
            return math.inf
        if timeout is not None:
            left = batch.started + timeout - _monotonic()
            if left > 0:
                return left
        if batch.calling:
            batch.state = _ABANDONED
            key = batch.key
            _invoke._abandoned_by_key[key] = _invoke._abandoned_by_key.get(key, 0) + 1
            for counts in (_invoke._everywhere, batch.tally):
                if counts is not None:
                    counts.abandoned += 1
                    counts.in_flight += 1
            return None
        batch.state = _STOPPED
    slots.limiter.release_on_behalf_of(batch)
    return None


def _serve(inbox: _queuemod.SimpleQueue[Batch | None], slots: _Slots) -> None:
    slot = HandlingSlot()
    _handling.set(slot)
    while (batch := inbox.get()) is not None:
        if not _run_batch(batch, slot, slots):
            return  # a call of it was abandoned: this thread is done
        slot.event = None


def _run_batch(batch: Batch, slot: HandlingSlot, slots: _Slots) -> bool:
    """Call the handler on each event; False if the task abandoned a call."""
    func = batch.func
    outcomes = batch.outcomes
    lock = _lock
    for event in batch.events:
        with lock:
            if batch.state != _RUNNING:
                return True  # stopped between calls: nothing of it runs any more
            batch.calling = True
            batch.started = _monotonic()
            _invoke._running += 1
        slot.event = event
        outcome: Any = None
        try:
            # In a copy of the thread's context, as anyio runs each call: what one call
            # sets in a ContextVar is not seen by the next.
            result = _copy_context().run(func, event)
            if _isawaitable(result):
                outcome = result
        except BaseException as exc:  # the task decides what each counts as
            outcome = exc
        with lock:
            _invoke._running -= 1
            batch.calling = False
            if batch.state == _ABANDONED:
                _returned(batch)
                abandoned = True
            else:
                abandoned = False
                outcomes.append(outcome)
                batch.started = _monotonic()
                if outcome is not None and not isinstance(outcome, BaseException):
                    break  # an awaitable: the task awaits it before the next event
        if abandoned:
            # Its task is gone: give the slot back on the loop thread.
            _post(slots, functools.partial(slots.limiter.release_on_behalf_of, batch))
            return False
    with lock:
        if batch.state != _RUNNING:
            return True
        batch.state = _FINISHED
    _post(slots, batch.done.set)
    return True


def _returned(batch: Batch) -> None:
    # An abandoned call returned (under the lock): it is no longer counted as hung.
    key = batch.key
    left = _invoke._abandoned_by_key[key] - 1
    if left:
        _invoke._abandoned_by_key[key] = left
    else:
        del _invoke._abandoned_by_key[key]
    for counts in (_invoke._everywhere, batch.tally):
        if counts is not None:
            counts.in_flight -= 1


def _post(slots: _Slots, callback: Callable[[], object]) -> None:
    # If the loop has ended, nobody waits any more (and the slots went with it).
    with contextlib.suppress(Exception):
        slots.post(callback)
