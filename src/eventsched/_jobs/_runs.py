"""Runs: a job's call at a fire time, its ``JOB_*`` events, and the run counters.

Each run emits ``JOB_STARTED``, then ``JOB_COMPLETED`` or ``JOB_FAILED``, with a
correlation id of its own (a retry: its first attempt's, see :mod:`._retry`) that
every event the job emits, and every event handlers emit in response, inherits. Async
jobs run on the loop, sync jobs in a worker thread (:func:`eventsched._invoke.call_user`,
as handlers are called).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from .._clock import Clock
from .._events import Event, EventType, HandlingSlot, _handling
from .._exceptions import EventschedError
from .._invoke import call_user, describe_error
from ._entry import Entry
from ._planning import Miss
from ._records import MissReason
from ._retry import retry_event
from ._timings import DURATION_BUCKETS, LATENESS_BUCKETS, Buckets, JobTimings

__all__ = ["Emitter", "Runs", "format_duration", "give_back", "summarize_result"]

log = logger.bind(component="jobs")

#: Fire times listed in one ``JOB_MISSED`` event; ``count`` has the full number.
MAX_LISTED = 10


class Emitter(Protocol):
    """Where the job scheduler's events go (the EventScheduler, which counts them)."""

    max_event_bytes: int

    async def emit(self, event: Event) -> bool: ...


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
        self.idle = anyio.Event()
        self.idle.set()
        self.running = 0
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.timed_out = 0
        self.aborted = 0
        self.retried = 0
        self.manual = 0
        self.stopping = anyio.Event()
        self.missed = dict.fromkeys(MissReason, 0)
        self.lateness = Buckets(LATENESS_BUCKETS)
        self.duration = Buckets(DURATION_BUCKETS)

    def timings(self) -> JobTimings:
        return JobTimings(self.lateness.snapshot(), self.duration.snapshot())

    # -- events ----------------------------------------------------------------------

    def event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event:
        return Event.create(event_type, data, max_bytes=self._emitter.max_event_bytes, **lineage)

    async def emit(self, event: Event) -> None:
        try:
            await self._emitter.emit(event)
        except EventschedError as exc:  # e.g. the queue is full under "reject": counted
            log.warning("Event {} ({}) was not accepted: {}", event.id, event.type, exc)

    def missed_event(self, job: Entry, miss: Miss, now: datetime) -> Event:
        """Count ``miss`` and describe it as a ``JOB_MISSED`` event."""
        fire_times, reason = miss.fire_times, miss.reason
        self.missed[reason] += len(fire_times)
        data: dict[str, Any] = {
            "job_id": job.id,
            "reason": str(reason),
            "count": len(fire_times),
            "more": miss.more,
            "fire_times": [at.isoformat() for at in fire_times[:MAX_LISTED]],
            "first_fire_time": fire_times[0].isoformat() if fire_times else None,
            "last_fire_time": fire_times[-1].isoformat() if fire_times else None,
            "detected_at": now.isoformat(),
        }
        if reason is MissReason.MAX_INSTANCES:
            data["running"] = job.running
            data["max_instances"] = job.max_instances
        elif reason is MissReason.MISFIRE:
            data["misfire_grace_time"] = job.misfire_grace_time
        log.warning(
            "Job {}: {} fire time(s) missed ({}), first {}",
            job.id,
            len(fire_times),
            reason.value,
            data["first_fire_time"],
        )
        return self.event(EventType.JOB_MISSED, data)

    # -- runs ------------------------------------------------------------------------

    def start(
        self, runs: TaskGroup, job: Entry, fire_time: datetime, *, manual: bool = False
    ) -> None:
        """Start a run that waits for ``fire_time`` (up to a moment away), then calls.

        ``manual``: a run now, outside the schedule (``run_job``): no wait, no claim.
        """
        if self.running == 0:
            self.idle = anyio.Event()
        self.running += 1
        job.running += 1
        job.runs += 1
        self.started += 1
        if manual:
            self.manual += 1
        runs.start_soon(self._run, job, fire_time, manual, name=f"eventsched job {job.id}")

    async def wait_idle(self) -> None:
        while self.running:
            await self.idle.wait()

    def stop_retries(self) -> None:
        """Shutdown began: retries waiting end now, each counted as aborted."""
        self.stopping.set()

    async def _run(self, job: Entry, fire_time: datetime, manual: bool = False) -> None:
        if manual:
            _handling.set(None)  # its own chain, even when run_job was called in a handler
        else:
            try:
                # Started a moment early: wait for the fire time itself. A loop, because a
                # loop clock coarser than the wall clock (uvloop's counts whole
                # milliseconds) can wake us a fraction of a millisecond early; the next
                # sleep covers that remainder. (ruff's ASYNC110 is about polling for a
                # condition another task sets; this waits for a time.)
                while (ahead := (fire_time - self._clock().now()).total_seconds()) > 0:  # noqa: ASYNC110
                    await anyio.sleep(ahead)
            except BaseException:
                give_back(job, fire_time)
                self._never_started(job, fire_time)  # cancelled before its time: not a run
                raise
            if not self._accepting():
                give_back(job, fire_time)
                self._never_started(job, fire_time)  # shutdown began before its time
                return
        try:
            await self._attempts(job, fire_time, manual)
        finally:
            job.running -= 1
            self._finish(job, fire_time, claimed=not manual)

    async def _attempts(self, job: Entry, fire_time: datetime, manual: bool) -> None:
        """The first attempt, then the retries its failures earn (see :mod:`._retry`)."""
        attempt, lineage = 1, None
        while True:
            failure = await self._call(job, fire_time, attempt, manual, lineage)
            if failure is None or job.backoff is None or attempt > job.retries:
                return
            error, chain = failure
            attempt += 1
            retry = retry_event(self, job, fire_time, attempt, error, chain)
            # The retry is a run from now on: started, holding its instance slot while
            # it waits; shutdown meanwhile aborts it (counted, logged).
            self.started += 1
            self.retried += 1
            job.runs += 1
            if not await self._wait_to_retry(job, retry):
                return
            lineage = {"correlation_id": chain["correlation_id"], "causation_id": retry.id}

    async def _wait_to_retry(self, job: Entry, retry: Event) -> bool:
        """Emit ``JOB_RETRY`` and wait its delay; False: shutdown aborted the retry."""
        try:
            await self.emit(retry)
            if self._accepting():
                with anyio.move_on_after(retry.data["delay"]):
                    await self.stopping.wait()
        except BaseException:
            self._abort_retry(job, retry)
            raise
        if self._accepting():
            return True
        self._abort_retry(job, retry)
        return False

    def _abort_retry(self, job: Entry, retry: Event) -> None:
        self.aborted += 1
        log.warning(
            "Job {} attempt {} (correlation {}) was waiting to retry at shutdown: aborted",
            job.id,
            retry.data["attempt"],
            retry.correlation_id,
        )

    async def _call(
        self,
        job: Entry,
        fire_time: datetime,
        attempt: int,
        manual: bool,
        lineage: dict[str, Any] | None,
    ) -> tuple[str, dict[str, Any]] | None:
        """One attempt; returns None when it completed, else its error and lineage."""
        # Never below zero: _run waited until the clock reached the fire time.
        if attempt == 1 and not manual:
            self.lateness.observe(max(0.0, (self._clock().now() - fire_time).total_seconds()))
        loop_start = anyio.current_time()
        base = {
            "job_id": job.id,
            "fire_time": fire_time.isoformat(),
            "attempt": attempt,
            "manual": manual,
        }
        started = self.event(EventType.JOB_STARTED, {**base, "run": job.runs}, **(lineage or {}))
        # This task's context: the events the job creates inherit its lineage.
        _handling.set(HandlingSlot(started))
        lineage = {"correlation_id": started.correlation_id, "causation_id": started.id}
        finished = False
        failure: tuple[str, dict[str, Any]] | None = None
        try:
            await self.emit(started)
            result: Any = None
            call = functools.partial(job.func, *job.args, **job.kwargs)
            try:
                with anyio.move_on_after(math.inf if job.timeout is None else job.timeout) as scope:
                    result = await call_user(call, in_thread=not job.is_async)
            except Exception as exc:
                finished = True
                duration = anyio.current_time() - loop_start
                self.duration.observe(duration)
                outcome = self._failed(job, base, duration, exc, lineage)
                failure = (outcome.data["error"], lineage)
            else:
                finished = True
                duration = anyio.current_time() - loop_start
                self.duration.observe(duration)
                if scope.cancelled_caught:
                    outcome = self._timed_out(job, base, duration, lineage)
                    failure = (outcome.data["error"], lineage)
                else:
                    self.completed += 1
                    data = {**base, "duration": duration, "result": summarize_result(result)}
                    outcome = self.event(EventType.JOB_COMPLETED, data, **lineage)
            await self.emit(outcome)
        except BaseException:
            if not finished:
                self.aborted += 1
                log.warning(
                    "Job {} run (correlation {}) was cancelled by shutdown: aborted",
                    job.id,
                    started.correlation_id,
                )
            raise
        return failure

    def _finish(self, job: Entry, fire_time: datetime, *, claimed: bool = True) -> None:
        self.running -= 1
        if self.running == 0:
            self.idle.set()
        if claimed:  # a manual run claimed nothing in the store
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
        base: dict[str, Any],
        duration: float,
        exc: Exception,
        lineage: dict[str, Any],
    ) -> Event:
        self.failed += 1
        job.failures += 1
        kind = type(exc).__qualname__
        described = describe_error(exc)  # never raises, whatever the exception's __str__ does
        log.opt(exception=exc).error(
            "Job {} failed after {} (correlation {}): {}",
            job.id,
            format_duration(duration),
            lineage["correlation_id"],
            described,
        )
        data = {
            **base,
            "duration": duration,
            "reason": "exception",
            "error_type": kind,
            "error": described.removeprefix(kind).removeprefix(": "),
        }
        return self.event(EventType.JOB_FAILED, data, **lineage)

    def _timed_out(
        self, job: Entry, base: dict[str, Any], duration: float, lineage: dict[str, Any]
    ) -> Event:
        self.failed += 1
        self.timed_out += 1
        job.failures += 1
        log.warning(
            "Job {} timed out after {} (correlation {}) and was cancelled",
            job.id,
            format_duration(duration),
            lineage["correlation_id"],
        )
        data = {
            **base,
            "duration": duration,
            "reason": "timeout",
            "error_type": "TimeoutError",
            "error": f"run exceeded its timeout of {job.timeout}s",
            "timeout": job.timeout,
        }
        return self.event(EventType.JOB_FAILED, data, **lineage)


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
