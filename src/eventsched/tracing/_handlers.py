"""``process <type>`` spans: each handler wrapped, once, when the routing table is built.

The wrapper runs where the handler runs: an async handler's on the loop, inside the
handler's timeout scope; a sync handler's in its worker thread. So the span measures
the call itself, and what the handler emits is emitted with the span current.

Outcomes, as the scheduler counts them: ``handled``; ``failed`` (an exception);
``timed_out`` (an async handler cancelled at its timeout's deadline; a sync one whose
call took longer than its timeout, which the scheduler had given up waiting for and
counted timed out); ``aborted`` (an async handler cancelled by shutdown). Every one but
``handled`` sets the span's status to ERROR.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer

from .._events import Event
from .._pipeline._routing import Handler, HandlerFunc
from ._attributes import (
    CAUSATION_ID,
    CORRELATION_ID,
    EVENT_ID,
    EVENT_TYPE,
    HANDLER,
    OUTCOME,
    record_error,
    record_failure,
    type_name,
)
from ._emitters import Emitters

__all__ = ["ROOT", "HandlerSpans"]

#: The context spans start from: none. Each span is the root of its own trace, tied to
#: its emitter by a link, so that the context of whoever started the scheduler (a
#: span around ``async with scheduler``) does not make every event one of its children.
ROOT: Final = otel_context.Context()

_CONSUMER = SpanKind.CONSUMER
_monotonic = time.monotonic


class HandlerSpans:
    """The decorator a scheduler's handler registry is given (``decorate``)."""

    __slots__ = ("_emitters", "_tracer")

    def __init__(self, tracer: Tracer, emitters: Emitters) -> None:
        self._tracer = tracer
        self._emitters = emitters

    def __call__(self, handler: Handler) -> HandlerFunc:
        if handler.is_async:
            return self._async(handler)
        return self._sync(handler)

    def _start(self, handler: Handler, event: Event) -> trace.Span:
        kind = type_name(event.type)
        # Only the attributes these spans are for: the SDK checks every one on the
        # way in, a few microseconds each per span (docs/operations.md, "Cost").
        attributes: dict[str, str] = {
            EVENT_ID: event.id,
            EVENT_TYPE: kind,
            CORRELATION_ID: event.correlation_id,
            HANDLER: handler.name,
        }
        if event.causation_id is not None:
            attributes[CAUSATION_ID] = event.causation_id
        return self._tracer.start_span(
            f"process {kind}",
            context=ROOT,
            kind=_CONSUMER,
            attributes=attributes,
            links=self._emitters.links(event),
        )

    def _async(self, handler: Handler) -> HandlerFunc:
        func: Callable[[Event], Awaitable[Any]] = handler.func
        timeout = handler.timeout
        start = self._start

        async def traced(event: Event) -> None:
            span = start(handler, event)
            token = otel_context.attach(trace.set_span_in_context(span))
            # Inside the handler's timeout scope (the worker entered it): its deadline
            # tells a timeout from a cancellation by shutdown.
            deadline = anyio.current_effective_deadline() if timeout is not None else 0.0
            try:
                await func(event)
            except Exception as exc:
                record_failure(span, exc, "failed")
                raise
            except BaseException as exc:
                if not isinstance(exc, anyio.get_cancelled_exc_class()):
                    record_failure(span, exc, "failed")  # SystemExit and the like
                elif timeout is not None and anyio.current_time() >= deadline:
                    record_error(span, "timed_out", f"handler timed out after {timeout}s")
                else:
                    record_error(span, "aborted", "cancelled by shutdown")
                raise
            else:
                span.set_attribute(OUTCOME, "handled")
            finally:
                otel_context.detach(token)
                span.end()

        return _named(traced, handler)

    def _sync(self, handler: Handler) -> HandlerFunc:
        func: Callable[[Event], Any] = handler.func
        timeout = handler.timeout
        start = self._start

        def traced(event: Event) -> Any:
            span = start(handler, event)
            token = otel_context.attach(trace.set_span_in_context(span))
            began = _monotonic()
            try:
                result = func(event)
            except BaseException as exc:
                record_failure(span, exc, "failed")
                raise
            else:
                if timeout is not None and _monotonic() - began >= timeout:
                    record_error(span, "timed_out", f"handler timed out after {timeout}s")
                else:
                    span.set_attribute(OUTCOME, "handled")
                return result
            finally:
                otel_context.detach(token)
                span.end()

        return _named(traced, handler)


def _named(traced: Callable[..., Any], handler: Handler) -> HandlerFunc:
    # The wrapper answers to the handler's name (in tracebacks and the error reports
    # that fall back to __qualname__).
    traced.__qualname__ = traced.__name__ = handler.name
    return traced
