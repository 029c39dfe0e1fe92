"""The flat set of exceptions eventsched raises.

Every message names the value at fault and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CallRefusedError",
    "ConflictingIdError",
    "EventschedError",
    "InvalidEventError",
    "JobBusyError",
    "JobLookupError",
    "JobStateError",
    "QueueFullError",
    "SchedulerStateError",
    "StrayCancellationError",
    "UserBaseExceptionError",
]


class EventschedError(Exception):
    """Base class of every error eventsched raises on purpose."""


class InvalidEventError(EventschedError, ValueError):
    """Event data was refused: not a mapping, not JSON-compatible, or too large.

    Nothing of the event was accepted; the refusal is counted as rejected
    (reason ``invalid``) by the scheduler that was asked to emit it.
    """

    #: Set once a scheduler has counted this refusal, so that it is counted once.
    counted: bool = False


class QueueFullError(EventschedError):
    """The event queue was full and the overflow policy is ``reject``.

    The event was not accepted; it is counted as rejected (reason ``queue_full``).
    """


class SchedulerStateError(EventschedError, RuntimeError):
    """The scheduler was used in a state that does not allow the call.

    For example entering it a second time (even while the first entry is still
    starting), or adding a service or configuring jobs once it has started. Emitting
    before start is not an error: the emit is refused, counted as ``not_running``.
    """


class StrayCancellationError(EventschedError):
    """A handler or job raised ``asyncio.CancelledError`` that was not meant for it.

    On asyncio, awaiting a future or task that *another* task cancelled raises
    ``CancelledError`` in a task nobody is cancelling. Passed on, it would end the
    handler task (or the job run) as if shutdown had cancelled it. Instead it is
    counted as a failure of that handler or job, with this error logged in its place
    and the original as its ``__cause__``. (trio has no such case: its ``Cancelled``
    comes only from a cancel scope around the code that sees it.)
    """


class ConflictingIdError(EventschedError, ValueError):
    """A job with this id exists already; pass another ``id`` or ``replace_existing=True``."""


class JobLookupError(EventschedError, LookupError):
    """No job has this id (it was never added, was removed, or has finished)."""


class JobStateError(EventschedError):
    """The job store cannot be used: corrupt, foreign, of another version, a symlink,
    read-only, or held by another process.

    The message is one line naming the file and what to do. Nothing in it was acted
    upon; fix the file, or point ``state_file`` elsewhere.
    """


class UserBaseExceptionError(EventschedError):
    """A handler or job raised a ``BaseException`` that is not an ``Exception``.

    ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit`` or a class of your own
    derived from ``BaseException``: passed on, it would end the handler task or the
    job run as a cancellation does (and on asyncio, ``SystemExit`` and
    ``KeyboardInterrupt`` leave the event loop at once). Instead the call counts as
    failed, with this error logged in its place and the original as its
    ``__cause__``. ``SystemExit`` and ``KeyboardInterrupt`` also stop the scheduler
    gracefully, which then raises the original again once everything is accounted
    for: ``SystemExit(3)`` from a handler makes ``python -m eventsched`` exit 3.
    """


class CallRefusedError(EventschedError, RuntimeError):
    """A sync handler or job was not called, because earlier calls of it still hang.

    Each sync call that was abandoned (its timeout passed, or shutdown cancelled it)
    keeps its worker thread until it really returns. Past a few such calls of one
    callable, new calls of it are refused at once, as failures of the handler or job,
    rather than starting ever more threads; they run again once the earlier calls
    return. See :func:`eventsched.abandoned_calls` and ``Statistics.abandoned_calls``.
    """


class JobBusyError(EventschedError, RuntimeError):
    """``run_job`` was refused: ``max_instances`` runs of the job are in progress.

    A retry waiting for its delay counts as a run in progress. Nothing was started or
    counted; try again once a run has ended.
    """
