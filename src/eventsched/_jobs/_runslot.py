"""A run attempt's lineage (its ``JOB_STARTED``, built on first use) and the observer seam.

Most runs never need their ``JOB_STARTED`` (nobody listens to it, the job emits
nothing): then it is never built. Whatever asks for it (an event the job emits,
``current_event()``, the outcome event, a retry, an observer) gets the same event, with
the id and correlation id it would have had if it had been emitted.

:class:`RunObserver` is how instrumentation (``eventsched.tracing``) follows runs
without the ``JOB_*`` events, which may never be built: told once when an attempt
starts, in the run's own task and context, and once when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from .._events import Event, EventType, HandlingSlot
from ._entry import Entry

__all__ = ["RunObserver", "RunSlot"]


class _EventMaker(Protocol):
    def event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event: ...


class RunObserver(Protocol):
    """Follows run attempts; both calls run in the attempt's task (and context).

    ``ended`` gets what ``started`` returned, the outcome (``completed``, ``failed``,
    ``timed_out``, ``aborted``), the error's type and message (None when completed) and
    the attempt's :class:`RunSlot` (``slot.event`` is its ``JOB_STARTED``).
    """

    def started(
        self, job: Entry, fire_time: datetime, attempt: int, manual: bool, lateness: float
    ) -> Any: ...

    def ended(
        self,
        token: Any,
        outcome: str,
        error_type: str | None,
        error: str | None,
        slot: RunSlot,
    ) -> None: ...


class RunSlot(HandlingSlot):
    """A run attempt's lineage: its ``JOB_STARTED`` event, built on first use."""

    __slots__ = (
        "_building",
        "_lineage",
        "_maker",
        "_started",
        "attempt",
        "fire_time",
        "job_id",
        "manual",
        "run",
    )

    def __init__(
        self,
        maker: _EventMaker,
        job_id: str,
        fire_time: datetime,
        run: int,
        attempt: int = 1,
        manual: bool = False,
        lineage: Mapping[str, Any] | None = None,
    ) -> None:
        self._maker = maker
        self.job_id = job_id
        self.fire_time = fire_time
        self.run = run
        self.attempt = attempt
        self.manual = manual
        self._lineage = lineage  # a retry's: its first attempt's chain
        self._building = False
        self._started: Event | None = None

    def dated(self) -> dict[str, Any]:
        """The fields every event of the attempt has (its fire time in ISO 8601)."""
        return {
            "job_id": self.job_id,
            "fire_time": self.fire_time.isoformat(),
            "attempt": self.attempt,
            "manual": self.manual,
        }

    @property
    def event(self) -> Event | None:
        started = self._started
        if started is None:
            if self._building:
                return None  # JOB_STARTED itself begins the chain: no parent
            self._building = True
            try:
                data = {**self.dated(), "run": self.run}
                started = self._started = self._maker.event(
                    EventType.JOB_STARTED, data, **(self._lineage or {})
                )
            finally:
                self._building = False
        return started

    @event.setter
    def event(self, value: Event | None) -> None:  # set by nothing: read-only lineage
        raise AttributeError("a run's lineage cannot be replaced")

    def lineage(self) -> dict[str, Any]:
        """What the attempt's other events carry: its correlation id, JOB_STARTED as cause."""
        started = self.event
        assert started is not None  # built on demand
        return {"correlation_id": started.correlation_id, "causation_id": started.id}
