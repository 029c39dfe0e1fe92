"""The event pipeline: one bounded memory object stream, overflow at the send call, workers.

Design (measured in ``../shared/NOTES.md`` and ``benchmarks/bench_pipeline.py``):

* Emitting tries ``send_nowait`` first. anyio's ``send()`` always passes through the
  scheduler, which costs more than the whole rest of the trip; ``WouldBlock`` is where
  the overflow policy applies, so overflow is explicit at the send call and counted.
* Workers drain with ``receive_nowait`` and only wait when the queue is empty. They
  wait on their own wake-up event rather than in ``receive()``, so an accepted event
  is always *in the stream's buffer* until a worker takes it: the queue length the
  accounting reports is the stream's own figure, not a number derived from ours.
* A worker checkpoints after at most :data:`CHECKPOINT_EVERY` events in a row, so a
  stream of handlers that never yield cannot starve other tasks or delay cancellation
  by more than that many handler calls.
* Emitters that must wait for room (policy ``block``, and our own reports) queue up
  here; a worker that frees a slot moves the first waiter's event into the buffer
  itself, before any other task runs. So waiting emitters are served in order, cannot
  be starved by ``send_nowait`` callers, and know for certain whether their event got in.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from types import MappingProxyType
from typing import Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio import EndOfStream, WouldBlock
from loguru import logger

from ._events import Event, EventType, HandlingSlot, _handling
from ._exceptions import InvalidEventError, QueueFullError
from ._handlers import AsyncHandler, Handler, HandlerRegistry, SlowRoute
from ._invoke import AbandonedCalls, CallTally, call_user, stray_cancellation
from ._stats import DropReason, OverflowPolicy, RejectReason, Statistics

__all__ = ["CHECKPOINT_EVERY", "EventBus"]

_get_ident = threading.get_ident
_time = time.time

log = logger.bind(component="bus")

#: A worker yields to the event loop after at most this many events in a row (a power
#: of two: it is applied as a mask to the receive count). 64
#: keeps the cost of the checkpoint under ~3% of a trivial handler's trip while
#: bounding the time other tasks wait to 64 handler calls (~0.1 ms with trivial
#: handlers on this machine); see the benchmark's fairness figure.
CHECKPOINT_EVERY: Final = 64

# One event in this many is timed for the latency percentiles: timing every event
# would cost a clock read per event on the hot path. Latency runs from the event's
# creation (Event.create, which emit(type, data) calls) to the start of its handling,
# on the wall clock the event's timestamp uses.
_LATENCY_SAMPLE_MASK: Final = 15
_LATENCY_WINDOW: Final = 8192

# An event's outcome is the worst of its handlers': failed > timed out > handled.
_HANDLED: Final = 0
_TIMED_OUT: Final = 1
_FAILED: Final = 2

# Events the runtime emits about itself: never dropped by overflow (they wait for room
# instead) and never evicted by ``drop_oldest``.
_PROTECTED: Final = frozenset({EventType.EVENTS_DROPPED, EventType.SHUTDOWN_REQUESTED})


class _Waiter:
    """An emitter waiting for room; a worker places its event and wakes it."""

    __slots__ = ("event", "placed", "wake")

    def __init__(self, event: Event, wake: anyio.Event) -> None:
        self.event = event
        self.placed = False
        self.wake = wake


def _call_in_thread(func: Callable[[Event], object], event: Event) -> object:
    # The thread runs in a copy of the worker's context: its own slot there keeps
    # current_event() (and the lineage of what it emits) on this event even after a
    # timeout abandons the call and the worker's slot moves on to the next event.
    _handling.set(HandlingSlot(event))
    return func(event)


def _abandoned_fields(calls: AbandonedCalls) -> dict[str, int]:
    return {
        "abandoned_calls": calls.total,
        "abandoned_in_flight": calls.in_flight,
        "refused_calls": calls.refused,
    }


class EventBus:
    """The queue, its overflow policy, the workers and every counter of the accounting."""

    __slots__ = (
        "_accepting",
        "_block_timeout",
        "_capacity",
        "_closed_refusals",
        "_idle",
        "_latency",
        "_max_bytes",
        "_new_wake",
        "_policy",
        "_receive",
        "_receive_nowait",
        "_received",
        "_registry",
        "_send",
        "_send_nowait",
        "_shutting_down",
        "_token",
        "_waiters",
        "aborted",
        "accepted",
        "drop_signal",
        "dropped",
        "dropped_unreported",
        "emitted",
        "failed",
        "handled",
        "handler_errors",
        "handler_timeouts",
        "high_water",
        "loop_thread",
        "rejected",
        "thread_calls",
        "timed_out",
    )

    def __init__(
        self,
        registry: HandlerRegistry,
        *,
        queue_size: int,
        overflow: OverflowPolicy,
        block_timeout: float | None,
        max_event_bytes: int,
    ) -> None:
        self._registry = registry
        self._capacity = queue_size
        self._policy = overflow
        self._block_timeout = block_timeout
        self._max_bytes = max_event_bytes
        self._accepting = False
        self._shutting_down = False
        self._closed_refusals = 0
        self._idle: deque[anyio.Event] = deque()
        self._new_wake: Callable[[], anyio.Event] = anyio.Event
        self._waiters: deque[_Waiter] = deque()
        self._received = 0
        self._latency: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self.loop_thread: int | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self.emitted = 0
        self.accepted = 0
        self.dropped = dict.fromkeys(DropReason, 0)
        self.dropped_unreported = dict.fromkeys(DropReason, 0)
        self.rejected = dict.fromkeys(RejectReason, 0)
        self.handled = 0
        self.failed = 0
        self.timed_out = 0
        self.aborted = 0
        self.handler_errors = 0
        self.handler_timeouts = 0
        self.thread_calls = CallTally()
        self.high_water = 0
        self.drop_signal: anyio.Event | None = None

    # -- lifecycle (called by EventScheduler) ------------------------------------------

    def open(self) -> None:
        """Start accepting events; must be called on the event loop thread."""
        # Created here, not in __init__: a scheduler that never starts leaves no
        # unclosed stream behind (anyio warns about those).
        self._send, self._receive = anyio.create_memory_object_stream[Event](self._capacity)
        self._send_nowait = self._send.send_nowait
        self._receive_nowait = self._receive.receive_nowait
        self.loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        self.drop_signal = anyio.Event()
        # anyio.Event() looks the backend up on every call (~1 us on this machine, a
        # tenth of an idle worker's wake-up); the backend's own Event class, taken once
        # here on the loop, is built directly.
        self._new_wake = type(self.drop_signal)
        self._accepting = True

    def begin_shutdown(self) -> None:
        """Shutdown has begun: from now on nobody waits for room under ``block``.

        Emitters waiting now are released, refused (``shutting_down``), and so is every
        later emit that finds the queue full; one that finds room is still accepted
        until intake closes, so that job runs finishing within the grace period report
        it. Otherwise handlers that emit into a full queue would hold the drain, and
        our own SHUTDOWN_REQUESTED behind them, until the grace period ran out.
        """
        self._shutting_down = True
        self._release_waiters(force=False)

    def _release_waiters(self, *, force: bool) -> None:
        # A blocked emitter woken without its event placed learns it will not get in
        # (counted shutting_down); our own reports keep their place unless ``force``.
        waiters = self._waiters
        for waiter in list(waiters):
            if force or waiter.event.type not in _PROTECTED:
                waiters.remove(waiter)
                waiter.wake.set()

    def close_intake(self, *, force: bool = False) -> None:
        """Refuse new events from now on; buffered ones stay for the workers to drain.

        Our own reports already waiting for room keep their place: the stream closes
        once a worker has placed the last of them (or at once with ``force``, when the
        workers are gone).
        """
        self._accepting = False
        if self._token is None:
            return
        self._release_waiters(force=force)
        if not self._waiters:
            self._send.close()
            self._wake_all_idle()

    @property
    def token(self) -> anyio.lowlevel.EventLoopToken | None:
        """The event loop this bus was opened on (None before that): for other threads."""
        return self._token

    def close_receive(self) -> None:
        """The workers are gone: close the receiving end too (what is left stays counted)."""
        if self._token is not None:
            self._receive.close()

    def _wake_all_idle(self) -> None:
        while self._idle:
            self._idle.popleft().set()

    def count_invalid(self, error: InvalidEventError) -> None:
        if not error.counted:
            error.counted = True
            self.emitted += 1
            self.rejected[RejectReason.INVALID] += 1

    # -- emitting ----------------------------------------------------------------------

    def emit_nowait(self, event: Event) -> bool:
        """Offer an event without waiting; see :meth:`EventScheduler.emit_nowait`."""
        if _get_ident() != self.loop_thread:
            return self._emit_from_thread(event)
        accepted = self.offer(event)
        if accepted is None:  # policy block, but this caller cannot wait
            self._drop(DropReason.QUEUE_FULL)
            return False
        return accepted

    def offer(self, event: Event) -> bool | None:
        """Count the emit and try ``send_nowait``; None means "the policy says wait".

        Loop thread only. This is the hot path: everything the common case needs is
        inline, everything else is a call away.
        """
        self.emitted += 1
        if not self._accepting:
            return self._refuse_closed()
        try:
            self._send_nowait(event)
        except WouldBlock:
            return self._overflow(event)
        # What _accepted() does, inlined: on this path a call costs ~100 ns.
        accepted = self.accepted = self.accepted + 1
        # Evictions take back their acceptance, so this is exactly the buffer's length.
        queued = accepted - self._received
        if queued > self.high_water:
            self.high_water = queued
        if self._idle:
            self._idle.popleft().set()
        return True

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
        """Emit one of the runtime's own events: never dropped, waits for room instead.

        The caller bounds the wait (a report waits for a worker; shutdown for its grace).
        """
        self.emitted += 1
        if not self._accepting:
            return self._refuse_closed()
        try:
            self._send_nowait(event)
        except WouldBlock:
            return await self._wait_for_room(event, None)
        self._accepted(event)
        return True

    def _accepted(self, event: Event) -> None:
        self.accepted += 1
        # Evictions take back their acceptance, so this is exactly the buffer's length.
        queued = self.accepted - self._received
        if queued > self.high_water:
            self.high_water = queued
        if self._idle:
            self._idle.popleft().set()

    def _refuse_closed(self) -> bool:
        if self._token is None:
            # Not started yet: a reason of its own, and the shutdown's one-time log line
            # is left for the shutdown.
            self.rejected[RejectReason.NOT_RUNNING] += 1  # counted only here
            if self.rejected[RejectReason.NOT_RUNNING] == 1:
                log.warning(
                    "The scheduler is not running yet: events emitted before it starts "
                    "are refused (counted as rejected: not_running)"
                )
            return False
        self.rejected[RejectReason.SHUTTING_DOWN] += 1
        self._closed_refusals += 1
        if self._closed_refusals == 1:
            log.info(
                "Intake is closed: events emitted from now on are refused "
                "(counted as rejected: shutting_down)"
            )
        return False

    def _drop(self, reason: DropReason) -> None:
        self.dropped[reason] += 1
        self.dropped_unreported[reason] += 1
        signal = self.drop_signal
        if signal is not None and not signal.is_set():
            signal.set()

    def _overflow(self, event: Event) -> bool | None:
        """Apply the policy to a refused ``send_nowait``; None means "wait for room"."""
        policy = self._policy
        if policy is OverflowPolicy.DROP_NEWEST:
            self._drop(DropReason.QUEUE_FULL)
            return False
        if policy is OverflowPolicy.DROP_OLDEST:
            return self._evict_oldest_for(event)
        if policy is OverflowPolicy.REJECT:
            self.rejected[RejectReason.QUEUE_FULL] += 1
            raise QueueFullError(
                f"event queue is full ({self._capacity} events) and the overflow policy is "
                f"'reject': event {event.id} of type {event.type!s} was not accepted"
            )
        if self._shutting_down:  # see begin_shutdown: nobody waits for room any more
            self.rejected[RejectReason.SHUTTING_DOWN] += 1
            return False
        return None

    def _evict_oldest_for(self, event: Event) -> bool:
        kept: list[Event] = []
        evicted: Event | None = None
        while evicted is None:
            try:
                oldest = self._receive_nowait()
            except (WouldBlock, EndOfStream):
                break
            if oldest.type in _PROTECTED:
                kept.append(oldest)
            else:
                evicted = oldest
        for protected in kept:  # back in, behind the rest: room was just made for them
            self._send_nowait(protected)
        if evicted is None:  # the buffer holds nothing but our own reports
            self._drop(DropReason.QUEUE_FULL)
            return False
        self.accepted -= 1
        self._drop(DropReason.EVICTED)
        self._send_nowait(event)
        self._accepted(event)
        return True

    async def _wait_for_room(self, event: Event, limit: float | None) -> bool:
        # An emit waiting for room has no outcome yet: it leaves "emitted" until it has
        # one (placed, dropped or refused), so that the identities hold meanwhile too.
        self.emitted -= 1
        waiter = _Waiter(event, self._new_wake())
        self._waiters.append(waiter)
        try:
            with anyio.move_on_after(limit if limit is not None else math.inf):
                await waiter.wake.wait()
        except BaseException:
            # Cancelled while waiting: the event got in only if a worker placed it.
            if not waiter.placed:
                self._forget(waiter)
                self.emitted += 1
                if self._waiting_allowed():
                    self._drop(DropReason.CANCELLED)  # the emitter gave up, e.g. its timeout
                else:
                    self.rejected[RejectReason.SHUTTING_DOWN] += 1
            raise
        if waiter.placed:
            return True
        self._forget(waiter)
        self.emitted += 1
        if not self._waiting_allowed():
            self.rejected[RejectReason.SHUTTING_DOWN] += 1
        else:
            self._drop(DropReason.BLOCK_TIMEOUT)
        return False

    def _waiting_allowed(self) -> bool:
        return self._accepting and not self._shutting_down

    def _forget(self, waiter: _Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _place_waiter(self) -> None:
        """Move the first waiting emitter's event into the slot a worker just freed."""
        waiter = self._waiters.popleft()
        self._send_nowait(waiter.event)
        self.emitted += 1  # back in "emitted" now that it has an outcome
        self._accepted(waiter.event)
        waiter.placed = True
        waiter.wake.set()
        if not self._accepting and not self._waiters:
            self.close_intake()  # the last report is in: now the stream can close

    def _emit_from_thread(self, event: Event) -> bool:
        # Memory object streams are not thread-safe: hand the event to the loop thread.
        token = self._token
        if token is None or not self._accepting:
            self.emitted += 1
            return self._refuse_closed()
        try:
            if self._policy is OverflowPolicy.BLOCK:
                # A worker thread can wait, so under "block" it gets backpressure.
                return anyio.from_thread.run(self._emit_for_thread, event, token=token)
            return anyio.from_thread.run_sync(self.emit_nowait, event, token=token)
        except anyio.RunFinishedError:
            self.emitted += 1
            return self._refuse_closed()

    async def _emit_for_thread(self, event: Event) -> bool:
        # Shielded, so that both backends give a thread the same answer: on asyncio a
        # call from a worker thread runs inside the cancel scopes of the task waiting
        # for that thread (a sync handler's timeout would raise CancelledError in it
        # although its event may be placed a moment later); on trio it does not. The
        # wait stays bounded: by block_timeout, and at shutdown every waiter is released.
        with anyio.CancelScope(shield=True):
            return await self.emit(event)
        raise AssertionError("unreachable: nothing cancels this scope itself")

    # -- the workers -------------------------------------------------------------------

    async def worker(self) -> None:
        """Handle events until the stream is closed and empty (or until cancelled).

        Every line here runs once per event, so it is written for speed: module
        constants as locals, a lone plain async handler awaited straight from the
        routing table, the checkpoint and the latency sample keyed off the shared
        receive count rather than counters of their own.
        """
        receive_nowait = self._receive_nowait
        routes = self._registry.routes
        latency = self._latency
        waiters = self._waiters
        # This task's own context: one slot that says which event is being handled
        # (see HandlingSlot for why not a ContextVar per event).
        slot = HandlingSlot()
        _handling.set(slot)
        handled_, failed_ = _HANDLED, _FAILED
        batch_mask, sample_mask = CHECKPOINT_EVERY - 1, _LATENCY_SAMPLE_MASK
        # Besides one event in 16, time the first after an idle wait: at low rates
        # (the demo's) there would otherwise be no samples at all.
        sample_next = True
        while True:
            try:
                event = receive_nowait()
            except WouldBlock:
                # Left set while busy (one store per event saved); cleared before idling
                # so that nothing reads a finished event as current meanwhile.
                slot.event = None
                await self._wait_idle()
                sample_next = True
                continue
            except EndOfStream:
                slot.event = None
                return
            received = self._received = self._received + 1
            if waiters:
                self._place_waiter()
            if not received & sample_mask or sample_next:
                sample_next = False
                latency.append(max(0.0, _time() - event.created_at))
            route = routes[event.type]
            slot.event = event
            kind = route.__class__
            if kind is not tuple and kind is not SlowRoute:
                # One plain async handler: the common case, and the one kept shortest.
                try:
                    await route(event)  # type: ignore[operator]
                except Exception as exc:
                    self._fast_handler_failed(route, event, exc)  # type: ignore[arg-type]
                    self.failed += 1
                except BaseException as exc:
                    if (stray := stray_cancellation(exc)) is None:
                        self._aborted(slot)
                        raise
                    self._fast_handler_failed(route, event, stray)  # type: ignore[arg-type]
                    self.failed += 1
                else:
                    self.handled += 1
            else:
                try:
                    outcome = await self._call_route(route, event)  # type: ignore[arg-type]
                except BaseException:
                    self._aborted(slot)
                    raise
                if outcome == handled_:
                    self.handled += 1
                elif outcome == failed_:
                    self.failed += 1
                else:
                    self.timed_out += 1
            # Consecutive events of this worker have consecutive receive counts (no
            # other task runs in between), so this checkpoints at least every
            # CHECKPOINT_EVERY events, whatever the number of workers.
            if not received & batch_mask:
                await anyio.lowlevel.checkpoint()

    def _aborted(self, slot: HandlingSlot) -> None:
        # Cancelled (shutdown past its grace) with this event in hand.
        self.aborted += 1
        slot.event = None

    async def _call_route(self, route: tuple[AsyncHandler, ...] | SlowRoute, event: Event) -> int:
        """Call every handler of a route of several (or a slow one); the worst outcome."""
        outcome = _HANDLED
        if route.__class__ is SlowRoute:
            for handler in route:
                result = await self._call_slow(handler, event)
                if result > outcome:
                    outcome = result
            return outcome
        for func in route:
            try:
                await func(event)  # type: ignore[operator]
            except Exception as exc:
                self._fast_handler_failed(func, event, exc)  # type: ignore[arg-type]
                outcome = _FAILED
            except BaseException as exc:
                if (stray := stray_cancellation(exc)) is None:
                    raise
                self._fast_handler_failed(func, event, stray)  # type: ignore[arg-type]
                outcome = _FAILED
        return outcome

    async def _wait_idle(self) -> None:
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

    async def _call_slow(self, handler: Handler, event: Event) -> int:
        """Call a handler that needs a timeout scope or a worker thread."""
        try:
            if handler.timeout is None:
                await self._invoke(handler, event)
                return _HANDLED
            with anyio.move_on_after(handler.timeout) as scope:
                await self._invoke(handler, event)
        except Exception as exc:
            self._handler_failed(handler, event, exc)
            return _FAILED
        if scope.cancelled_caught:
            self.handler_timeouts += 1
            log.warning(
                "Handler {} timed out after {}s on event {} (type {}, correlation {})",
                handler.name,
                handler.timeout,
                event.id,
                event.type,
                event.correlation_id,
            )
            return _TIMED_OUT
        return _HANDLED

    async def _invoke(self, handler: Handler, event: Event) -> None:
        if handler.is_async:
            await call_user(handler.func, event, in_thread=False)
        else:
            await call_user(
                _call_in_thread,
                handler.func,
                event,
                in_thread=True,
                key=handler.func,
                tally=self.thread_calls,
            )

    def _fast_handler_failed(self, func: AsyncHandler, event: Event, exc: Exception) -> None:
        handler = self._registry.find(event.type, func)
        name = handler.name if handler is not None else getattr(func, "__qualname__", repr(func))
        self._report_failure(name, event, exc)

    def _handler_failed(self, handler: Handler, event: Event, exc: Exception) -> None:
        self._report_failure(handler.name, event, exc)

    def _report_failure(self, name: str, event: Event, exc: Exception) -> None:
        self.handler_errors += 1
        log.opt(exception=exc).error(
            "Handler {} failed on event {} (type {}, correlation {}): {!r}",
            name,
            event.id,
            event.type,
            event.correlation_id,
            exc,
        )

    # -- accounting --------------------------------------------------------------------

    def take_unreported_drops(self) -> dict[str, int]:
        taken = {reason.value: n for reason, n in self.dropped_unreported.items() if n}
        for reason in self.dropped_unreported:
            self.dropped_unreported[reason] = 0
        return taken

    @property
    def in_flight(self) -> int:
        """Events a worker has taken from the queue and not finished yet."""
        return self._received - self.handled - self.failed - self.timed_out - self.aborted

    @property
    def queued(self) -> int:
        """Events in the buffer by our count (:meth:`leftover` asks the stream itself)."""
        return self.accepted - self._received

    def leftover(self) -> int:
        """Events still in the buffer (after shutdown: never handled)."""
        if self._token is None:  # never opened: no stream yet
            return 0
        return self._receive.statistics().current_buffer_used

    def statistics(self) -> Statistics:
        latencies = sorted(self._latency)
        p50 = p99 = None
        if latencies:
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, (len(latencies) * 99) // 100)]
        return Statistics(
            emitted=self.emitted,
            accepted=self.accepted,
            dropped=MappingProxyType({r.value: n for r, n in self.dropped.items() if n}),
            rejected=MappingProxyType({r.value: n for r, n in self.rejected.items() if n}),
            handled=self.handled,
            failed=self.failed,
            timed_out=self.timed_out,
            aborted_in_flight=self.aborted,
            in_flight=self.in_flight,
            still_queued=self.leftover(),
            handler_errors=self.handler_errors,
            handler_timeouts=self.handler_timeouts,
            queue_capacity=self._capacity,
            queue_high_water=self.high_water,
            latency_p50=p50,
            latency_p99=p99,
            latency_samples=len(latencies),
            **_abandoned_fields(self.thread_calls.snapshot()),
        )
