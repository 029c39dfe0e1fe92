"""``job <id>`` spans: one per run attempt, from its start to its outcome.

The seam is the scheduler's one ``Runs`` object (``_jobs/_runs.py``): its ``observer``
(a :class:`~eventsched._jobs._runslot.RunObserver`) is told when an attempt starts, in
the attempt's own task, and when it ends. The span is opened and made current at the
start, so the run's ``JOB_*`` events and whatever the job emits (on the loop, or in its
thread, which runs in a copy of the run's context) are noted as emitted in it; the
outcome, the error and the correlation id come with the end. The run's ``JOB_*``
events go to the queue by their own intake (``Runs._offer``), which notes their span
too. So a run has its span even when no handler listens to ``JOB_*`` events, and those
are then never built (the correlation id is the run's lazily built ``JOB_STARTED``'s,
as it would have been).

A run cancelled by shutdown before its outcome is ``aborted``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .._events import Event
from .._jobs._entry import Entry
from .._jobs._runs import Runs
from .._jobs._runslot import RunSlot
from ._attributes import (
    CORRELATION_ID,
    JOB_FIRE_TIME,
    JOB_ID,
    JOB_LATENESS,
    OUTCOME,
    record_error,
)
from ._emitters import Emitters
from ._handlers import ROOT

__all__ = ["RunSpans", "trace_runs"]


class RunSpans:
    """A :class:`~eventsched._jobs._runslot.RunObserver` that opens a span per attempt."""

    __slots__ = ("_tracer",)

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def started(
        self, job: Entry, fire_time: datetime, attempt: int, manual: bool, lateness: float
    ) -> Any:
        span = self._tracer.start_span(
            f"job {job.id}",
            context=ROOT,
            kind=SpanKind.INTERNAL,
            attributes={
                JOB_ID: job.id,
                JOB_FIRE_TIME: fire_time.isoformat(),
                JOB_LATENESS: lateness,
            },
        )
        # Current for the rest of the attempt (this task, and the job's thread).
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def ended(
        self,
        token: Any,
        outcome: str,
        error_type: str | None,
        error: str | None,
        slot: RunSlot,
    ) -> None:
        span, attached = token
        try:
            started = slot.event
            if started is not None:
                span.set_attribute(CORRELATION_ID, started.correlation_id)
            if outcome == "completed":
                span.set_attribute(OUTCOME, "completed")
            elif outcome == "aborted":
                record_error(span, "aborted", error or "cancelled by shutdown")
            else:
                span.set_attribute(OUTCOME, outcome)
                span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"))
                if outcome == "failed":
                    # The run caught the exception and keeps its type and message;
                    # recorded as the conventions' exception event.
                    span.add_event(
                        "exception",
                        {"exception.type": str(error_type), "exception.message": str(error)},
                    )
        finally:
            otel_context.detach(attached)
            span.end()


def trace_runs(runs: Runs, tracer: Tracer, emitters: Emitters) -> None:
    """Follow the runs of ``runs`` with spans (see the module's documentation).

    The run's own ``JOB_*`` events bypass the scheduler's (wrapped) ``emit``: they go
    straight to the queue's intake for them (``Runs._offer``), wrapped here on this
    object so that each notes the span it was emitted in, as every other event does.
    """
    runs.observer = RunSpans(tracer)
    offer = runs._offer
    if offer is not None:

        def noted_offer(event: Event) -> bool:
            emitters.note(event)
            return offer(event)

        runs._offer = noted_offer
