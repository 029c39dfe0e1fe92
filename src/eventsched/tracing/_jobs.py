"""``job <id>`` spans: one per run, from its ``JOB_STARTED`` to its outcome event.

The seam is the scheduler's one ``Runs`` object (``_jobs/_runs.py``), wrapped on that
object alone, so that the run path of a scheduler without tracing is unchanged:

* its ``_call(job, fire_time)``, a run past its wait for the fire time: the span is
  opened around it and made current, so the run's events and whatever the job emits
  (on the loop, or in its thread, which runs in a copy of the run's context) are
  noted as emitted in it;
* its ``emit(event)``, which every ``JOB_*`` event of a run goes through: the run's
  correlation id comes from its ``JOB_STARTED``, the outcome from ``JOB_COMPLETED`` or
  ``JOB_FAILED`` (whose ``reason`` tells a timeout from an exception).

A run cancelled by shutdown before its outcome event is ``aborted``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .._events import Event, EventType
from .._jobs._entry import Entry
from .._jobs._runs import Runs
from ._attributes import (
    CORRELATION_ID,
    JOB_FIRE_TIME,
    JOB_ID,
    JOB_LATENESS,
    OUTCOME,
    record_error,
)
from ._handlers import ROOT

__all__ = ["trace_runs"]


class _Run:
    """A run's span, and whether its outcome event has been seen."""

    __slots__ = ("decided", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.decided = False


# The run this task is in: set by the wrapped _call, read by the wrapped emit (the job
# scheduler's own task, emitting JOB_MISSED, has none).
_current_run: ContextVar[_Run | None] = ContextVar("eventsched_tracing_run", default=None)


def trace_runs(runs: Runs, tracer: Tracer) -> None:
    """Wrap ``runs._call`` and ``runs.emit`` on this object (see the module's doc)."""
    call: Callable[..., Awaitable[Any]] = runs._call
    emit: Callable[[Event], Awaitable[None]] = runs.emit
    clock = runs._clock

    async def traced_call(job: Entry, fire_time: datetime, *rest: Any) -> Any:
        # As the run measures it: the clock has reached the fire time by now.
        lateness = max(0.0, (clock().now() - fire_time).total_seconds())
        span = tracer.start_span(
            f"job {job.id}",
            context=ROOT,
            kind=SpanKind.INTERNAL,
            attributes={
                JOB_ID: job.id,
                JOB_FIRE_TIME: fire_time.isoformat(),
                JOB_LATENESS: lateness,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        run = _Run(span)
        run_token = _current_run.set(run)
        try:
            return await call(job, fire_time, *rest)
        except BaseException:
            if not run.decided:
                record_error(span, "aborted", "cancelled by shutdown")
            raise
        finally:
            _current_run.reset(run_token)
            otel_context.detach(token)
            span.end()

    async def traced_emit(event: Event) -> None:
        run = _current_run.get()
        if run is not None:
            _note_run_event(run, event)
        await emit(event)

    # Instance attributes shadow the class's methods for this object only.
    object.__setattr__(runs, "_call", traced_call)
    object.__setattr__(runs, "emit", traced_emit)


def _note_run_event(run: _Run, event: Event) -> None:
    span, kind = run.span, event.type
    if kind is EventType.JOB_STARTED:
        span.set_attribute(CORRELATION_ID, event.correlation_id)
    elif kind is EventType.JOB_COMPLETED:
        run.decided = True
        span.set_attribute(OUTCOME, "completed")
    elif kind is EventType.JOB_FAILED:
        run.decided = True
        data = event.data
        outcome = "timed_out" if data.get("reason") == "timeout" else "failed"
        span.set_attribute(OUTCOME, outcome)
        span.set_status(Status(StatusCode.ERROR, f"{data.get('error_type')}: {data.get('error')}"))
        if outcome == "failed":
            # The run caught the exception and left its type and message in the
            # event; recorded as the conventions' exception event.
            span.add_event(
                "exception",
                {
                    "exception.type": str(data.get("error_type")),
                    "exception.message": str(data.get("error")),
                },
            )
