"""The queue: one bounded memory object stream, overflow at the send call, waiting emitters.

* Emitting checks the queue's length (a figure the ledger keeps anyway) and then calls
  ``send_nowait``. anyio's ``send()`` always passes through the event loop, which costs
  more than the whole rest of the trip; a full queue is where the overflow policy
  applies, so overflow is explicit at the send call and counted.
* Before the queue opens and once intake has closed, ``send_nowait`` is a stub that
  raises ``ClosedResourceError``: the hot path needs no state check of its own, and
  the state itself lives in one :class:`~eventsched._lifecycle.Lifecycle`.
* Emitters that must wait for room (policy ``block``, and our own reports) queue up
  here; a worker that frees a slot moves the first waiter's event into the buffer
  itself, before any other task runs. So waiting emitters are served in order, cannot
  be starved by ``send_nowait`` callers, and know for certain whether their event got in.
* The stream holds one slot more than ``queue_size``: it is reserved for the one
  ``SHUTDOWN_REQUESTED`` of the scheduler's life, which therefore always gets in.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Final, NoReturn

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio import ClosedResourceError, EndOfStream, WouldBlock
from anyio.streams.memory import MemoryObjectReceiveStream

from .._events import Event, EventType
from .._exceptions import QueueFullError
from .._lifecycle import Lifecycle, State
from ._ledger import Ledger, log
from ._stats import DropReason, OverflowPolicy, RejectReason, Statistics

__all__ = ["PROTECTED", "EventQueue"]

_get_ident = threading.get_ident

# Events the runtime emits about itself: never dropped by overflow (they wait for room
# instead) and never evicted by ``drop_oldest``.
PROTECTED: Final = frozenset({EventType.EVENTS_DROPPED, EventType.SHUTDOWN_REQUESTED})


def _closed(event: Event) -> NoReturn:
    raise ClosedResourceError


class Waiter:
    """An emitter waiting for room; a worker places its event and wakes it."""

    __slots__ = ("event", "placed", "wake")

    def __init__(self, event: Event, wake: anyio.Event) -> None:
        self.event = event
        self.placed = False
        self.wake = wake


class EventQueue(Ledger):
    """The bounded queue, its overflow policy and its waiting emitters.

    Its life: ``created`` (refuses as ``not_running``), ``running`` (accepts),
    ``stopping`` (shutdown began: accepts while there is room, nobody waits for room),
    ``stopped`` (intake closed: refuses as ``shutting_down``; buffered events drain).
    """

    __slots__ = (
        "_block_timeout",
        "_idle",
        "_life",
        "_new_wake",
        "_policy",
        "_receive",
        "_reserved_used",
        "_send",
        "_send_nowait",
        "_token",
        "closed_refusals",
        "loop_thread",
        "receive_nowait",
        "unyielded_emits",
        "waiters",
    )

    def __init__(
        self, *, queue_size: int, overflow: OverflowPolicy, block_timeout: float | None
    ) -> None:
        super().__init__(queue_size)
        self._policy = overflow
        self._block_timeout = block_timeout
        self._life = Lifecycle("the event queue")
        # Whether the shutdown notice has taken the stream's slot beyond queue_size.
        self._reserved_used = False
        self._send_nowait: Callable[[Event], None] = _closed
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._idle: deque[anyio.Event] = deque()
        self._new_wake: Callable[[], anyio.Event] = anyio.Event
        self.waiters: deque[Waiter] = deque()
        self.closed_refusals = 0
        # Emits since the last one that yielded (EventScheduler.emit; below CHECKPOINT_EVERY).
        self.unyielded_emits = 0
        self.loop_thread: int | None = None

    # -- lifecycle (called by EventScheduler) ------------------------------------------

    def open(self) -> None:
        """Start accepting events; must be called on the event loop thread."""
        # Created here, not in __init__: a scheduler that never starts leaves no
        # unclosed stream behind (anyio warns about those).
        self._send, receive = anyio.create_memory_object_stream[Event](self.capacity + 1)
        self._receive = receive
        self.receive_nowait = receive.receive_nowait
        self.loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        self.drop_signal = anyio.Event()
        # anyio.Event() looks the backend up on every call; the backend's own Event
        # class, taken once here on the loop, is built directly.
        self._new_wake = type(self.drop_signal)
        self._send_nowait = self._send.send_nowait
        self._life.advance(State.RUNNING)

    @property
    def state(self) -> State:
        return self._life.state

    @property
    def token(self) -> anyio.lowlevel.EventLoopToken | None:
        """The event loop this queue was opened on (None before that): for other threads."""
        return self._token

    def _accepting(self) -> bool:
        return self._life.is_(State.RUNNING) or self._life.is_(State.STOPPING)

    def begin_shutdown(self) -> None:
        """Shutdown has begun: from now on nobody waits for room under ``block``.

        Emitters waiting now are released, refused (``shutting_down``), and so is every
        later emit that finds the queue full; one that finds room is still accepted
        until intake closes, so that job runs finishing within the grace period report
        it. Otherwise handlers that emit into a full queue would hold the drain, and
        our own reports behind them, until the grace period ran out.
        """
        self._life.advance(State.STOPPING)
        self._release_waiters(force=False)

    def _release_waiters(self, *, force: bool) -> None:
        # A blocked emitter woken without its event placed learns it will not get in
        # (counted shutting_down); our own reports keep their place unless ``force``.
        for waiter in list(self.waiters):
            if force or waiter.event.type not in PROTECTED:
                self.waiters.remove(waiter)
                waiter.wake.set()

    def close_intake(self, *, force: bool = False) -> None:
        """Refuse new events from now on; buffered ones stay for the workers to drain.

        Our own reports already waiting for room keep their place: the stream closes
        once a worker has placed the last of them (or at once with ``force``, when the
        workers are gone).
        """
        self._life.advance(State.STOPPED)
        self._send_nowait = _closed
        if self._token is None:
            return
        self._release_waiters(force=force)
        if not self.waiters:
            self._send.close()
            while self._idle:  # wake every idle worker: they will see the end
                self._idle.popleft().set()

    def close_receive(self) -> None:
        """The workers are gone: close the receiving end too (what is left stays counted)."""
        if self._receive is not None:
            self._receive.close()

    def leftover(self) -> int:
        """Events still in the buffer, by the stream's own count (after shutdown: unhandled)."""
        if self._receive is None:  # never opened: no stream yet
            return 0
        return self._receive.statistics().current_buffer_used

    def statistics(self) -> Statistics:
        """A snapshot of the accounting (loop thread; see EventScheduler.statistics)."""
        return self.snapshot(self.leftover())

    # -- emitting ----------------------------------------------------------------------

    def emit_nowait(self, event: Event) -> bool:
        """Offer an event without waiting; see :meth:`EventScheduler.emit_nowait`."""
        if _get_ident() != self.loop_thread:
            return _emit_from_thread(self, event)
        accepted = self.offer(event)
        if accepted is None:  # policy block, but this caller cannot wait
            self.drop(DropReason.QUEUE_FULL)
            return False
        return accepted

    def offer(self, event: Event) -> bool | None:
        """Count the emit and try to buffer it; None means "the policy says wait".

        Loop thread only. This is the hot path: everything the common case needs is
        inline, everything else is a call away.
        """
        self.emitted += 1
        # Evictions take back their acceptance, so this is exactly the buffer's length.
        queued = self.accepted - self.received
        if queued >= self.capacity:
            return self._overflow(event)
        try:
            self._send_nowait(event)
        except ClosedResourceError:  # not open yet, or intake closed
            return self._refuse_closed()
        self.accepted += 1
        if queued >= self.high_water:
            self.high_water = queued + 1
        if self._idle:
            self._idle.popleft().set()
        return True

    def offer_job_event(self, event: Event) -> bool:
        """Offer a ``JOB_*`` event of the job scheduler: no room, it is dropped
        (``job_event``), whatever the policy. Waiting would stall the scheduler task or
        a run on its own report; evicting, or raising, would cost the user's events."""
        if self.accepted - self.received >= self.capacity and self._accepting():
            self.emitted += 1
            self.drop(DropReason.JOB_EVENT)
            return False
        return bool(self.offer(event))  # room: the common path, never the policy

    async def emit(self, event: Event) -> bool:
        """Offer an event, waiting for room under ``block``; see :meth:`EventScheduler.emit`."""
        accepted = self.offer(event)
        if accepted is None:
            return await self.wait_for_room(event)
        return accepted

    async def wait_for_room(self, event: Event) -> bool:
        """Under ``block``: wait (up to ``block_timeout``) for a worker to place the event."""
        return await self._wait_for_room(event, self._block_timeout)

    async def emit_protected(self, event: Event) -> bool:
        """Emit one of the runtime's own reports: never dropped, waits for room instead.

        The caller bounds the wait (a report waits for a worker; shutdown for its grace).
        """
        self.emitted += 1
        if not self._accepting():
            return self._refuse_closed()
        if self.queued >= self.capacity:
            return await self._wait_for_room(event, None)
        self._send.send_nowait(event)
        self._accepted(event)
        return True

    def emit_shutdown_notice(self, event: Event) -> bool:
        """Emit the ``SHUTDOWN_REQUESTED`` into the reserved slot: it never waits or fails.

        Called once in the queue's life, before intake closes. The slot is the stream's
        one beyond ``queue_size``, which no other emit uses; while the notice is in the
        buffer it takes the place of one ordinary event. It does not count toward the
        high-water mark (a figure about ``queue_size``).
        """
        self.emitted += 1
        if not self._accepting() or self._reserved_used:
            return self._refuse_closed()
        self._reserved_used = True
        self._send.send_nowait(event)
        self.accepted += 1
        if self._idle:
            self._idle.popleft().set()
        return True

    def _accepted(self, event: Event) -> None:
        self.accepted += 1
        # At most queue_size: the shutdown notice's reserved slot is not counted.
        queued = min(self.accepted - self.received, self.capacity)
        if queued > self.high_water:
            self.high_water = queued
        if self._idle:
            self._idle.popleft().set()

    def _refuse_closed(self) -> bool:
        if self._life.is_(State.CREATED):
            # Not started yet: a reason of its own, and the shutdown's one-time log line
            # is left for the shutdown.
            self.rejected[RejectReason.NOT_RUNNING] += 1
            if self.rejected[RejectReason.NOT_RUNNING] == 1:
                log.warning(
                    "The scheduler is not running yet: events emitted before it starts "
                    "are refused (counted as rejected: not_running)"
                )
            return False
        self.rejected[RejectReason.SHUTTING_DOWN] += 1
        self.closed_refusals += 1
        if self.closed_refusals == 1:
            log.info(
                "Intake is closed: events emitted from now on are refused "
                "(counted as rejected: shutting_down)"
            )
        return False

    def _overflow(self, event: Event) -> bool | None:
        """Apply the policy to a full queue; None means "wait for room"."""
        if not self._accepting():
            return self._refuse_closed()
        policy = self._policy
        if policy is OverflowPolicy.DROP_NEWEST:
            self.drop(DropReason.QUEUE_FULL)
            return False
        if policy is OverflowPolicy.DROP_OLDEST:
            return _evict_oldest_for(self, event)
        if policy is OverflowPolicy.REJECT:
            self.rejected[RejectReason.QUEUE_FULL] += 1
            raise QueueFullError(
                f"event queue is full ({self.capacity} events) and the overflow policy is "
                f"'reject': event {event.id} of type {event.type!s} was not accepted"
            )
        if self._life.is_(State.STOPPING):  # see begin_shutdown: nobody waits any more
            self.rejected[RejectReason.SHUTTING_DOWN] += 1
            return False
        return None

    async def _wait_for_room(self, event: Event, limit: float | None) -> bool:
        # An emit waiting for room has no outcome yet: it leaves "emitted" until it has
        # one (placed, dropped or refused), so that the identities hold meanwhile too.
        self.emitted -= 1
        waiter = Waiter(event, self._new_wake())
        self.waiters.append(waiter)
        try:
            with anyio.move_on_after(limit if limit is not None else math.inf):
                await waiter.wake.wait()
        except BaseException:
            # Cancelled while waiting: the event got in only if a worker placed it.
            if not waiter.placed:
                self._forget(waiter)
                self.emitted += 1
                if self._life.is_(State.RUNNING):
                    self.drop(DropReason.CANCELLED)  # the emitter gave up, e.g. its timeout
                else:
                    self.rejected[RejectReason.SHUTTING_DOWN] += 1
            raise
        if waiter.placed:
            return True
        self._forget(waiter)
        self.emitted += 1
        if self._life.is_(State.RUNNING):
            self.drop(DropReason.BLOCK_TIMEOUT)
        else:
            self.rejected[RejectReason.SHUTTING_DOWN] += 1
        return False

    def _forget(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)

    def place_waiter(self) -> None:
        """Move the first waiting emitter's event into the slot a worker just freed."""
        waiter = self.waiters.popleft()
        self._send.send_nowait(waiter.event)
        self.emitted += 1  # back in "emitted" now that it has an outcome
        self._accepted(waiter.event)
        waiter.placed = True
        waiter.wake.set()
        if self._life.is_(State.STOPPED) and not self.waiters:
            self.close_intake()  # the last report is in: now the stream can close

    async def wait_for_work(self) -> None:
        """Park an idle worker until an emit (or the end of intake) wakes it."""
        wake = self._new_wake()
        self._idle.append(wake)
        try:
            await wake.wait()
        except BaseException:
            try:
                self._idle.remove(wake)
            except ValueError:
                # An emit chose us to handle its event; let another idle worker do it.
                if self._idle:
                    self._idle.popleft().set()
            raise


def _evict_oldest_for(queue: EventQueue, event: Event) -> bool:
    """``drop_oldest``: evict the oldest event that is not one of our reports."""
    kept: list[Event] = []
    evicted: Event | None = None
    while evicted is None:
        try:
            oldest = queue.receive_nowait()
        except (WouldBlock, EndOfStream):
            break
        if oldest.type in PROTECTED:
            kept.append(oldest)
        else:
            evicted = oldest
    send_nowait = queue._send.send_nowait
    for protected in kept:  # back in, behind the rest: room was just made for them
        send_nowait(protected)
    if evicted is None:  # the buffer holds nothing but our own reports
        queue.drop(DropReason.QUEUE_FULL)
        return False
    queue.accepted -= 1
    queue.drop(DropReason.EVICTED)
    send_nowait(event)
    queue._accepted(event)
    return True


def _emit_from_thread(queue: EventQueue, event: Event) -> bool:
    # Memory object streams are not thread-safe: hand the event to the loop thread.
    token = queue._token
    if token is None or not queue._accepting():
        queue.emitted += 1
        return queue._refuse_closed()
    try:
        if queue._policy is OverflowPolicy.BLOCK:
            # A worker thread can wait, so under "block" it gets backpressure.
            return anyio.from_thread.run(_emit_for_thread, queue, event, token=token)
        return anyio.from_thread.run_sync(queue.emit_nowait, event, token=token)
    except anyio.RunFinishedError:
        queue.emitted += 1
        return queue._refuse_closed()


async def _emit_for_thread(queue: EventQueue, event: Event) -> bool:
    # Shielded, so that both backends give a thread the same answer: on asyncio a
    # call from a worker thread runs inside the cancel scopes of the task waiting
    # for that thread (a sync handler's timeout would raise CancelledError in it
    # although its event may be placed a moment later); on trio it does not. The
    # wait stays bounded: by block_timeout, and at shutdown every waiter is released.
    with anyio.CancelScope(shield=True):
        return await queue.emit(event)
    raise AssertionError("unreachable: nothing cancels this scope itself")
