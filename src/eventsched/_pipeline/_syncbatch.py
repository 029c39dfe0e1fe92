"""A handler task's lane for a lone sync handler: events taken and handled in batches.

When the event in hand goes to one sync handler and nothing else, the task also takes
the events already waiting behind it that go to the same route (up to
:data:`BATCH_MAX`, never waiting for more) and hands them to its thread at once (see
:mod:`.._threadbatch`). Each event keeps its own outcome, timeout and log line, and
events are handled in the order they were taken. The first event taken for another
route is handed back, to be handled next.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import anyio
from anyio import EndOfStream, WouldBlock

from .._events import Event, HandlingSlot
from .._exceptions import CallRefusedError
from .._invoke import failure_instead_of
from .._threadbatch import BATCH_MAX, Batch, BatchThread
from ._ledger import LATENCY_SAMPLE_MASK
from ._queue import EventQueue
from ._routing import Handler, Routes, SlowRoute

__all__ = ["SyncLane", "is_sync_route"]

_wall = time.time


def is_sync_route(route: SlowRoute) -> bool:
    """Whether a route is one sync handler and nothing else (what a batch may carry)."""
    return len(route) == 1 and not route[0].is_async


class SyncLane:
    """One handler task's batches: its thread (started on first use) and the counting."""

    __slots__ = ("_queue", "_routes", "_slot", "_thread")

    def __init__(self, queue: EventQueue, routes: Routes, slot: HandlingSlot) -> None:
        self._queue = queue
        self._routes = routes
        self._slot = slot
        self._thread: BatchThread | None = None

    def close(self) -> None:
        if self._thread is not None:
            self._thread.close()
            self._thread = None

    async def handle(self, route: SlowRoute, first: Event) -> Event | None:
        """Handle ``first`` and the events behind it for ``route``; the next event taken
        for another route (already received, not yet handled), if any."""
        events, pending = self._take(route, first)
        queue = self._queue
        handler = route[0]
        done = 0
        try:
            while done < len(events):
                done += await self._run(handler, events[done:] if done else events)
        except BaseException:
            # Cancelled (shutdown past its grace): _run counted the batch's events,
            # the one taken for another route is aborted too.
            queue.aborted += pending is not None
            self._slot.event = None
            raise
        return pending

    def _take(self, route: SlowRoute, first: Event) -> tuple[list[Event], Event | None]:
        # The bookkeeping of each receive is the worker's (see work()).
        queue = self._queue
        receive_nowait = queue.receive_nowait
        routes = self._routes
        events = [first]
        while len(events) < BATCH_MAX:
            try:
                event = receive_nowait()
            except (WouldBlock, EndOfStream):
                break
            received = queue.received = queue.received + 1
            if queue.waiters:
                queue.place_waiter()
            if not received & LATENCY_SAMPLE_MASK:
                queue.latency.append(max(0.0, _wall() - event.created_at))
            if routes[event.type] is not route:
                return events, event
            events.append(event)
        return events, None

    async def _run(self, handler: Handler, events: list[Event]) -> int:
        """One batch to the thread; how many of ``events`` it settled (at least one)."""
        queue = self._queue
        thread = self._thread
        if thread is None:
            thread = self._thread = BatchThread()
        batch = Batch(handler.func, events, queue.thread_calls)
        try:
            complete = await thread.run(batch, handler.timeout)
        except CallRefusedError as exc:
            queue.handler_failed(handler.name, events[0], exc)
            queue.failed += 1
            return 1
        except BaseException:
            queue.aborted += len(events) - self._count(handler, events, batch.outcomes, final=True)
            raise
        settled = self._count(handler, events, batch.outcomes, final=False)
        if not complete:
            # The next call timed out (abandoned, or never started): its thread is
            # done with, the events after it go to a new one.
            thread.close()
            self._thread = None
            queue.handler_timed_out(handler, events[settled])
            queue.timed_out += 1
            return settled + 1
        if settled < len(batch.outcomes):
            # It returned an awaitable: await it here, before the next event.
            try:
                settled += await self._await(handler, events[settled], batch.outcomes[settled])
            except BaseException:
                queue.aborted += len(events) - settled
                raise
        return settled

    def _count(
        self, handler: Handler, events: list[Event], outcomes: list[Any], *, final: bool
    ) -> int:
        """Count the finished calls; stops before an awaitable (unless ``final``: then
        it is closed unawaited and left to the caller's abort count)."""
        queue = self._queue
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                queue.handled += 1
            elif isinstance(outcome, BaseException):
                failure = failure_instead_of(outcome)
                queue.handler_failed(handler.name, events[index], failure or outcome)
                queue.failed += 1
            else:
                if final and inspect.iscoroutine(outcome):
                    outcome.close()
                return index
        return len(outcomes)

    async def _await(self, handler: Handler, event: Event, awaitable: Any) -> int:
        queue = self._queue
        self._slot.event = event
        try:
            with anyio.move_on_after(handler.timeout) as scope:
                await awaitable
        except Exception as exc:
            queue.handler_failed(handler.name, event, exc)
            queue.failed += 1
            return 1
        except BaseException as exc:
            if (failure := failure_instead_of(exc)) is None:
                raise
            queue.handler_failed(handler.name, event, failure)
            queue.failed += 1
            return 1
        if scope.cancelled_caught:
            queue.handler_timed_out(handler, event)
            queue.timed_out += 1
        else:
            queue.handled += 1
        return 1
