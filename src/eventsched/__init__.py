"""eventsched: a structured-concurrency event scheduler for asyncio and trio, via anyio.

The library logs through loguru but never configures sinks, and is disabled until the
application enables it (``logger.enable("eventsched")``, as ``python -m eventsched`` does).
"""

from __future__ import annotations

from loguru import logger

from ._bus import CHECKPOINT_EVERY
from ._clock import Clock, SystemClock
from ._events import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_ID_LENGTH,
    Event,
    EventType,
    EventTypeLike,
    FrozenDict,
    current_event,
)
from ._exceptions import (
    CallRefusedError,
    EventschedError,
    InvalidEventError,
    QueueFullError,
    SchedulerStateError,
    StrayCancellationError,
)
from ._exit import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_WATCHDOG,
)
from ._handlers import ALL_EVENTS, Handler, HandlerFunc
from ._invoke import AbandonedCalls, abandoned_calls
from ._jobs import (
    ConflictingIdError,
    Job,
    JobLookupError,
    JobScheduler,
    JobSchedulerState,
    JobStatistics,
    MissReason,
)
from ._jobstate import JobStateError
from ._scheduler import EventScheduler, SchedulerState, Service
from ._stats import DropReason, OverflowPolicy, RejectReason, Statistics
from ._summary import format_summary

__all__ = [
    "ALL_EVENTS",
    "CHECKPOINT_EVERY",
    "DEFAULT_MAX_EVENT_BYTES",
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_WATCHDOG",
    "MAX_ID_LENGTH",
    "AbandonedCalls",
    "CallRefusedError",
    "Clock",
    "ConflictingIdError",
    "DropReason",
    "Event",
    "EventScheduler",
    "EventType",
    "EventTypeLike",
    "EventschedError",
    "FrozenDict",
    "Handler",
    "HandlerFunc",
    "InvalidEventError",
    "Job",
    "JobLookupError",
    "JobScheduler",
    "JobSchedulerState",
    "JobStateError",
    "JobStatistics",
    "MissReason",
    "OverflowPolicy",
    "QueueFullError",
    "RejectReason",
    "SchedulerState",
    "SchedulerStateError",
    "Service",
    "Statistics",
    "StrayCancellationError",
    "SystemClock",
    "abandoned_calls",
    "current_event",
    "format_summary",
]

logger.disable("eventsched")
