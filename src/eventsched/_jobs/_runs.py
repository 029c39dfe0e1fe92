"""Runs: a job's call at a fire time, its ``JOB_*`` events, and the run counters.

Each run emits ``JOB_STARTED``, then ``JOB_COMPLETED`` or ``JOB_FAILED``, with a
correlation id of its own (a retry: its first attempt's, see :mod:`._retry`) that
every event the job emits, and every event handlers emit in response, inherits. Async
jobs run on the loop, sync jobs in a worker thread (:func:`eventsched._invoke.call_user`,
as handlers are called), each run on a lane (:mod:`._lanes`).

A ``JOB_*`` event that no handler would receive (none subscribed to its type, nor to
``"*"``) is not built at all: at 10,000 runs a second, building, queueing and
"handling" two events per run nobody reads was a third of the CPU. The run counters
here count every run and miss either way; the event ledger (``statistics()``) counts
the ``JOB_*`` events that were emitted. A run's ``JOB_STARTED`` is still its lineage:
it is built the moment something asks for it (an event the job emits, or
``current_event()``), with the same id and correlation id it would have had
(:mod:`._runslot`). Instrumentation follows runs through :attr:`Runs.observer`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from .._clock import Clock
from .._events import Event, EventType, _handling
from .._exceptions import EventschedError
from .._invoke import call_user
from ._alarms import Alarms
from ._entry import Entry
from ._failures import count_failed, count_timed_out
from ._giveback import GIVEN_BACK, at_fire_time, give_back
from ._held import Held
from ._lanes import Lanes
from ._missed import count_misses
from ._planning import Miss
from ._records import MissReason
from ._results import format_duration, summarize_result
from ._retry import abort_retry, retry_event
from ._runslot import RunObserver, RunSlot
from ._timings import DURATION_BUCKETS, LATENESS_BUCKETS, Buckets, JobTimings

__all__ = ["Emitter", "Runs", "format_duration", "summarize_result"]

log = logger.bind(component="jobs")


class Emitter(Protocol):
    """Where the job scheduler's events go (the EventScheduler, which counts them)."""

    max_event_bytes: int

    async def emit(self, event: Event) -> bool: ...


def _always(event_type: EventType) -> bool:
    return True


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
        #: Claimed runs not handed to a lane yet (released by the job scheduler).
        self.held = Held()
        #: Told of every run attempt's start and end (eventsched.tracing); None: nobody.
        self.observer: RunObserver | None = None
        self.idle = anyio.Event()
        self.idle.set()
        self.running = 0
        #: Of ``running``: runs claimed and waiting for their fire time (not started).
        self.waiting = 0
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.timed_out = 0
        self.aborted = 0
        self.retried = 0
        self.manual = 0
        self.stopping = anyio.Event()
        self.missed = dict.fromkeys(MissReason, 0)
        # Claimed fire times whose runs never started and that could not be handed back
        # (see hand_back): reported once no run is left.
        self._unstarted: dict[Entry, list[datetime]] = {}
        self.lateness = Buckets(LATENESS_BUCKETS)
        self.duration = Buckets(DURATION_BUCKETS)

    def timings(self) -> JobTimings:
        return JobTimings(self.lateness.snapshot(), self.duration.snapshot())

    # -- events ----------------------------------------------------------------------

    def event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event:
        return Event.create(event_type, data, max_bytes=self._emitter.max_event_bytes, **lineage)

    async def emit(self, event: Event) -> None:
        # Never waits, never evicts a user's event: a full queue drops it, counted as
        # ``job_event`` (and reported in EVENTS_DROPPED).
        if self.offer(event):
            return
        try:
            await self._emitter.emit(event)
        except EventschedError as exc:  # e.g. the queue is full under "reject": counted
            log.warning("Event {} ({}) was not accepted: {}", event.id, event.type, exc)

    def wants(self, event_type: EventType) -> bool:
        """Whether anyone would receive an event of ``event_type`` (else it is not built)."""
        return self._wants(event_type)

    def offer(self, event: Event) -> bool:
        """Emit ``event`` now if the emitter takes it without waiting; False: emit it
        later (:meth:`emit`)."""
        if self._offer is None:
            return False
        self._offer(event)
        return True

    def missed_event(
        self,
        job: Entry,
        miss: Miss | Sequence[Miss],
        now: datetime,
        running: int | None = None,
    ) -> Event | None:
        """Count and log the misses of one job in one pass; describe them as one
        ``JOB_MISSED`` event if anyone would receive that (see :mod:`._missed`)."""
        wanted = self._wants(EventType.JOB_MISSED)
        data = count_misses(job, miss, now, self.missed, wanted, running)
        return None if data is None else self.event(EventType.JOB_MISSED, data)

    # -- runs ------------------------------------------------------------------------

    def start(
        self,
        runs: TaskGroup,
        job: Entry,
        fire_time: datetime,
        *,
        manual: bool = False,
        hold: bool = False,
    ) -> None:
        """Start a run that waits for ``fire_time`` (up to a moment away), then calls.

        The run goes to a lane (:mod:`._lanes`) in ``runs``. ``manual``: a run now,
        outside the schedule (``run_job``): no wait, no claim, a task of its own (rare:
        not worth a lane). ``hold``: claimed ahead; it goes to a lane once
        :meth:`release` reaches its fire time (:mod:`._held`), counted as waiting
        meanwhile.
        """
        if self.running == 0:
            self.idle = anyio.Event()
        self.running += 1
        if manual:
            self._begin(job)
            self.manual += 1
            runs.start_soon(self._run, job, fire_time, True, name=f"eventsched job {job.id}")
            return
        # Counted as started only once its fire time has come and at_fire_time let it.
        job.waiting += 1
        self.waiting += 1
        if hold:
            self.held.push(job, fire_time)
            return
        self._submit(runs, job, fire_time)

    def release(self, runs: TaskGroup, until: datetime, ahead: datetime, most: int) -> None:
        """Hand the held runs whose fire times are up to ``until`` to their lanes, then
        those up to ``ahead`` while fewer than ``most`` wait in lanes."""
        for job, fire_time in self.held.due(until):
            self._submit(runs, job, fire_time)
        room = most - (self.waiting - len(self.held))
        for job, fire_time in itertools.islice(self.held.due(ahead), max(room, 0)):
            self._submit(runs, job, fire_time)

    def _submit(self, runs: TaskGroup, job: Entry, fire_time: datetime) -> None:
        lanes = self._lanes
        if lanes is None or lanes.group is not runs:
            lanes = self._lanes = Lanes(runs, self._run, self._never_started)
        lanes.submit(job, fire_time)

    def close(self) -> None:
        """The task group of the lanes is closing: idle lanes end; runs still held
        never start (handed back, as a run cancelled before its fire time)."""
        for job, fire_time in self.held.drain():
            self._never_started(job, fire_time)
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None

    def hand_back(self, job: Entry, fire_time: datetime) -> None:
        """A claimed fire time's run never started: back to the schedule, or, when it
        cannot be (see :mod:`._giveback`), reported ``shutdown`` once no run is left."""
        if not give_back(job, fire_time):
            self._unstarted.setdefault(job, []).append(fire_time)

    def report_unstarted(self) -> None:
        """Report the fire times hand_back could not give back: one ``JOB_MISSED`` per
        job (counted and logged even when nobody listens, or intake has closed)."""
        if not self._unstarted:
            return
        pending, self._unstarted = self._unstarted, {}
        now = self._clock().now()
        for job, fire_times in pending.items():
            miss = Miss(MissReason.SHUTDOWN, tuple(sorted(fire_times)))
            event = self.missed_event(job, miss, now)
            if event is not None:
                self.offer(event)  # never waits: this may run in a cancelled task

    async def wait_idle(self) -> None:
        while self.running:
            await self.idle.wait()

    def stop_retries(self) -> None:
        """Shutdown began: retries waiting end now, each counted as aborted."""
        self.stopping.set()

    async def _run(self, job: Entry, fire_time: datetime, manual: bool = False) -> None:
        lateness = 0.0
        if manual:
            _handling.set(None)  # its own chain, even when run_job was called in a handler
        else:
            try:
                # Started a moment early: wait for the fire time itself, on the timer
                # this run shares with those due in the same half millisecond
                # (:mod:`._alarms`). A loop, because a loop clock coarser than the wall
                # clock (uvloop's counts whole milliseconds) can wake us a fraction of a
                # millisecond early; the next wait covers that remainder.
                clock = self._clock()
                while (ahead := (fire_time - clock.now()).total_seconds()) > 0:
                    await self._alarms.wait_for(fire_time)
                lateness = -ahead  # never negative: the clock has reached the fire time
            except BaseException:
                self._never_started(job, fire_time)  # cancelled before its time: not a run
                raise
            job.waiting -= 1
            self.waiting -= 1
            if not self._accepting():
                self._never_started(job, fire_time, waited=True)  # shutdown came first
                return
            # Claimed ahead: the job may have changed since (see :mod:`._giveback`).
            if (refused := at_fire_time(job, fire_time)) is not None:
                await self._not_started(job, fire_time, refused)
                return
            self._begin(job)
            # It starts: no claimed fire time of the job up to this one may be handed
            # back any more (the jittered time: at worst one more is reported instead).
            settled = job.settled
            if settled is None or fire_time > settled:
                job.settled = fire_time
        try:
            await self._attempts(job, fire_time, manual, lateness)
        finally:
            job.running -= 1
            self._finish(job, fire_time, claimed=not manual)

    async def _attempts(
        self, job: Entry, fire_time: datetime, manual: bool, lateness: float
    ) -> None:
        """The first attempt, then the retries its failures earn (see :mod:`._retry`)."""
        attempt = 1
        lineage: dict[str, Any] | None = None
        while True:
            failure = await self._call(job, fire_time, attempt, manual, lineage, lateness)
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
        """Emit ``JOB_RETRY`` (if anyone listens) and wait its delay; False: shutdown
        aborted the retry."""
        try:
            if self._wants(EventType.JOB_RETRY):
                await self.emit(retry)
            if self._accepting():
                with anyio.move_on_after(retry.data["delay"]):
                    await self.stopping.wait()
        except BaseException:
            abort_retry(self, job, retry)
            raise
        if self._accepting():
            return True
        abort_retry(self, job, retry)
        return False

    async def _call(
        self,
        job: Entry,
        fire_time: datetime,
        attempt: int,
        manual: bool,
        lineage: dict[str, Any] | None,
        lateness: float,
    ) -> tuple[str, dict[str, Any]] | None:
        """One attempt; returns None when it completed, else its error and lineage."""
        if attempt == 1 and not manual:
            self.lateness.observe(lateness)
        lanes = self._lanes  # (none: a run now, before any lane)
        loop_time = anyio.current_time if lanes is None else lanes.loop_time
        loop_start = loop_time()
        wants = self._wants
        # This task's context: the events the job creates inherit its lineage.
        slot = RunSlot(self, job.id, fire_time, job.runs, attempt, manual, lineage)
        _handling.set(slot)
        observer = self.observer
        token = (
            None
            if observer is None
            else observer.started(job, fire_time, attempt, manual, 0.0 if manual else lateness)
        )
        finished = False
        failure: tuple[str, dict[str, Any]] | None = None
        outcome: Event | None = None
        # For the observer, told after the outcome event (still in the attempt): the
        # outcome, the error's type and message.
        ending: tuple[str, str | None, str | None] = ("aborted", None, "cancelled by shutdown")
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
                duration = loop_time() - loop_start
                self.duration.observe(duration)
                outcome, error_type, error = count_failed(self, job, slot, duration, exc)
                failure = (error, slot.lineage())
                ending = ("failed", error_type, error)
            else:
                finished = True
                duration = loop_time() - loop_start
                self.duration.observe(duration)
                if timed_out:
                    outcome, error = count_timed_out(self, job, slot, duration)
                    failure = (error, slot.lineage())
                    ending = ("timed_out", "TimeoutError", error)
                else:
                    self.completed += 1
                    if wants(EventType.JOB_COMPLETED):
                        data = {
                            **slot.dated(),
                            "duration": duration,
                            "result": summarize_result(result),
                        }
                        outcome = self.event(EventType.JOB_COMPLETED, data, **slot.lineage())
                    ending = ("completed", None, None)
            if outcome is not None:
                await self.emit(outcome)
        except BaseException:
            if not finished:
                self.aborted += 1
                log.warning(
                    "Job {} attempt {} (fire time {}) was cancelled by shutdown: aborted",
                    job.id,
                    attempt,
                    fire_time,
                )
            raise
        finally:
            job.last_outcome = ending[0]  # saved with the run's end (the store's row)
            if observer is not None:
                observer.ended(token, ending[0], ending[1], ending[2], slot)
        return failure

    def _finish(self, job: Entry, fire_time: datetime, *, claimed: bool = True) -> None:
        self.running -= 1
        if self.running == 0:
            if self._unstarted:
                self.report_unstarted()  # while intake is open, when shutdown waits idle
            self.idle.set()
        if claimed:  # a manual run claimed nothing in the store
            self._ended(job, fire_time)

    def _begin(self, job: Entry) -> None:
        """A run starts: counted as in progress and started."""
        job.running += 1
        job.runs += 1
        self.started += 1

    def _never_started(self, job: Entry, fire_time: datetime, *, waited: bool = False) -> None:
        """End a run whose fire time never came (or came after shutdown began), and hand
        that fire time back (or report it)."""
        if not waited:
            job.waiting -= 1
            self.waiting -= 1
        self.hand_back(job, fire_time)
        self._finish(job, fire_time)

    async def _not_started(self, job: Entry, fire_time: datetime, refused: Miss) -> None:
        """End a run that at_fire_time did not let start: handed back, or reported now."""
        try:
            if refused is not GIVEN_BACK and (
                event := self.missed_event(job, refused, self._clock().now())
            ):
                await self.emit(event)
        finally:
            self._finish(job, fire_time)
