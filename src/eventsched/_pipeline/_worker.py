"""The worker loop: take an event from the queue, call its handlers, count the outcome.

* Workers drain with ``receive_nowait`` and only wait when the queue is empty. They
  wait on their own wake-up event rather than in ``receive()``, so an accepted event
  is always *in the stream's buffer* until a worker takes it: the queue length the
  accounting reports is the stream's own figure, not a number derived from ours.
* A worker checkpoints after at most :data:`CHECKPOINT_EVERY` events in a row, so a
  stream of handlers that never yield cannot starve other tasks or delay cancellation
  by more than that many handler calls.
* An event whose only handler is sync goes to the task's :class:`SyncLane`, which
  takes the events waiting behind it for the same handler and runs them in one batch
  on the task's thread; waiting for that thread yields, so a batch needs no checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import anyio
import anyio.lowlevel
from anyio import EndOfStream, WouldBlock

from .._events import Event, HandlingSlot, _handling
from .._invoke import call_user, failure_instead_of
from ._ledger import LATENCY_SAMPLE_MASK
from ._queue import EventQueue
from ._routing import AsyncHandler, Handler, HandlerRegistry, SlowRoute
from ._syncbatch import SyncLane, is_sync_route

__all__ = ["CHECKPOINT_EVERY", "work"]

_time = time.time

#: A worker yields to the event loop after at most this many events in a row (a power
#: of two: it is applied as a mask to the receive count). It trades the cost of the
#: checkpoint against how long other tasks may wait; docs/benchmarks.md has the
#: fairness figure.
CHECKPOINT_EVERY: Final = 64

# An event's outcome is the worst of its handlers': failed > timed out > handled.
_HANDLED: Final = 0
_TIMED_OUT: Final = 1
_FAILED: Final = 2


def _call_in_thread(func: Callable[[Event], object], event: Event) -> object:
    # The thread runs in a copy of the worker's context: its own slot there keeps
    # current_event() (and the lineage of what it emits) on this event even after a
    # timeout abandons the call and the worker's slot moves on to the next event.
    _handling.set(HandlingSlot(event))
    return func(event)


async def work(queue: EventQueue, registry: HandlerRegistry) -> None:
    """One handler task: handle events until the stream is closed and empty (or cancelled).

    Every line here runs once per event, so it is written for speed: module constants
    as locals, a lone plain async handler awaited straight from the routing table, the
    checkpoint and the latency sample keyed off the shared receive count rather than
    counters of their own.
    """
    receive_nowait = queue.receive_nowait
    routes = registry.routes
    latency = queue.latency
    waiters = queue.waiters
    # This task's own context: one slot that says which event is being handled
    # (see HandlingSlot for why not a ContextVar per event).
    slot = HandlingSlot()
    _handling.set(slot)
    handled_, failed_ = _HANDLED, _FAILED
    batch_mask, sample_mask = CHECKPOINT_EVERY - 1, LATENCY_SAMPLE_MASK
    # Besides one event in 16, time the first after an idle wait: at low rates
    # (the demo's) there would otherwise be no samples at all.
    sample_next = True
    # Lone sync handlers get their events in batches, on a thread of this task's.
    lane = SyncLane(queue, routes, slot)
    # An event a batch took for another route: received and counted, handled next.
    pending: Event | None = None
    try:
        while True:
            if pending is None:
                try:
                    event = receive_nowait()
                except WouldBlock:
                    # Left set while busy (one store per event saved); cleared before
                    # idling so that nothing reads a finished event as current meanwhile.
                    slot.event = None
                    await queue.wait_for_work()
                    sample_next = True
                    continue
                except EndOfStream:
                    slot.event = None
                    return
                received = queue.received = queue.received + 1
                if waiters:
                    queue.place_waiter()
                if not received & sample_mask or sample_next:
                    sample_next = False
                    latency.append(max(0.0, _time() - event.created_at))
            else:
                event, pending = pending, None
                received = queue.received
            route = routes[event.type]
            slot.event = event
            kind = route.__class__
            if kind is not tuple and kind is not SlowRoute:
                # One plain async handler: the common case, and the one kept shortest.
                try:
                    await route(event)  # type: ignore[operator]
                except Exception as exc:
                    _fast_handler_failed(queue, registry, route, event, exc)  # type: ignore[arg-type]
                    queue.failed += 1
                except BaseException as exc:
                    if (stray := failure_instead_of(exc)) is None:
                        _aborted(queue, slot)
                        raise
                    _fast_handler_failed(queue, registry, route, event, stray)  # type: ignore[arg-type]
                    queue.failed += 1
                else:
                    queue.handled += 1
            elif kind is SlowRoute and is_sync_route(route):  # type: ignore[arg-type]
                # Waiting for the thread yields: no checkpoint needed after it.
                pending = await lane.handle(route, event)  # type: ignore[arg-type]
                continue
            else:
                try:
                    outcome = await _call_route(queue, registry, route, event)  # type: ignore[arg-type]
                except BaseException:
                    _aborted(queue, slot)
                    raise
                if outcome == handled_:
                    queue.handled += 1
                elif outcome == failed_:
                    queue.failed += 1
                else:
                    queue.timed_out += 1
            # Consecutive events of this worker have consecutive receive counts (no
            # other task runs in between), so this checkpoints at least every
            # CHECKPOINT_EVERY events, whatever the number of workers.
            if not received & batch_mask:
                await anyio.lowlevel.checkpoint()

    finally:
        lane.close()


def _aborted(queue: EventQueue, slot: HandlingSlot) -> None:
    # Cancelled (shutdown past its grace) with this event in hand.
    queue.aborted += 1
    slot.event = None


async def _call_route(
    queue: EventQueue,
    registry: HandlerRegistry,
    route: tuple[AsyncHandler, ...] | SlowRoute,
    event: Event,
) -> int:
    """Call every handler of a route of several (or a slow one); the worst outcome."""
    outcome = _HANDLED
    if route.__class__ is SlowRoute:
        for handler in route:
            result = await _call_slow(queue, handler, event)
            if result > outcome:
                outcome = result
        return outcome
    for func in route:
        try:
            await func(event)  # type: ignore[operator]
        except Exception as exc:
            _fast_handler_failed(queue, registry, func, event, exc)  # type: ignore[arg-type]
            outcome = _FAILED
        except BaseException as exc:
            if (stray := failure_instead_of(exc)) is None:
                raise
            _fast_handler_failed(queue, registry, func, event, stray)  # type: ignore[arg-type]
            outcome = _FAILED
    return outcome


async def _call_slow(queue: EventQueue, handler: Handler, event: Event) -> int:
    """Call a handler that needs a timeout scope or a worker thread."""
    try:
        if handler.timeout is None:
            await _invoke(queue, handler, event)
            return _HANDLED
        with anyio.move_on_after(handler.timeout) as scope:
            await _invoke(queue, handler, event)
    except Exception as exc:
        queue.handler_failed(handler.name, event, exc)
        return _FAILED
    if scope.cancelled_caught:
        queue.handler_timed_out(handler, event)
        return _TIMED_OUT
    return _HANDLED


async def _invoke(queue: EventQueue, handler: Handler, event: Event) -> None:
    if handler.is_async:
        await call_user(handler.func, event, in_thread=False)
    else:
        # Keyed by the handler's own function, so that its hung calls are counted
        # against it (and refused past a few), not against every sync handler.
        await call_user(
            _call_in_thread,
            handler.func,
            event,
            in_thread=True,
            key=handler.func,
            tally=queue.thread_calls,
        )


def _fast_handler_failed(
    queue: EventQueue,
    registry: HandlerRegistry,
    func: AsyncHandler,
    event: Event,
    exc: Exception,
) -> None:
    handler = registry.find(event.type, func)
    name = handler.name if handler is not None else getattr(func, "__qualname__", repr(func))
    queue.handler_failed(name, event, exc)
