"""The flat set of exceptions eventsched raises.

Every message names the value at fault and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "EventschedError",
    "InvalidEventError",
    "QueueFullError",
    "SchedulerStateError",
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

    For example entering it twice, or emitting before it has started.
    """
