"""The event types eventsched itself emits, and what may name an event type."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TypeAlias

from ._eventchecks import _SAFE_TYPE_CLASSES

__all__ = ["EventType", "EventTypeLike"]


class EventType(StrEnum):
    """The event types eventsched itself emits or that the original demo knew.

    Because this is a ``StrEnum``, a member equals its value: handlers subscribed to
    ``"job_failed"`` receive ``EventType.JOB_FAILED`` events. Your own types need no
    change here: use your own ``Enum`` or plain strings.
    """

    JOB_STARTED = "job_started"
    JOB_COMPLETED = "job_completed"
    JOB_FAILED = "job_failed"
    JOB_MISSED = "job_missed"
    JOB_RETRY = "job_retry"
    SHUTDOWN_REQUESTED = "shutdown_requested"
    EVENTS_DROPPED = "events_dropped"


EventTypeLike: TypeAlias = str | Enum

_SAFE_TYPE_CLASSES.add(EventType)  # our own enum: hashes and compares as str does
