"""The event methods of :class:`~eventsched.EventScheduler`: handlers, emitting, accounting.

Written out in a mixin of their own, as the job methods are (``_jobs/_facade.py``), so
that the scheduler's class stays a thin facade and "go to definition" on
``scheduler.emit`` lands on the signature and its documentation. ``emit`` is the hot
path: it reads three attributes and calls the one admission (:func:`admit`), the
queue's ``offer`` and, every :data:`CHECKPOINT_EVERY` emits, a checkpoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, overload

import anyio
import anyio.from_thread
import anyio.lowlevel

from .._admission import admit
from .._events import Event, EventTypeLike, make_event
from .._exceptions import InvalidEventError, QueueFullError
from .._lifecycle import Lifecycle, State
from ._queue import EventQueue
from ._routing import HandlerFunc, HandlerRegistry
from ._stats import Statistics
from ._worker import CHECKPOINT_EVERY

__all__ = ["PipelineMethods"]

F = TypeVar("F", bound=HandlerFunc)

# Producers yield every CHECKPOINT_EVERY emits.
_EMIT_BATCH: Final = CHECKPOINT_EVERY


class PipelineMethods:
    """Mixin: ``on``, ``off``, ``emit``, ``emit_nowait`` and ``statistics``, for
    EventScheduler, whose constructor sets the attributes below."""

    max_event_bytes: int
    _queue: EventQueue
    _registry: HandlerRegistry
    _handler_timeout: float | None
    _life: Lifecycle

    # -- handlers ----------------------------------------------------------------------

    @overload
    def on(
        self, event_type: EventTypeLike, handler: None = None, *, timeout: float | None = None
    ) -> Callable[[F], F]: ...
    @overload
    def on(self, event_type: EventTypeLike, handler: F, *, timeout: float | None = None) -> F: ...

    def on(
        self,
        event_type: EventTypeLike,
        handler: F | None = None,
        *,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Subscribe ``handler`` to ``event_type`` (``"*"`` for every event).

        As a decorator: ``@scheduler.on(EventType.JOB_FAILED)``; or directly:
        ``scheduler.on("order_placed", handle_order)``. Async handlers run in the
        handler tasks; sync ones in a worker thread. ``timeout`` (seconds) overrides the
        scheduler's ``handler_timeout``; a handler past it is cancelled and the event
        counts as timed out.
        """
        effective = timeout if timeout is not None else self._handler_timeout

        def register(func: F) -> F:
            self._registry.add(event_type, func, effective)
            return func

        if handler is not None:
            return register(handler)
        return register

    def off(self, event_type: EventTypeLike, handler: HandlerFunc) -> bool:
        """Unsubscribe ``handler`` from ``event_type``; return whether it was subscribed."""
        return self._registry.remove(event_type, handler)

    def has_handlers(self, event_type: EventTypeLike) -> bool:
        """Whether an event of ``event_type`` would reach a handler (its own or ``"*"``).

        The job scheduler builds a ``JOB_*`` event only when this says yes; code of
        yours can skip building costly events the same way.
        """
        return bool(self._registry.routes[event_type])

    # -- emitting ----------------------------------------------------------------------

    async def emit(
        self,
        event: Event | EventTypeLike,
        data: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> bool:
        """Put an event on the queue; return whether it was accepted.

        Takes an :class:`Event`, or a type and data to create one with. Under the
        ``block`` policy this waits for room (up to ``block_timeout``); otherwise it
        never waits, and yields to the loop only every 64 calls so that a producer loop
        cannot starve the handlers. Returns False when the event was dropped or intake
        had closed (both counted).

        :raises InvalidEventError: the data is not acceptable (counted as rejected)
        :raises QueueFullError: the queue is full and the policy is ``reject``
        """
        queue = self._queue
        try:
            # The one admission (_admission.admit): every path into the queue passes here or
            # through emit_nowait (threads, sync code); jobs emit through emit().
            if event.__class__ is not Event:  # admit()'s first branch, one call saved
                event = make_event(
                    Event,
                    event,  # type: ignore[arg-type]
                    data,
                    self.max_event_bytes,
                    correlation_id,
                    causation_id,
                )
            else:
                event = admit(event, data, correlation_id, causation_id, self.max_event_bytes)
            # No thread check here (emit_nowait has one): a coroutine runs on an event
            # loop, and awaiting ours from another loop's thread is as unsupported as it
            # is for every anyio object. Other threads use emit_nowait().
            accepted = queue.offer(event)
        except (InvalidEventError, QueueFullError) as error:
            if isinstance(error, InvalidEventError):
                queue.count_invalid(error)
            # A refused emit counts toward the batch as well: a producer that catches
            # the error and goes on would otherwise never yield to the handlers.
            emits = queue.unyielded_emits + 1
            if emits == _EMIT_BATCH:
                queue.unyielded_emits = 0
                await anyio.lowlevel.checkpoint()
            else:
                queue.unyielded_emits = emits
            raise
        if accepted is None:
            return await queue.wait_for_room(event)
        # Accepted emits never yield (that is the speed of send_nowait), so a producer
        # loop would starve every other task: yield every CHECKPOINT_EVERY emits. The
        # count restarts at each yield rather than growing: ints up to 256 are cached, so
        # counting allocates nothing (a growing count allocated an int per emit).
        emits = queue.unyielded_emits + 1
        if emits == _EMIT_BATCH:
            queue.unyielded_emits = 0
            await anyio.lowlevel.checkpoint()
        else:
            queue.unyielded_emits = emits
        return accepted

    def emit_nowait(
        self,
        event: Event | EventTypeLike,
        data: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> bool:
        """Like :meth:`emit`, but never waits: for sync code and other threads.

        On the event loop thread under ``block`` a full queue means a drop (counted as
        ``queue_full``), since sync code cannot wait. From any other thread (a sync
        handler, a sync job, a thread of your own) the event is handed to the loop
        thread, and under ``block`` that thread waits for room.
        """
        try:
            event = admit(event, data, correlation_id, causation_id, self.max_event_bytes)
        except InvalidEventError as error:
            self._queue.count_invalid(error)
            raise
        return self._queue.emit_nowait(event)

    def _offer_job_event(self, event: Event) -> bool:
        # The job scheduler's own events (an admitted Event, on the loop thread): see
        # EventQueue.offer_job_event for the policy.
        return self._queue.offer_job_event(event)

    def statistics(self) -> Statistics:
        """A consistent snapshot of the accounting (see :class:`Statistics`).

        Safe from any thread: from another thread, while the event loop runs, the
        snapshot is taken on the loop thread (the call waits for it), since counters
        read from elsewhere could be caught halfway through one of its updates.
        """
        queue = self._queue
        token = queue.token
        if (
            token is not None
            and not self._life.is_(State.STOPPED)  # stopped: nothing changes
            and threading.get_ident() != queue.loop_thread
        ):
            with contextlib.suppress(anyio.RunFinishedError):
                return anyio.from_thread.run_sync(queue.statistics, token=token)
        return queue.statistics()
