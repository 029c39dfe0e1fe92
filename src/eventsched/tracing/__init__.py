"""Traces for a scheduler through OpenTelemetry: a span per handled event and per job run.

Needs the ``otel`` extra (``pip install 'eventsched[otel]'``, the OpenTelemetry API) and,
to record anything, an SDK the application configures. Not imported by
``import eventsched``::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from eventsched import EventScheduler
    from eventsched.tracing import instrument

    trace.set_tracer_provider(TracerProvider())  # and its span processor and exporter
    scheduler = EventScheduler()
    instrument(scheduler)

Spans (docs/operations.md, "Tracing", has the attributes and the reasons):

* ``process <type>`` (kind CONSUMER), one per handler call of an event: a single
  handler per type makes it one span per handled event;
* ``job <id>``, one per job run, from its ``JOB_STARTED`` to its outcome event;
* each event's ``process`` spans link to the span it was emitted in (a handler's
  ``process`` span, a ``job`` run, or a span of the application's own), remembered for
  the last :data:`MAX_REMEMBERED_EMITS` events emitted in a span.

A scheduler that is not instrumented pays nothing: the handlers are wrapped when the
routing table is built and the emit methods replaced on the one scheduler object, so
the event path of every other scheduler is the code it was.
"""

from __future__ import annotations

try:
    import opentelemetry.trace  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised without the extra only
    raise ImportError(
        "eventsched.tracing needs the OpenTelemetry API: pip install 'eventsched[otel]'"
    ) from error

from ._attributes import (
    CAUSATION_ID,
    CORRELATION_ID,
    EVENT_ID,
    EVENT_TYPE,
    HANDLER,
    JOB_FIRE_TIME,
    JOB_ID,
    JOB_LATENESS,
    OUTCOME,
    TRACER_NAME,
)
from ._emitters import MAX_REMEMBERED_EMITS
from ._instrument import instrument, is_instrumented

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "EVENT_ID",
    "EVENT_TYPE",
    "HANDLER",
    "JOB_FIRE_TIME",
    "JOB_ID",
    "JOB_LATENESS",
    "MAX_REMEMBERED_EMITS",
    "OUTCOME",
    "TRACER_NAME",
    "instrument",
    "is_instrumented",
]
