"""Runs: a job's call at a fire time, its ``JOB_*`` events, and the run counters.

Each run emits ``JOB_STARTED``, then ``JOB_COMPLETED`` or ``JOB_FAILED``, with a
correlation id of its own that every event the job emits, and every event handlers
emit in response, inherits. Async jobs run on the loop, sync jobs in a worker thread
(:func:`eventsched._invoke.call_user`, as handlers are called), each run on a lane
(:mod:`._lanes`).

A ``JOB_*`` event that no handler would receive (none subscribed to its type, nor to
``"*"``) is not built at all: at 10,000 runs a second, building, queueing and
"handling" two events per run nobody reads was a third of the CPU. The run counters
here count every run and miss either way; the event ledger (``statistics()``) counts
the ``JOB_*`` events that were emitted. A run's ``JOB_STARTED`` is still its lineage:
it is built the moment something asks for it (an event the job emits, or
``current_event()``), with the same id and correlation id it would have had.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from .._clock import Clock
from .._events import Event, EventType, HandlingSlot, _handling
from .._exceptions import EventschedError
from .._invoke import call_user, describe_error
from ._alarms import Alarms
from ._entry import Entry
from ._lanes import Lanes
from ._planning import Miss
from ._records import MissReason
from ._timings import DURATION_BUCKETS, LATENESS_BUCKETS, Buckets, JobTimings

__all__ = ["Emitter", "Runs", "format_duration", "give_back", "summarize_result"]

log = logger.bind(component="jobs")

#: Fire times listed in one ``JOB_MISSED`` event; ``count`` has the full number.
MAX_LISTED = 10


class Emitter(Protocol):
    """Where the job scheduler's events go (the EventScheduler, which counts them)."""

    max_event_bytes: int

    async def emit(self, event: Event) -> bool: ...


def _always(event_type: EventType) -> bool:
    return True


class _RunSlot(HandlingSlot):
    """A run's lineage: its ``JOB_STARTED`` event, built on first use.

    Most runs never need it (nobody listens to ``JOB_STARTED``, the job emits
    nothing): then it is never built.
    """

    __slots__ = ("_building", "_runs", "_started", "fire_time", "job_id", "run")

    def __init__(self, runs: Runs, job_id: str, fire_time: datetime, run: int) -> None:
        self._runs = runs
        self.job_id = job_id
        self.fire_time = fire_time
        self.run = run
        self._building = False
        self._started: Event | None = None

    def dated(self) -> dict[str, Any]:
        """The fields every event of the run has (its fire time in ISO 8601)."""
        return {"job_id": self.job_id, "fire_time": self.fire_time.isoformat()}

    @property
    def event(self) -> Event | None:
        started = self._started
        if started is None:
            if self._building:
                return None  # JOB_STARTED itself begins the chain: no parent
            self._building = True
            try:
                data = {**self.dated(), "run": self.run}
                started = self._started = self._runs.event(EventType.JOB_STARTED, data)
            finally:
                self._building = False
        return started

    @event.setter
    def event(self, value: Event | None) -> None:  # set by nothing: read-only lineage
        raise AttributeError("a run's lineage cannot be replaced")


def format_duration(seconds: float) -> str:
    """One way to write a duration in logs: ``0.087 ms`` below a second, else ``1.250 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.3f} ms"
    return f"{seconds:.3f} s"


class Runs:
    """Starts the runs of jobs in a task group, and counts them and the missed fire times.

    ``accepting()`` says whether a run whose fire time has come may still start;
    ``ended(job, fire_time)`` is told when a run ends (or never started), so that its
    claim can be cleared in the job store.
    """

    def __init__(
        self,
        emitter: Emitter,
        clock: Callable[[], Clock],
        accepting: Callable[[], bool],
        ended: Callable[[Entry, datetime], None],
    ) -> None:
        self._emitter = emitter
        self._clock = clock
        self._accepting = accepting
        self._ended = ended
        # Whether anyone would receive an event of a type (EventScheduler.has_handlers); an
        # emitter without it gets every event.
        self._wants: Callable[[EventType], bool] = getattr(emitter, "has_handlers", _always)
        # The EventScheduler's intake for its own reports (see Runs.emit).
        self._offer: Callable[[Event], bool] | None = getattr(emitter, "_offer_job_event", None)
        self._lanes: Lanes | None = None
        self._alarms = Alarms(clock)
        self.idle = anyio.Event()
        self.idle.set()
        self.running = 0
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.timed_out = 0
        self.aborted = 0
        self.missed = dict.fromkeys(MissReason, 0)
        self.lateness = Buckets(LATENESS_BUCKETS)
        self.duration = Buckets(DURATION_BUCKETS)

    def timings(self) -> JobTimings:
        return JobTimings(self.lateness.snapshot(), self.duration.snapshot())

    # -- events ----------------------------------------------------------------------

    def event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event:
        return Event.create(event_type, data, max_bytes=self._emitter.max_event_bytes, **lineage)

    async def emit(self, event: Event) -> None:
        offer = self._offer
        if offer is not None:
            # Never waits, never evicts a user's event: a full queue drops it, counted
            # as ``job_event`` (and reported in EVENTS_DROPPED).
            offer(event)
            return
        try:
            await self._emitter.emit(event)
        except EventschedError as exc:  # e.g. the queue is full under "reject": counted
            log.warning("Event {} ({}) was not accepted: {}", event.id, event.type, exc)

    def missed_event(self, job: Entry, miss: Miss | Sequence[Miss], now: datetime) -> Event | None:
        """Count and log the misses of one job in one pass; describe them as one
        ``JOB_MISSED`` event if anyone would receive that.

        Several reasons at once (some fire times coalesced, the last one over
        ``max_instances``) still make one event: ``reason`` is the first, ``by_reason``
        has them all, ``count`` the total.
        """
        misses = (miss,) if isinstance(miss, Miss) else tuple(miss)
        by_reason: dict[str, int] = {}
        for one in misses:
            count = len(one.fire_times)
            self.missed[one.reason] += count
            key = str(one.reason)
            job.missed[key] = job.missed.get(key, 0) + count
            by_reason[key] = by_reason.get(key, 0) + count
        fire_times = sorted(at for one in misses for at in one.fire_times)
        reason = misses[0].reason
        first = fire_times[0].isoformat() if fire_times else None
        log.warning(
            "Job {}: {} fire time(s) missed ({}), first {}",
            job.id,
            len(fire_times),
            ", ".join(by_reason),
            first,
        )
        if not self._wants(EventType.JOB_MISSED):
            return None
        data: dict[str, Any] = {
            "job_id": job.id,
            "reason": str(reason),
            "count": len(fire_times),
            "by_reason": by_reason,
            "more": any(one.more for one in misses),
            "fire_times": [at.isoformat() for at in fire_times[:MAX_LISTED]],
            "first_fire_time": first,
            "last_fire_time": fire_times[-1].isoformat() if fire_times else None,
            "detected_at": now.isoformat(),
        }
        reasons = {one.reason for one in misses}
        if MissReason.MAX_INSTANCES in reasons:
            data["running"] = job.running
            data["max_instances"] = job.max_instances
        if MissReason.MISFIRE in reasons:
            data["misfire_grace_time"] = job.misfire_grace_time
        return self.event(EventType.JOB_MISSED, data)

    # -- runs ------------------------------------------------------------------------

    def start(self, runs: TaskGroup, job: Entry, fire_time: datetime) -> None:
        """Start a run that waits for ``fire_time`` (up to a moment away), then calls.

        The run goes to a lane (:mod:`._lanes`) in ``runs``.
        """
        if self.running == 0:
            self.idle = anyio.Event()
        self.running += 1
        job.running += 1
        job.runs += 1
        self.started += 1
        lanes = self._lanes
        if lanes is None or lanes.group is not runs:
            lanes = self._lanes = Lanes(runs, self._run, self._lost)
        lanes.submit(job, fire_time)

    def close(self) -> None:
        """The task group of the lanes is closing: idle lanes end."""
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None

    def _lost(self, job: Entry, fire_time: datetime) -> None:
        give_back(job, fire_time)
        self._never_started(job, fire_time)

    async def wait_idle(self) -> None:
        while self.running:
            await self.idle.wait()

    async def _run(self, job: Entry, fire_time: datetime) -> None:
        try:
            # Started a moment early: wait for the fire time itself, on the timer this
            # run shares with those due in the same millisecond
            # (:mod:`._alarms`). A loop, because a loop clock coarser than the wall
            # clock (uvloop's counts whole milliseconds) can wake us a fraction of a
            # millisecond early; the next wait covers that remainder.
            clock = self._clock()
            while (ahead := (fire_time - clock.now()).total_seconds()) > 0:
                await self._alarms.wait_for(fire_time)
            # (never negative: the loop ended once the clock reached the fire time)
        except BaseException:
            give_back(job, fire_time)
            self._never_started(job, fire_time)  # cancelled before its time: not a run
            raise
        if not self._accepting():
            give_back(job, fire_time)
            self._never_started(job, fire_time)  # shutdown began before its time
            return
        try:
            await self._call(job, fire_time, -ahead)
        finally:
            job.running -= 1
            self._finish(job, fire_time)

    async def _call(self, job: Entry, fire_time: datetime, lateness: float) -> None:
        self.lateness.observe(lateness)
        loop_start = anyio.current_time()
        wants = self._wants
        # This task's context: the events the job creates inherit its lineage.
        slot = _RunSlot(self, job.id, fire_time, job.runs)
        _handling.set(slot)
        finished = False
        try:
            if wants(EventType.JOB_STARTED) and (started := slot.event) is not None:
                await self.emit(started)
            result: Any = None
            call: Callable[..., Any] = job.func
            args = job.args
            if job.kwargs:
                call, args = functools.partial(call, *args, **job.kwargs), ()
            try:
                if job.timeout is None:
                    # No scope of its own: the lanes' task group cancels it at shutdown.
                    timed_out = False
                    result = await call_user(call, *args, in_thread=not job.is_async)
                else:
                    with anyio.move_on_after(job.timeout) as scope:
                        result = await call_user(call, *args, in_thread=not job.is_async)
                    timed_out = scope.cancelled_caught
            except Exception as exc:
                finished = True
                duration = anyio.current_time() - loop_start
                self.duration.observe(duration)
                outcome = self._failed(job, slot, duration, exc)
            else:
                finished = True
                duration = anyio.current_time() - loop_start
                self.duration.observe(duration)
                if timed_out:
                    outcome = self._timed_out(job, slot, duration)
                else:
                    self.completed += 1
                    outcome = None
                    if wants(EventType.JOB_COMPLETED):
                        data = {
                            **slot.dated(),
                            "duration": duration,
                            "result": summarize_result(result),
                        }
                        outcome = self.event(EventType.JOB_COMPLETED, data, **_lineage(slot))
            if outcome is not None:
                await self.emit(outcome)
        except BaseException:
            if not finished:
                self.aborted += 1
                log.warning(
                    "Job {} run (fire time {}) was cancelled by shutdown: aborted",
                    job.id,
                    fire_time,
                )
            raise

    def _finish(self, job: Entry, fire_time: datetime) -> None:
        self.running -= 1
        if self.running == 0:
            self.idle.set()
        self._ended(job, fire_time)

    def _never_started(self, job: Entry, fire_time: datetime) -> None:
        """Take back what start() counted for a run whose fire time never came."""
        job.running -= 1
        job.runs -= 1
        self.started -= 1
        self._finish(job, fire_time)

    def _failed(
        self,
        job: Entry,
        slot: _RunSlot,
        duration: float,
        exc: Exception,
    ) -> Event | None:
        self.failed += 1
        job.failures += 1
        kind = type(exc).__qualname__
        described = describe_error(exc)  # never raises, whatever the exception's __str__ does
        lineage = _lineage(slot)  # a failure is logged with its correlation id
        log.opt(exception=exc).error(
            "Job {} failed after {} (correlation {}): {}",
            job.id,
            format_duration(duration),
            lineage["correlation_id"],
            described,
        )
        if not self._wants(EventType.JOB_FAILED):
            return None
        data = {
            **slot.dated(),
            "duration": duration,
            "reason": "exception",
            "error_type": kind,
            "error": described.removeprefix(kind).removeprefix(": "),
        }
        return self.event(EventType.JOB_FAILED, data, **lineage)

    def _timed_out(self, job: Entry, slot: _RunSlot, duration: float) -> Event | None:
        self.failed += 1
        self.timed_out += 1
        job.failures += 1
        lineage = _lineage(slot)
        log.warning(
            "Job {} timed out after {} (correlation {}) and was cancelled",
            job.id,
            format_duration(duration),
            lineage["correlation_id"],
        )
        if not self._wants(EventType.JOB_FAILED):
            return None
        data = {
            **slot.dated(),
            "duration": duration,
            "reason": "timeout",
            "error_type": "TimeoutError",
            "error": f"run exceeded its timeout of {job.timeout}s",
            "timeout": job.timeout,
        }
        return self.event(EventType.JOB_FAILED, data, **lineage)


def _lineage(slot: _RunSlot) -> dict[str, Any]:
    started = slot.event
    assert started is not None  # built on demand
    return {"correlation_id": started.correlation_id, "causation_id": started.id}


def give_back(job: Entry, fire_time: datetime) -> None:
    """Move the schedule back to a claimed fire time whose run never started.

    The saved schedule then returns to it, so that the next start or, with a shared
    store, another process runs it, rather than nobody.
    """
    if job.last_fire == fire_time and not job.removed:
        job.set_next(fire_time)


def summarize_result(value: object, limit: int = 100) -> str:
    """A short, safe description of a job's return value for ``JOB_COMPLETED``.

    Only plain scalars are shown (strings cut to ``limit`` characters, control
    characters escaped); anything else is described by its type and size, so that no
    ``__repr__`` of yours runs, leaks a secret or floods the event.
    """
    # The base classes' own reprs, so that a subclass's __repr__ (yours) never runs.
    if value is None or value is True or value is False:
        return repr(value)
    if isinstance(value, int):
        bits = int.bit_length(value)
        if bits > 4 * limit:
            # repr of a huge int is slow, and past sys.get_int_max_str_digits() an error
            # that would end the run after the job itself had succeeded.
            return f"<int of {bits} bits>"
        return _shorten(int.__repr__(value), limit)
    if isinstance(value, float):
        return _shorten(float.__repr__(value), limit)
    if isinstance(value, str):
        return _shorten(str.__repr__(str.__getitem__(value, slice(limit + 1))), limit)
    if isinstance(value, bytes):
        return _shorten(bytes.__repr__(bytes.__getitem__(value, slice(limit + 1))), limit)
    kind = type(value).__qualname__
    if isinstance(value, list | tuple | set | frozenset | dict):
        return f"<{kind} of {len(value)} item(s)>"
    return f"<{kind}>"


def _shorten(text: str, limit: int) -> str:
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."
