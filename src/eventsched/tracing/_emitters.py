"""Which span each event was emitted in: what its ``process`` spans link to.

The emit methods of an instrumented scheduler build the event first (the same
admission every emit goes through), note the span current at that moment under the
event's id, then hand the ready event on. Noting it *before* the event is queued means
no worker can take the event before its emitter is known; noting the emitter itself,
rather than looking the cause up by ``causation_id``, keeps the link right when an
event has several handlers, or when a job run and a handler of its ``JOB_STARTED``
both emit events naming the same cause.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext

from .._admission import admit
from .._events import Event, EventTypeLike
from .._exceptions import InvalidEventError

__all__ = ["MAX_REMEMBERED_EMITS", "Emitters"]

#: How many events' emitters are remembered (the most recent ones emitted inside a
#: span). An event still queued after this many later emits gets no link: its spans
#: are made all the same. 10 000 entries hold about 3 MB; the default queue holds
#: 1000 events, so only a long queue (or events that are never handled) loses links.
MAX_REMEMBERED_EMITS: Final = 10_000

_NO_LINKS: Final[Sequence[Link]] = ()

AsyncEmit = Callable[..., Awaitable[bool]]
SyncEmit = Callable[..., bool]


class Emitters:
    """Event id -> the span context it was emitted in, oldest forgotten first."""

    __slots__ = ("_bound", "_lock", "_spans")

    def __init__(self, bound: int = MAX_REMEMBERED_EMITS) -> None:
        if bound.__class__ is not int or bound < 1:
            raise ValueError(f"remember={bound!r} must be a positive int")
        self._bound = bound
        self._spans: OrderedDict[str, SpanContext] = OrderedDict()
        # Emits come from the loop and from threads (sync handlers and jobs); the
        # insert-then-evict pair must not interleave with another's.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._spans)

    def note(self, event: Event) -> None:
        """Remember the span current now as ``event``'s emitter (if there is one)."""
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return
        spans = self._spans
        with self._lock:
            spans[event.id] = context
            if len(spans) > self._bound:
                spans.popitem(last=False)

    def links(self, event: Event) -> Sequence[Link]:
        """The link to ``event``'s emitter, if remembered. Read, not removed: each
        handler of the event gets its own span, and each links to the emitter."""
        context = self._spans.get(event.id)
        return _NO_LINKS if context is None else (Link(context),)

    def wrap_emits(
        self, emit: AsyncEmit, emit_nowait: SyncEmit, max_bytes: int
    ) -> tuple[AsyncEmit, SyncEmit]:
        """``emit`` and ``emit_nowait`` that note each event's emitter before queueing it."""

        def made(
            event: Event | EventTypeLike,
            data: Mapping[str, Any] | None,
            correlation_id: str | None,
            causation_id: str | None,
        ) -> Event | None:
            try:
                ready = admit(event, data, correlation_id, causation_id, max_bytes)
            except (InvalidEventError, TypeError):
                return None  # the original emit refuses it again, and counts it there
            self.note(ready)
            return ready

        async def traced_emit(
            event: Event | EventTypeLike,
            data: Mapping[str, Any] | None = None,
            *,
            correlation_id: str | None = None,
            causation_id: str | None = None,
        ) -> bool:
            ready = made(event, data, correlation_id, causation_id)
            if ready is None:
                return await emit(
                    event, data, correlation_id=correlation_id, causation_id=causation_id
                )
            return await emit(ready)

        def traced_emit_nowait(
            event: Event | EventTypeLike,
            data: Mapping[str, Any] | None = None,
            *,
            correlation_id: str | None = None,
            causation_id: str | None = None,
        ) -> bool:
            ready = made(event, data, correlation_id, causation_id)
            if ready is None:
                return emit_nowait(
                    event, data, correlation_id=correlation_id, causation_id=causation_id
                )
            return emit_nowait(ready)

        return traced_emit, traced_emit_nowait
