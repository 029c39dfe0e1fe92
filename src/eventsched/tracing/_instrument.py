"""``instrument(scheduler)``: turn tracing on for one scheduler, for the rest of its life."""

from __future__ import annotations

import functools
import weakref

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from .._exceptions import SchedulerStateError
from .._lifecycle import State
from .._scheduler import EventScheduler
from ._attributes import TRACER_NAME
from ._emitters import MAX_REMEMBERED_EMITS, Emitters
from ._handlers import HandlerSpans
from ._jobs import trace_runs

__all__ = ["instrument", "is_instrumented"]

# Which schedulers are traced; weak, so that a traced scheduler can be collected.
_instrumented: weakref.WeakSet[EventScheduler] = weakref.WeakSet()


def instrument(
    scheduler: EventScheduler,
    *,
    tracer_provider: TracerProvider | None = None,
    remember: int = MAX_REMEMBERED_EMITS,
) -> None:
    """Trace ``scheduler``: a span per handler call of an event, one per job run.

    Call it once, before the scheduler starts or while it runs; it lasts as long as the
    scheduler. Handlers registered before or after are traced alike.

    :param tracer_provider: where spans go; by default OpenTelemetry's global provider
        (``trace.set_tracer_provider``, or what ``opentelemetry-instrument`` set up).
        With the API alone, or no provider set, spans are OpenTelemetry's no-op ones.
    :param remember: how many recent events' emitter spans are kept for the links
        (:data:`MAX_REMEMBERED_EMITS`); an older event's spans have no link
    :raises SchedulerStateError: the scheduler is already instrumented, or has stopped
    :raises ValueError: ``remember`` is not a positive int
    """
    if scheduler in _instrumented:
        raise SchedulerStateError("this EventScheduler is already instrumented for tracing")
    if scheduler.state in (State.STOPPING, State.STOPPED):
        raise SchedulerStateError(
            f"this EventScheduler is {scheduler.state.value}: nothing left to trace"
        )
    emitters = Emitters(remember)
    from .. import __version__  # here: the package is fully imported by now

    tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
    # The emit methods first: from then on, every event emitted inside a span notes it,
    # so the handlers' spans (next) find their emitters.
    emit, emit_nowait = emitters.wrap_emits(
        scheduler.emit, scheduler.emit_nowait, scheduler.max_event_bytes
    )
    # On this object only: the class's methods, which every other scheduler calls, stay
    # as they are (no test per event for "is tracing on").
    object.__setattr__(scheduler, "emit", functools.wraps(EventScheduler.emit)(emit))
    object.__setattr__(
        scheduler, "emit_nowait", functools.wraps(EventScheduler.emit_nowait)(emit_nowait)
    )
    scheduler._registry.decorate(HandlerSpans(tracer, emitters))
    trace_runs(scheduler.jobs._runs, tracer, emitters)
    _instrumented.add(scheduler)


def is_instrumented(scheduler: EventScheduler) -> bool:
    """Whether :func:`instrument` was called on ``scheduler``."""
    return scheduler in _instrumented
