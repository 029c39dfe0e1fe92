"""eventsched: a structured-concurrency event scheduler for asyncio and trio, via anyio.

The library logs through loguru but never configures sinks, and is disabled until the
application enables it (``logger.enable("eventsched")``, as ``python -m eventsched`` does).
"""

from __future__ import annotations

# isort: split
# First, before the imports below: under ``python -m eventsched`` this installs the
# signal guard (it does nothing for library users; see _signals.install_for_command).
from . import _signals  # noqa: F401

# isort: split
import importlib.metadata as _metadata
from typing import TYPE_CHECKING as _TYPE_CHECKING

from loguru import logger

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
    ConflictingIdError,
    EventschedError,
    InvalidEventError,
    JobBusyError,
    JobLookupError,
    JobStateError,
    QueueFullError,
    SchedulerStateError,
    StrayCancellationError,
    UserBaseExceptionError,
)
from ._exit import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SIGHUP,
    EXIT_SIGINT,
    EXIT_SIGQUIT,
    EXIT_SIGTERM,
    EXIT_WATCHDOG,
)
from ._invoke import AbandonedCalls, abandoned_calls
from ._jobs import (
    Backoff,
    Job,
    JobScheduler,
    JobSchedulerState,
    JobStatistics,
    JobStore,
    JobTimings,
    MemoryJobStore,
    MissReason,
    RunHistogram,
    SavedJob,
    SQLiteJobStore,
)
from ._logcontext import correlation_patcher

if _TYPE_CHECKING:
    from ._postgres import PostgresJobStore
from ._pipeline import (
    ALL_EVENTS,
    CHECKPOINT_EVERY,
    DropReason,
    Handler,
    HandlerFunc,
    OverflowPolicy,
    RejectReason,
    Statistics,
    format_summary,
)
from ._scheduler import (
    MAX_GRACE_PERIOD,
    MAX_QUEUE_SIZE,
    MAX_WORKERS,
    EventScheduler,
    SchedulerState,
    Service,
)

__all__ = [
    "ALL_EVENTS",
    "CHECKPOINT_EVERY",
    "DEFAULT_MAX_EVENT_BYTES",
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGQUIT",
    "EXIT_SIGTERM",
    "EXIT_WATCHDOG",
    "MAX_GRACE_PERIOD",
    "MAX_ID_LENGTH",
    "MAX_QUEUE_SIZE",
    "MAX_WORKERS",
    "AbandonedCalls",
    "Backoff",
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
    "JobBusyError",
    "JobLookupError",
    "JobScheduler",
    "JobSchedulerState",
    "JobStateError",
    "JobStatistics",
    "JobStore",
    "JobTimings",
    "MemoryJobStore",
    "MissReason",
    "OverflowPolicy",
    "PostgresJobStore",
    "QueueFullError",
    "RejectReason",
    "RunHistogram",
    "SQLiteJobStore",
    "SavedJob",
    "SchedulerState",
    "SchedulerStateError",
    "Service",
    "Statistics",
    "StrayCancellationError",
    "SystemClock",
    "UserBaseExceptionError",
    "__version__",
    "abandoned_calls",
    "correlation_patcher",
    "current_event",
    "format_summary",
]

try:
    #: The installed distribution's version (``eventsched --version`` prints it too).
    __version__ = _metadata.version("eventsched")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

logger.disable("eventsched")


#: Public names imported when first used (they need an optional extra).
_LAZY = frozenset({"PostgresJobStore"})


def __getattr__(name: str) -> object:
    # PostgresJobStore needs psycopg (the ``postgres`` extra): imported when first named,
    # so that ``import eventsched`` works without it.
    if name == "PostgresJobStore":
        from ._postgres import PostgresJobStore

        return PostgresJobStore
    raise AttributeError(f"module 'eventsched' has no attribute {name!r}")
