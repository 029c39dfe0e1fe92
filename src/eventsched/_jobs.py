"""Scheduled jobs: APScheduler 3 trigger classes driven by one anyio task.

The :class:`JobScheduler` is a service of the :class:`~eventsched.EventScheduler`: one
task in its top-level task group. It keeps the jobs, sleeps until the earliest fire
time (converted to the event loop's clock each time it sleeps) and wakes early when a
job is added, removed, paused or resumed; it never polls. Each due fire time becomes a
run in a task group this task owns, or a ``JOB_MISSED`` report, never nothing.

APScheduler's own schedulers are not used (``AsyncIOScheduler`` cannot run on trio);
only its triggers, through ``get_next_fire_time(previous, now)``, always with a
timezone so that the local zone never decides. Wall time comes from an injectable
:class:`~eventsched.Clock`, so schedules can be tested in virtual time
(:mod:`eventsched.testing`).

Misfire policy, per job:

* ``coalesce=True`` (the default): when several fire times are due at once (the loop
  was blocked, the process was down), they collapse into one run for the latest of
  them, however late; the others are reported in one ``JOB_MISSED`` (``coalesced``).
* ``coalesce=False``: each due fire time runs if it is at most ``misfire_grace_time``
  seconds late (None: however late); the rest are reported (``misfire``).
* A run that would exceed ``max_instances`` concurrent runs of the job is skipped and
  reported (``max_instances``).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from os import PathLike
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from apscheduler.util import astimezone  # type: ignore[import-untyped]
from loguru import logger

from ._clock import Clock, SystemClock
from ._events import Event, EventType, HandlingSlot, _handling
from ._exceptions import EventschedError, SchedulerStateError
from ._invoke import call_user, is_async
from ._jobstate import JobStateStore, SavedJob
from ._validate import check_int, check_seconds

__all__ = [
    "ConflictingIdError",
    "Job",
    "JobLookupError",
    "JobScheduler",
    "JobSchedulerState",
    "JobStatistics",
    "MissReason",
    "summarize_result",
]

log = logger.bind(component="jobs")

JobFunc = TypeVar("JobFunc", bound=Callable[..., Any])

#: The scheduler task wakes this long before a fire time and starts the run's task,
#: which then sleeps until the fire time itself. So the job starts on a timer of its
#: own, as punctually as a bare ``sleep_until`` loop, with the task spawn (~0.15 ms
#: here) and the scheduler's bookkeeping done ahead. It also absorbs the rounding
#: between the loop clock and microsecond datetimes. A job paused or removed within
#: this last moment still runs that once.
RUN_LEAD: Final = 0.002
#: A fire time this close beyond RUN_LEAD counts as due too: the loop clock and the
#: wall clock are converted through floats and microsecond datetimes, and a wake-up
#: a hair early must not cost a second trip (or, in virtual time, endless ones).
EARLY_TOLERANCE: Final = 0.0002
#: At most this many missed fire times are enumerated per job per wake-up (a 10 ms
#: interval down for a day would be 8.6 million); beyond it the report says ``more``.
MAX_CATCH_UP: Final = 10_000
#: Fire times listed in one ``JOB_MISSED`` event; ``count`` has the full number.
MAX_LISTED: Final = 10
#: Seconds the final flush of the state file may take at shutdown.
FLUSH_TIMEOUT: Final = 5.0

_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVAL_ARGS = frozenset(
    {"weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date"}
)
_CRON_ARGS = frozenset(
    {
        "year",
        "month",
        "day",
        "week",
        "day_of_week",
        "hour",
        "minute",
        "second",
        "start_date",
        "end_date",
        "crontab",
    }
)
_DATE_ARGS = frozenset({"run_date"})


class ConflictingIdError(EventschedError, ValueError):
    """A job with this id exists already; pass another ``id`` or ``replace_existing=True``."""


class JobLookupError(EventschedError, LookupError):
    """No job has this id (it was never added, was removed, or has finished)."""


class MissReason(StrEnum):
    """Why a fire time did not become a run; the ``reason`` of ``JOB_MISSED``."""

    MISFIRE = "misfire"
    """Later than ``misfire_grace_time`` (without ``coalesce``)."""
    COALESCED = "coalesced"
    """Collapsed with later due fire times into one run (``coalesce``)."""
    MAX_INSTANCES = "max_instances"
    """``max_instances`` runs of the job were still going."""


class JobSchedulerState(StrEnum):
    """Where a :class:`JobScheduler` is in its life. It only moves forward."""

    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job, as :meth:`JobScheduler.get_jobs` returns it."""

    id: str
    """Unique id; also the key of the job's saved state."""
    name: str
    """Readable name (the function's qualified name unless given)."""
    trigger: str
    """Description of the trigger, e.g. ``interval[0:00:10]``."""
    next_fire_time: datetime | None
    """When it is due next (jitter included); None before start, or while paused."""
    last_fire_time: datetime | None
    """The latest fire time handled (ran or reported missed)."""
    paused: bool
    """Whether it is paused."""
    running: int
    """Runs in progress."""
    runs: int
    """Runs started since this scheduler started."""
    failures: int
    """Runs that raised or timed out."""
    max_instances: int
    """Most runs allowed at once."""
    coalesce: bool
    """Whether due fire times collapse into one run."""
    misfire_grace_time: float | None
    """Seconds a run may be late (without ``coalesce``); None: no limit."""
    timeout: float | None
    """Seconds a run may take before it is cancelled; None: no limit."""


@dataclass(frozen=True, slots=True)
class JobStatistics:
    """Counters of the job scheduler, from :meth:`JobScheduler.statistics`.

    ``runs_started = runs_completed + runs_failed + runs_aborted + running``.
    """

    jobs: int
    """Jobs scheduled (finished and removed ones excluded)."""
    running: int
    """Runs in progress."""
    runs_started: int
    """Runs begun."""
    runs_completed: int
    """Runs that returned."""
    runs_failed: int
    """Runs that raised or timed out."""
    runs_timed_out: int
    """Of the failed runs, those cancelled by their job's ``timeout``."""
    runs_aborted: int
    """Runs cancelled by shutdown after the grace period."""
    missed: Mapping[str, int]
    """Fire times that did not become runs, by :class:`MissReason`."""

    @property
    def missed_total(self) -> int:
        """All missed fire times, whatever the reason."""
        return sum(self.missed.values())

    def as_dict(self) -> dict[str, object]:
        """Plain data, for logs and reports."""
        figures: dict[str, object] = {
            name: getattr(self, name) for name in self.__dataclass_fields__
        }
        figures["missed"] = dict(self.missed)
        figures["missed_total"] = self.missed_total
        return figures


class _Emitter(Protocol):
    max_event_bytes: int

    async def emit(self, event: Event) -> bool: ...


class _Job:
    """A job and its scheduling state; mutated by the scheduler task only."""

    __slots__ = (
        "args",
        "coalesce",
        "deferred",
        "failures",
        "fingerprint",
        "fire_at",
        "func",
        "id",
        "is_async",
        "jitter",
        "kwargs",
        "last_fire",
        "max_instances",
        "misfire_grace_time",
        "name",
        "next_fire",
        "paused",
        "persist",
        "removed",
        "runs",
        "runs_in_progress",
        "timeout",
        "trigger",
    )

    def __init__(
        self,
        *,
        id: str,
        name: str,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        trigger: Any,
        deferred: str | None,
        max_instances: int,
        misfire_grace_time: float | None,
        coalesce: bool,
        timeout: float | None,
        jitter: float | None,
        paused: bool,
    ) -> None:
        self.id = id
        self.name = name
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.trigger = trigger
        self.deferred = deferred
        self.is_async = is_async(func)
        self.max_instances = max_instances
        self.misfire_grace_time = misfire_grace_time
        self.coalesce = coalesce
        self.timeout = timeout
        self.jitter = jitter
        self.paused = paused
        # A "run now" date job has no stable schedule to resume after a restart.
        self.persist = deferred != "now"
        # str() of an interval or cron trigger leaves out its start and end dates: a
        # changed end_date must not keep a saved fire time (or a finished schedule).
        self.fingerprint = "|".join(
            str(part)
            for part in (
                type(trigger).__name__,
                trigger,
                getattr(trigger, "timezone", ""),
                getattr(trigger, "start_date", ""),
                getattr(trigger, "end_date", ""),
            )
        )
        self.next_fire: datetime | None = None  # as the trigger computed it
        self.fire_at: datetime | None = None  # next_fire plus jitter
        self.last_fire: datetime | None = None
        # A one-item list, so that a job replacing this one (same id) can share it:
        # runs of the old one still in progress count against the new max_instances.
        self.runs_in_progress = [0]
        self.runs = 0
        self.failures = 0
        self.removed = False

    @property
    def running(self) -> int:
        return self.runs_in_progress[0]

    @running.setter
    def running(self, value: int) -> None:
        self.runs_in_progress[0] = value

    def snapshot(self) -> Job:
        return Job(
            id=self.id,
            name=self.name,
            trigger=str(self.trigger),
            next_fire_time=None if self.paused else self.fire_at,
            last_fire_time=self.last_fire,
            paused=self.paused,
            running=self.running,
            runs=self.runs,
            failures=self.failures,
            max_instances=self.max_instances,
            coalesce=self.coalesce,
            misfire_grace_time=self.misfire_grace_time,
            timeout=self.timeout,
        )

    def saved(self) -> SavedJob:
        return SavedJob(self.fingerprint, self.last_fire, self.next_fire)

    def set_next(self, next_fire: datetime | None) -> None:
        self.next_fire = next_fire
        if next_fire is not None and self.jitter:
            next_fire = next_fire + timedelta(seconds=random.uniform(0, self.jitter))
        self.fire_at = next_fire


class JobScheduler:
    """The scheduler task: runs jobs on APScheduler triggers inside an EventScheduler.

    Every :class:`~eventsched.EventScheduler` has one (``scheduler.jobs``) and
    delegates ``add_job`` and friends to it; you rarely build one yourself. All methods
    except :meth:`run`, :meth:`wait_idle` and :meth:`flush_state` are sync and must be
    called on the event loop thread (from another thread, go through
    ``anyio.from_thread.run_sync``).

    Each run emits ``JOB_STARTED``, then ``JOB_COMPLETED`` or ``JOB_FAILED``, with a
    correlation id of its own that every event the job emits, and every event handlers
    emit in response, inherits. Async jobs run in a task group owned by the scheduler
    task, sync jobs in a worker thread.

    :param emitter: where events go (the EventScheduler, whose accounting counts them)
    :param clock: wall time for triggers (default :class:`~eventsched.SystemClock`)
    :param state_file: path of an SQLite file that keeps each job's last and next fire
        time across restarts (None, the default: in memory only)
    :param timezone: for triggers given by name (default UTC); a job may override it
    """

    name = "jobs"

    def __init__(
        self,
        emitter: _Emitter,
        *,
        clock: Clock | None = None,
        state_file: str | PathLike[str] | None = None,
        timezone: str | tzinfo = UTC,
    ) -> None:
        self._emitter = emitter
        self._clock: Clock = SystemClock()
        self._timezone: tzinfo = UTC
        self._store: JobStateStore | None = None
        self.configure(clock=clock, state_file=state_file, timezone=timezone)
        self._state = JobSchedulerState.CREATED
        self._jobs: dict[str, _Job] = {}
        self._saved: dict[str, SavedJob] = {}
        self._dirty: dict[str, SavedJob | None] = {}
        self._dirty_signal = anyio.Event()
        self._flush_lock: anyio.Lock | None = None
        self._wakeup = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._runs: TaskGroup | None = None
        self._running = 0
        self._started = 0
        self._completed = 0
        self._failed = 0
        self._timed_out = 0
        self._aborted = 0
        self._missed = dict.fromkeys(MissReason, 0)

    def configure(
        self,
        *,
        clock: Clock | None = None,
        state_file: str | PathLike[str] | None = None,
        timezone: str | tzinfo | None = None,
    ) -> None:
        """Change the clock, the state file or the default timezone before start.

        Arguments left as None keep their current value. As
        ``scheduler.configure_jobs(state_file="/var/lib/myapp/jobs.sqlite")`` this turns
        on persistence: the file lives wherever you point it (created with mode 0600,
        its directory must exist), and holds each job's last and next fire time as
        JSON, keyed by job id. Without it (the default) schedules live in memory only.
        """
        if getattr(self, "_state", JobSchedulerState.CREATED) is not JobSchedulerState.CREATED:
            raise SchedulerStateError("configure the job scheduler before it starts")
        if clock is not None:
            if not callable(getattr(clock, "now", None)):
                raise TypeError(f"clock={clock!r} has no now() method (see eventsched.Clock)")
            self._clock = clock
        if state_file is not None:
            self._store = JobStateStore(state_file)
        if timezone is not None:
            self._timezone = _timezone(timezone)

    # -- inspection --------------------------------------------------------------------

    @property
    def state(self) -> JobSchedulerState:
        return self._state

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def state_file(self) -> str | None:
        """Path of the state file, or None when state is kept in memory only."""
        return None if self._store is None else str(self._store.path)

    def statistics(self) -> JobStatistics:
        """A snapshot of the run counters (see :class:`JobStatistics`)."""
        return JobStatistics(
            jobs=len(self._jobs),
            running=self._running,
            runs_started=self._started,
            runs_completed=self._completed,
            runs_failed=self._failed,
            runs_timed_out=self._timed_out,
            runs_aborted=self._aborted,
            missed={str(reason): n for reason, n in self._missed.items()},
        )

    def get_jobs(self) -> list[Job]:
        """Snapshots of every scheduled job, in the order they were added."""
        return [job.snapshot() for job in self._jobs.values()]

    def get_job(self, job_id: str) -> Job:
        """A snapshot of one job. :raises JobLookupError: no such job"""
        return self._lookup(job_id).snapshot()

    # -- changing the schedule ---------------------------------------------------------

    def add_job(
        self,
        /,
        func: Callable[..., Any],
        trigger: str | BaseTrigger = "interval",
        *,
        id: str | None = None,
        name: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        max_instances: int = 1,
        misfire_grace_time: float | None = 1.0,
        coalesce: bool = True,
        timeout: float | None = None,
        jitter: float | None = None,
        timezone: str | tzinfo | None = None,
        replace_existing: bool = False,
        paused: bool = False,
        **trigger_args: Any,
    ) -> Job:
        """Schedule ``func(*args, **kwargs)``; works before start and while running.

        ``trigger`` is ``"interval"`` (``weeks``, ``days``, ``hours``, ``minutes``,
        ``seconds``, ``start_date``, ``end_date``; the first run is one interval after
        the scheduler starts or the job is added, unless ``start_date`` says otherwise),
        ``"cron"`` (the fields ``year``, ``month``, ``day``, ``week``, ``day_of_week``,
        ``hour``, ``minute``, ``second``, or ``crontab="*/5 * * * *"``), ``"date"``
        (``run_date``; omitted: run once, now), or an APScheduler 3 trigger instance.

        :param id: unique id (default: the function's module and qualified name); also
            the key under which the state file keeps its schedule
        :param max_instances: most runs at once; a fire time beyond it is reported missed
        :param misfire_grace_time: seconds a run may be late when not coalescing
        :param coalesce: collapse several due fire times into one run
        :param timeout: seconds a run may take; then it is cancelled and reported failed
        :param jitter: up to this many random seconds added to each fire time
        :param timezone: for a trigger given by name (default: the scheduler's, UTC)
        :param replace_existing: replace a job with the same id instead of raising
        :param paused: add the job paused (see :meth:`resume_job`)
        :raises ConflictingIdError: a job with this id exists and not replace_existing
        :raises SchedulerStateError: the scheduler is shutting down or has stopped
        """
        if not callable(func):
            raise TypeError(f"job function must be callable, not {func!r}")
        if self._state in (JobSchedulerState.STOPPING, JobSchedulerState.STOPPED):
            raise SchedulerStateError(
                f"cannot add a job while the job scheduler is {self._state.value}"
            )
        qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
        if id is None:
            id = f"{getattr(func, '__module__', None) or '?'}.{qualname}"
        if not isinstance(id, str) or not id:
            raise ValueError(f"job id={id!r} must be a non-empty string")
        check_int("max_instances", max_instances, minimum=1)
        for option, value in (("misfire_grace_time", misfire_grace_time), ("timeout", timeout)):
            if value is not None:
                check_seconds(option, value, allow_zero=False)
        if jitter is not None:
            check_seconds("jitter", jitter, allow_zero=True)
        existing = self._jobs.get(id)
        if existing is not None and not replace_existing:
            raise ConflictingIdError(
                f"a job with id {id!r} exists already; pass another id= or replace_existing=True"
            )
        tz = self._timezone if timezone is None else _timezone(timezone)
        built, deferred = _build_trigger(trigger, trigger_args, tz)
        job = _Job(
            id=id,
            name=name or qualname,
            func=func,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            trigger=built,
            deferred=deferred,
            max_instances=max_instances,
            misfire_grace_time=misfire_grace_time,
            coalesce=bool(coalesce),
            timeout=timeout,
            jitter=jitter or None,
            paused=paused,
        )
        if existing is not None:
            existing.removed = True
            job.runs_in_progress = existing.runs_in_progress
            if existing.fingerprint == job.fingerprint and existing.deferred is None:
                # Same schedule: keep its place in it rather than starting over.
                self._saved[id] = existing.saved()
        self._jobs[id] = job
        if self._state is JobSchedulerState.RUNNING:
            self._schedule_new(job, self._clock.now())
            self._wake()
        log.debug("Added job {} ({})", id, job.trigger)
        return job.snapshot()

    def job(
        self, /, trigger: str | BaseTrigger = "interval", **options: Any
    ) -> Callable[[JobFunc], JobFunc]:
        """Decorator form of :meth:`add_job`: ``@scheduler.job("cron", minute="*/5")``.

        Returns the function unchanged.
        """

        if callable(trigger) and not isinstance(trigger, (str, BaseTrigger)):
            # ``@scheduler.job`` without parentheses: the function came as the trigger.
            raise TypeError(
                f"@job needs a trigger, as in @job('interval', seconds=10); it was given "
                f"{getattr(trigger, '__qualname__', trigger)!r} directly (no parentheses)"
            )

        def register(func: JobFunc) -> JobFunc:
            self.add_job(func, trigger, **options)
            return func

        return register

    def remove_job(self, job_id: str) -> None:
        """Unschedule a job; runs in progress finish. :raises JobLookupError:"""
        job = self._lookup(job_id)
        del self._jobs[job_id]
        job.removed = True
        self._saved.pop(job_id, None)
        if self._store is not None:
            self._mark(job_id, None)
        self._wake()
        log.debug("Removed job {}", job_id)

    def pause_job(self, job_id: str) -> Job:
        """Stop a job firing until resumed (fire times meanwhile are not reported)."""
        job = self._lookup(job_id)
        job.paused = True
        self._wake()
        return job.snapshot()

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job from now on: its next fire time is computed afresh."""
        job = self._lookup(job_id)
        if job.paused:
            job.paused = False
            if self._state is JobSchedulerState.RUNNING:
                now = self._clock.now()
                job.set_next(cast(datetime | None, job.trigger.get_next_fire_time(None, now)))
                self._after_update(job)
                self._wake()
        return job.snapshot()

    # -- the Service protocol ----------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The scheduler task: load saved state, then fire jobs until shutdown.

        Returns after :meth:`begin_shutdown` once the runs in progress are done. When
        cancelled, the runs still going are cancelled and counted as aborted. Either
        way the state file is flushed (shielded, up to :data:`FLUSH_TIMEOUT` seconds).

        :raises JobStateError: the state file is corrupt or not ours (before started)
        """
        if self._state is not JobSchedulerState.CREATED:
            raise SchedulerStateError(f"this job scheduler is {self._state.value}")
        _handling.set(None)  # each run starts a chain of its own
        self._flush_lock = anyio.Lock()
        store = self._store
        try:
            if store is not None:
                self._saved.update(await anyio.to_thread.run_sync(store.open))
                log.info("Job state file {}: {} saved job(s)", store.path, len(self._saved))
            now = self._clock.now()
            for job in list(self._jobs.values()):
                self._schedule_new(job, now)
            async with anyio.create_task_group() as runs:
                self._runs = runs
                writer = anyio.CancelScope()
                if store is not None:
                    runs.start_soon(self._write_state, writer, name="eventsched job state")
                self._state = JobSchedulerState.RUNNING
                task_status.started()
                try:
                    await self._loop()
                finally:
                    self._state = JobSchedulerState.STOPPING
                    writer.cancel()
        finally:
            self._runs = None
            self._state = JobSchedulerState.STOPPED
            if store is not None:
                with anyio.move_on_after(FLUSH_TIMEOUT, shield=True):
                    await self._flush_logged()
                    await anyio.to_thread.run_sync(store.close)

    def begin_shutdown(self) -> None:
        """Start no new runs: the scheduler task stops; runs in progress go on."""
        if self._state is JobSchedulerState.RUNNING:
            self._state = JobSchedulerState.STOPPING
        self._wake()

    async def wait_idle(self) -> None:
        """Return once no run is in progress."""
        while self._running:
            await self._idle.wait()

    async def flush_state(self) -> None:
        """Write pending changes to the state file now (no-op without one)."""
        store = self._store
        lock = self._flush_lock
        if store is None or lock is None:
            return
        async with lock:
            if not self._dirty:
                return
            states, self._dirty = self._dirty, {}
            try:
                await anyio.to_thread.run_sync(store.write, states)
            except Exception:
                for job_id, saved in states.items():
                    self._dirty.setdefault(job_id, saved)
                raise

    # -- the scheduler task ------------------------------------------------------------

    def _wake(self) -> None:
        self._wakeup.set()

    async def _write_state(self, scope: anyio.CancelScope) -> None:
        """Write changed fire times as they happen, off the scheduler task's path."""
        with scope:
            while True:
                await self._dirty_signal.wait()
                self._dirty_signal = anyio.Event()
                await self._flush_logged()

    async def _flush_logged(self) -> None:
        try:
            await self.flush_state()
        except Exception:
            # Kept pending: the next change (or shutdown) tries again.
            log.exception("Could not write the job state file {}", self.state_file)

    def _lookup(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobLookupError(f"no job with id {job_id!r}") from None

    def _mark(self, job_id: str, saved: SavedJob | None) -> None:
        self._dirty[job_id] = saved
        self._dirty_signal.set()

    def _after_update(self, job: _Job) -> None:
        """Persist the job's fire times and retire it once its trigger is exhausted."""
        if self._store is not None and job.persist and not job.removed:
            self._mark(job.id, job.saved())
        if job.next_fire is None and not job.removed:
            job.removed = True
            if self._jobs.get(job.id) is job:
                del self._jobs[job.id]
            log.debug("Job {} has no more fire times and was removed", job.id)

    def _schedule_new(self, job: _Job, now: datetime) -> None:
        """Give a newly started job its first fire time, or its saved one."""
        trigger = job.trigger
        saved = self._saved.pop(job.id, None)
        if saved is not None and saved.fingerprint != job.fingerprint:
            log.info(
                "Job {}: its trigger changed since the state was saved ({} -> {}); "
                "starting its schedule afresh",
                job.id,
                saved.fingerprint,
                job.fingerprint,
            )
            saved = None
        if job.deferred == "start":
            first = saved.next_fire_time if saved is not None else None
            trigger.start_date = (first or now + trigger.interval).astimezone(trigger.timezone)
        elif job.deferred == "now":
            trigger.run_date = now
        job.deferred = None
        if saved is not None:
            job.last_fire = saved.last_fire_time
            job.set_next(saved.next_fire_time)
            if saved.next_fire_time is not None and saved.next_fire_time < now:
                log.info(
                    "Job {} was due at {} while the scheduler was not running",
                    job.id,
                    saved.next_fire_time.isoformat(),
                )
        else:
            job.set_next(cast(datetime | None, trigger.get_next_fire_time(None, now)))
        self._after_update(job)

    def _seconds_to_next(self) -> float:
        earliest: datetime | None = None
        for job in self._jobs.values():
            at = job.fire_at
            if at is not None and not job.paused and (earliest is None or at < earliest):
                earliest = at
        if earliest is None:
            return math.inf
        return (earliest - self._clock.now()).total_seconds()

    async def _loop(self) -> None:
        while self._state is JobSchedulerState.RUNNING:
            self._wakeup = anyio.Event()
            now = self._clock.now()
            horizon = now + timedelta(seconds=RUN_LEAD + EARLY_TOLERANCE)
            due = [
                job
                for job in self._jobs.values()
                if not job.paused and job.fire_at is not None and job.fire_at <= horizon
            ]
            reports: list[Event] = []
            for job in due:
                self._fire(job, now, reports)
            for report in reports:
                await self._emit(report)
            if self._state is not JobSchedulerState.RUNNING:
                break
            delay = self._seconds_to_next() - RUN_LEAD
            if delay > 0:
                # Deadline on the loop's clock, recomputed from the wall clock each time.
                with anyio.move_on_after(delay):
                    await self._wakeup.wait()
            else:
                await anyio.lowlevel.checkpoint()

    def _fire(self, job: _Job, now: datetime, reports: list[Event]) -> None:
        """Handle a job's due fire times: start runs, and report those that cannot run."""
        first = job.next_fire
        first_at = job.fire_at
        assert first is not None
        assert first_at is not None
        trigger = job.trigger
        due = [first]
        more = False
        # The scheduler acts up to RUN_LEAD ahead: what is due is what falls before that
        # horizon (and at least the first fire time, or a trigger would answer with
        # that same time again).
        horizon = max(now + timedelta(seconds=RUN_LEAD + EARLY_TOLERANCE), first)
        following = cast(datetime | None, trigger.get_next_fire_time(first, horizon))
        while following is not None and following <= horizon:
            if len(due) >= MAX_CATCH_UP:
                more = True
                following = cast(datetime | None, trigger.get_next_fire_time(None, horizon))
                break
            due.append(following)
            following = cast(datetime | None, trigger.get_next_fire_time(following, horizon))
        job.last_fire = due[-1]
        job.set_next(following)
        self._after_update(job)

        def actual(index: int) -> datetime:
            return first_at if index == 0 else due[index]

        to_run: list[datetime] = []
        if job.coalesce:
            to_run.append(actual(len(due) - 1))
            if len(due) > 1:
                self._report(job, MissReason.COALESCED, due[:-1], more, now, reports)
        else:
            grace = job.misfire_grace_time
            late: list[datetime] = []
            for index in range(len(due)):
                at = actual(index)
                if grace is None or (now - at).total_seconds() <= grace:
                    to_run.append(at)
                else:
                    late.append(at)
            if late or more:
                self._report(job, MissReason.MISFIRE, late, more, now, reports)
        skipped: list[datetime] = []
        for at in to_run:
            if job.running >= job.max_instances:
                skipped.append(at)
            else:
                self._start_run(job, at)
        if skipped:
            self._report(job, MissReason.MAX_INSTANCES, skipped, False, now, reports)

    def _report(
        self,
        job: _Job,
        reason: MissReason,
        fire_times: list[datetime],
        more: bool,
        now: datetime,
        reports: list[Event],
    ) -> None:
        self._missed[reason] += len(fire_times)
        listed = [at.isoformat() for at in fire_times[:MAX_LISTED]]
        data: dict[str, Any] = {
            "job_id": job.id,
            "reason": str(reason),
            "count": len(fire_times),
            "more": more,
            "fire_times": listed,
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
        reports.append(self._event(EventType.JOB_MISSED, data))

    def _event(self, event_type: EventType, data: Mapping[str, Any], **lineage: Any) -> Event:
        return Event.create(event_type, data, max_bytes=self._emitter.max_event_bytes, **lineage)

    async def _emit(self, event: Event) -> None:
        try:
            await self._emitter.emit(event)
        except EventschedError as exc:  # e.g. the queue is full under "reject": counted
            log.warning("Event {} ({}) was not accepted: {}", event.id, event.type, exc)

    def _start_run(self, job: _Job, fire_time: datetime) -> None:
        assert self._runs is not None
        if self._running == 0:
            self._idle = anyio.Event()
        self._running += 1
        job.running += 1
        job.runs += 1
        self._started += 1
        self._runs.start_soon(self._run, job, fire_time, name=f"eventsched job {job.id}")

    async def _run(self, job: _Job, fire_time: datetime) -> None:
        try:
            # Started up to RUN_LEAD early: wait for the moment itself. A loop, because
            # a loop clock coarser than the wall clock (uvloop's counts whole
            # milliseconds) can wake us a fraction of a millisecond early; the
            # next sleep covers that remainder.
            # (ruff's ASYNC110 is about polling for a condition another task sets;
            # this waits for a time, for at most a tick of the loop clock more.)
            while (ahead := (fire_time - self._clock.now()).total_seconds()) > 0:  # noqa: ASYNC110
                await anyio.sleep(ahead)
        except BaseException:
            self._never_started(job)  # cancelled before its time: not a run at all
            raise
        if self._state is not JobSchedulerState.RUNNING:
            self._never_started(job)  # shutdown began before its time: no new runs
            return
        loop_start = anyio.current_time()
        base = {"job_id": job.id, "fire_time": fire_time.isoformat()}
        started = self._event(EventType.JOB_STARTED, {**base, "run": job.runs})
        # This task's context: the events the job creates inherit its lineage.
        _handling.set(HandlingSlot(started))
        lineage = {"correlation_id": started.correlation_id, "causation_id": started.id}
        finished = False
        try:
            await self._emit(started)
            result: Any = None
            try:
                with anyio.move_on_after(math.inf if job.timeout is None else job.timeout) as scope:
                    result = await self._call(job)
            except Exception as exc:
                finished = True
                outcome = self._failed_run(job, base, loop_start, exc, lineage)
            else:
                finished = True
                duration = anyio.current_time() - loop_start
                if scope.cancelled_caught:
                    outcome = self._timed_out_run(job, base, duration, lineage)
                else:
                    self._completed += 1
                    outcome = self._event(
                        EventType.JOB_COMPLETED,
                        {**base, "duration": duration, "result": summarize_result(result)},
                        **lineage,
                    )
            await self._emit(outcome)
        except BaseException:
            if not finished:
                self._aborted += 1
                log.warning(
                    "Job {} run (correlation {}) was cancelled by shutdown: aborted",
                    job.id,
                    started.correlation_id,
                )
            raise
        finally:
            job.running -= 1
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    def _never_started(self, job: _Job) -> None:
        """Take back what _start_run counted for a run whose fire time never came."""
        job.running -= 1
        job.runs -= 1
        self._started -= 1
        self._running -= 1
        if self._running == 0:
            self._idle.set()

    async def _call(self, job: _Job) -> Any:
        call = functools.partial(job.func, *job.args, **job.kwargs)
        return await call_user(call, in_thread=not job.is_async)

    def _failed_run(
        self,
        job: _Job,
        base: dict[str, Any],
        loop_start: float,
        exc: Exception,
        lineage: dict[str, Any],
    ) -> Event:
        duration = anyio.current_time() - loop_start
        self._failed += 1
        job.failures += 1
        log.opt(exception=exc).error(
            "Job {} failed after {:.3f}s (correlation {}): {}: {}",
            job.id,
            duration,
            lineage["correlation_id"],
            type(exc).__qualname__,
            exc,
        )
        return self._event(
            EventType.JOB_FAILED,
            {
                **base,
                "duration": duration,
                "reason": "exception",
                "error_type": type(exc).__qualname__,
                "error": _shorten(str(exc), 500),
            },
            **lineage,
        )

    def _timed_out_run(
        self, job: _Job, base: dict[str, Any], duration: float, lineage: dict[str, Any]
    ) -> Event:
        self._failed += 1
        self._timed_out += 1
        job.failures += 1
        log.warning(
            "Job {} timed out after {}s (correlation {}) and was cancelled",
            job.id,
            job.timeout,
            lineage["correlation_id"],
        )
        return self._event(
            EventType.JOB_FAILED,
            {
                **base,
                "duration": duration,
                "reason": "timeout",
                "error_type": "TimeoutError",
                "error": f"run exceeded its timeout of {job.timeout}s",
                "timeout": job.timeout,
            },
            **lineage,
        )


# -- helpers ---------------------------------------------------------------------------


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


def _timezone(value: str | tzinfo) -> tzinfo:
    try:
        return cast(tzinfo, astimezone(value))
    except Exception as exc:
        raise ValueError(f"timezone={value!r} is not a usable timezone: {exc}") from None


def _build_trigger(
    trigger: str | BaseTrigger, args: dict[str, Any], tz: tzinfo
) -> tuple[Any, str | None]:
    """Build the trigger; the second value says what is left to fix at schedule time.

    ``"start"``: an interval without ``start_date`` starts one interval after the job
    is scheduled; ``"now"``: a date job without ``run_date`` runs when scheduled. Both
    read the injectable clock then, never ``datetime.now()`` here.
    """
    if isinstance(trigger, BaseTrigger):
        if args:
            raise TypeError(
                f"trigger options {sorted(args)} were given with a trigger instance; "
                "set them on the trigger instead"
            )
        return trigger, None
    allowed = {"interval": _INTERVAL_ARGS, "cron": _CRON_ARGS, "date": _DATE_ARGS}.get(
        trigger if isinstance(trigger, str) else ""
    )
    if allowed is None:
        raise ValueError(
            f"trigger={trigger!r} is not one of 'interval', 'cron', 'date' or an "
            "APScheduler 3 trigger instance"
        )
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for trigger {trigger!r}; allowed: {sorted(allowed)}"
        )
    given = dict(args)  # for messages: without the placeholder start_date below
    try:
        if trigger == "interval":
            _check_interval(args)
            if args.get("start_date") is None:
                args = {**args, "start_date": _PLACEHOLDER}
                return IntervalTrigger(timezone=tz, **args), "start"
            return IntervalTrigger(timezone=tz, **args), None
        if trigger == "cron":
            crontab = args.pop("crontab", None)
            if crontab is None:
                return CronTrigger(timezone=tz, **args), None
            return _from_crontab(crontab, args, tz), None
        if args.get("run_date") is None:
            return DateTrigger(run_date=_PLACEHOLDER, timezone=tz), "now"
        return DateTrigger(timezone=tz, **args), None
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"invalid {trigger} trigger {given}: {exc}") from None
    except OverflowError as exc:
        raise ValueError(f"invalid {trigger} trigger {given}: {exc}") from None


def _check_interval(args: Mapping[str, Any]) -> None:
    # APScheduler turns an interval of zero (or one that rounds to zero) into one
    # second without a word, and a negative one makes every fire time already past:
    # the scheduler would spin, reporting missed fire times as fast as it can.
    units = ("weeks", "days", "hours", "minutes", "seconds")
    parts = {unit: args[unit] for unit in units if args.get(unit) is not None}
    for unit, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{unit}={value!r} must be a number")
    if timedelta(**parts) <= timedelta(0):
        raise ValueError("the interval must be positive (at least a microsecond)")


def _from_crontab(crontab: str, fields: dict[str, Any], tz: tzinfo) -> Any:
    if not isinstance(crontab, str):
        raise TypeError(f"crontab={crontab!r} must be a string such as '*/5 * * * *'")
    if fields:
        raise ValueError(f"crontab= cannot be combined with cron fields {sorted(fields)}")
    return CronTrigger.from_crontab(crontab, timezone=tz)


# -- delegation from EventScheduler ----------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _HasJobs(Protocol):
    @property
    def jobs(self) -> JobScheduler: ...


def jobs_method(
    method: Callable[Concatenate[JobScheduler, _P], _R],
) -> Callable[Concatenate[_HasJobs, _P], _R]:
    """Make ``method`` of :class:`JobScheduler` a method of its owner, same signature."""

    @functools.wraps(method)
    def delegate(self: _HasJobs, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return method(self.jobs, *args, **kwargs)

    return delegate
