"""The names tracing gives its tracer and its span attributes, and how it records failures."""

from __future__ import annotations

import traceback
from enum import Enum
from typing import Final

from opentelemetry.trace import Span, Status, StatusCode

from .._events import EventTypeLike
from .._invoke import describe_error

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "EVENT_ID",
    "EVENT_TYPE",
    "HANDLER",
    "JOB_FIRE_TIME",
    "JOB_ID",
    "JOB_LATENESS",
    "OUTCOME",
    "TRACER_NAME",
    "record_failure",
    "type_name",
]

#: The instrumentation scope of every span eventsched makes.
TRACER_NAME: Final = "eventsched"

# Our own namespace, as OpenTelemetry asks of attributes no convention defines. The
# messaging conventions' attributes are left out: each attribute costs the SDK a few
# microseconds per span, and these say what eventsched's spans need to.
EVENT_ID: Final = "eventsched.event.id"
EVENT_TYPE: Final = "eventsched.event.type"
CORRELATION_ID: Final = "eventsched.correlation_id"
CAUSATION_ID: Final = "eventsched.causation_id"
HANDLER: Final = "eventsched.handler"
OUTCOME: Final = "eventsched.outcome"
JOB_ID: Final = "eventsched.job.id"
JOB_FIRE_TIME: Final = "eventsched.job.fire_time"
JOB_LATENESS: Final = "eventsched.job.lateness"


def type_name(event_type: EventTypeLike) -> str:
    """An event type as text for a span name: a member's value (``job_started``) when it
    is a string, its ``Class.NAME`` otherwise, a plain ``str`` as it is."""
    if event_type.__class__ is str:
        return event_type
    if isinstance(event_type, Enum):
        value = event_type.value
        if isinstance(value, str):
            return str.__str__(value)
        return f"{type(event_type).__qualname__}.{event_type.name}"
    return str.__str__(event_type)


def record_failure(span: Span, exc: BaseException, outcome: str) -> None:
    """Status ERROR, the outcome, and the exception as the conventions' ``exception``
    event; never raises, whatever the exception's ``__str__`` does (``describe_error``,
    and ``traceback`` guards its own calls), unlike ``Span.record_exception``."""
    described = describe_error(exc)
    kind = type(exc).__qualname__
    span.set_attribute(OUTCOME, outcome)
    span.set_status(Status(StatusCode.ERROR, described))
    span.add_event(
        "exception",
        {
            "exception.type": kind,
            "exception.message": described.removeprefix(kind).removeprefix(": "),
            "exception.stacktrace": "".join(traceback.format_exception(exc)),
        },
    )


def record_error(span: Span, outcome: str, description: str) -> None:
    """Status ERROR and the outcome, with no exception to show (a timeout, an abort)."""
    span.set_attribute(OUTCOME, outcome)
    span.set_status(Status(StatusCode.ERROR, description))
