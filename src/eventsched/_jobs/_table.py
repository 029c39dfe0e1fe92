"""The jobs and their place in their schedules: what ``add_job`` and friends change.

:class:`JobTable` is the half of the job scheduler that the caller's methods touch
(synchronously, on the event loop thread); :class:`~._scheduler.JobScheduler` adds the
task that fires the jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from os import PathLike
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from .._clock import Clock, SystemClock
from .._events import Event
from .._exceptions import (
    ConflictingIdError,
    JobBusyError,
    JobLookupError,
    SchedulerStateError,
)
from .._lifecycle import Lifecycle, State
from ._entry import Entry
from ._giveback import resume_from, settle_before
from ._preview import preview
from ._records import Job, JobStatistics
from ._runs import Emitter, Runs
from ._sqlite import SQLiteJobStore
from ._startnotes import StartNotes
from ._store import JobStore, MemoryJobStore, SavedJob
from ._storetable import StoreTable
from ._sync import StoreSync
from ._timeline import Timeline
from ._timings import JobTimings
from ._triggers import (
    next_fire_time,
    to_timezone,
)

__all__ = ["JobTable"]

log = logger.bind(component="jobs")

JobFunc = TypeVar("JobFunc", bound=Callable[..., Any])


class JobTable(StoreTable):
    """The jobs, their saved states and their counters; see :class:`JobScheduler`."""

    def __init__(
        self,
        emitter: Emitter,
        *,
        clock: Clock | None = None,
        state_file: str | PathLike[str] | None = None,
        timezone: str | tzinfo = UTC,
        store: JobStore | None = None,
    ) -> None:
        self._life = Lifecycle("the job scheduler")
        self._clock: Clock = SystemClock()
        self._timezone: tzinfo = UTC
        #: Whether configure() was given a timezone (``eventsched run`` refuses a
        #: ``TIMEZONE`` that contradicts the application's own).
        self.timezone_configured = False
        self._entries: dict[str, Entry] = {}
        # The distinct fingerprints of the jobs added before start (None once started):
        # what the start asks the store about (see read_columns), noted as jobs are
        # added rather than found by a pass over all of them at start (~5 ms at 50,000).
        # Those of jobs replaced or removed since stay: they only cost the query a test.
        self._added_fingerprints: dict[str, None] | None = {}
        # What the start logs about saved jobs (see _startnotes): the first few by name.
        self._notes = StartNotes()
        self._store: JobStore = MemoryJobStore()
        self.configure(clock=clock, state_file=state_file, timezone=timezone, store=store)
        self.timezone_configured = timezone is not UTC
        self._runs = Runs(emitter, lambda: self._clock, self._accepting, self._run_ended)
        self._saved: dict[str, SavedJob] = {}
        # The states as the store holds them (loaded at start), until each job resumes.
        self._stored: dict[str, SavedJob] = {}
        self._sync = StoreSync(self._store)
        self._timeline = Timeline()
        self._sync.adopt = self._adopt  # shared stores only (PostgresJobStore)
        self._sync.claimed_soon = self._claimed_soon
        self._wakeup = anyio.Event()
        # The fire time the scheduler task sleeps until (None: no fire time), while it
        # sleeps: a change wakes it only when it brings a fire time before that one.
        self._asleep = False
        self._asleep_until: datetime | None = None
        self._group: TaskGroup | None = None
        self._reports: list[Event] = []  # made outside a pass, emitted by the next one

    def configure(
        self,
        *,
        clock: Clock | None = None,
        state_file: str | PathLike[str] | None = None,
        timezone: str | tzinfo | None = None,
        store: JobStore | None = None,
    ) -> None:
        """Change the clock, the job store or the default timezone before start.

        Arguments left as None keep their current value. ``state_file=path`` turns on
        persistence in an SQLite file (:class:`~eventsched.SQLiteJobStore`: created with
        mode 0600, its directory must exist, one process at a time); ``store=`` takes
        any :class:`~eventsched.JobStore`. Without either, schedules live in memory.
        """
        if self._life.state is not State.CREATED:
            raise SchedulerStateError("configure the job scheduler before it starts")
        if clock is not None:
            if not callable(getattr(clock, "now", None)):
                raise TypeError(f"clock={clock!r} has no now() method (see eventsched.Clock)")
            self._clock = clock
        if state_file is not None and store is not None:
            raise TypeError("pass state_file= or store=, not both")
        if state_file is not None:
            self._store = SQLiteJobStore(state_file)
        if store is not None:
            if not isinstance(store, JobStore):
                raise TypeError(f"store={store!r} is not a JobStore (see eventsched.JobStore)")
            self._store = store
        if timezone is not None:
            self._timezone = to_timezone(timezone)
            self.timezone_configured = True
            for job in self._entries.values():
                job.use_default_timezone(self._timezone)
            # Their fingerprints changed (not started yet: noted anew).
            self._added_fingerprints = dict.fromkeys(
                job.fingerprint for job in self._entries.values()
            )
        self._bind_limits()

    # -- inspection --------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._life.state

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def timezone(self) -> tzinfo:
        """The default timezone of triggers given by name."""
        return self._timezone

    @property
    def store(self) -> JobStore:
        """Where the jobs' schedules are kept."""
        return self._store

    @property
    def state_file(self) -> str | None:
        """Where the store keeps the schedules, or None when they are in memory only."""
        return self._store.location

    def statistics(self) -> JobStatistics:
        """A snapshot of the run counters (see :class:`JobStatistics`)."""
        runs = self._runs
        return JobStatistics(
            jobs=len(self._entries),
            running=runs.running - runs.waiting,
            runs_started=runs.started,
            runs_completed=runs.completed,
            runs_failed=runs.failed,
            runs_timed_out=runs.timed_out,
            runs_aborted=runs.aborted,
            missed={str(reason): n for reason, n in runs.missed.items()},
            runs_retried=runs.retried,
            runs_manual=runs.manual,
        )

    def timings(self) -> JobTimings:
        """Histograms of the runs' lateness and duration (see :class:`JobTimings`)."""
        return self._runs.timings()

    def get_jobs(self) -> list[Job]:
        """Snapshots of every scheduled job, in the order they were added."""
        return [job.snapshot() for job in self._entries.values()]

    def get_job(self, job_id: str) -> Job:
        """A snapshot of one job. :raises JobLookupError: no such job"""
        return self._lookup(job_id).snapshot()

    # -- changing the schedule (JobMethods documents each) --------------------------------

    def add(self, job: Entry, *, replace_existing: bool) -> Job:
        """Schedule a job built by ``new_entry``; see :meth:`EventScheduler.add_job`."""
        if self._life.reached(State.STOPPING):
            raise SchedulerStateError(
                f"cannot add a job while the job scheduler is {self._life.state.value}"
            )
        id = job.id
        existing = self._entries.get(id)
        if existing is not None and not replace_existing:
            raise ConflictingIdError(
                f"a job with id {id!r} exists already; pass another id= or replace_existing=True"
            )
        if existing is not None:
            existing.removed = existing.withdrawn = True
            existing.persist = False  # its row is the new job's from now on
            existing.hand_runs_to(job)
            if existing.fingerprint == job.fingerprint and existing.next_fire is not None:
                # Same schedule: keep its place in it rather than starting over. (Before
                # start it has none yet: the store's row, if any, is taken up then.)
                self._saved[id] = SavedJob(
                    existing.fingerprint, existing.last_fire, existing.next_fire
                )
        self._entries[id] = job
        if self._added_fingerprints is not None:
            self._added_fingerprints[job.fingerprint] = None
        if self._life.is_(State.RUNNING):
            self._schedule_new(job, self._clock.now())
            self._sync.save_soon()
        log.debug("Added job {} ({})", id, job.trigger)
        return job.snapshot()

    def timezone_for(self, timezone: str | tzinfo | None) -> tzinfo:
        """The timezone a job's trigger given by name uses: its own, or the default."""
        return self._timezone if timezone is None else to_timezone(timezone)

    @property
    def _job_table(self) -> JobTable:
        # What JobMethods forwards to: this table itself (an EventScheduler's is its
        # JobScheduler).
        return self

    def remove_job(self, job_id: str) -> None:
        """Unschedule a job; runs in progress finish. :raises JobLookupError:"""
        job = self._lookup(job_id)
        del self._entries[job_id]
        job.removed = job.withdrawn = True
        job.persist = False
        self._saved.pop(job_id, None)
        self._sync.mark(job_id, None)
        self._sync.save_soon()
        # Its item in the timeline is stale now and dropped when it comes up: the
        # scheduler task sleeps on (at worst it wakes once for nothing).
        self._timeline.compact(self._entries.values(), len(self._entries))
        log.debug("Removed job {}", job_id)

    def pause_job(self, job_id: str) -> Job:
        """Stop a job firing until resumed (fire times meanwhile are not reported)."""
        job = self._lookup(job_id)
        if not job.paused:
            job.paused = True  # its item in the timeline is stale from now on
            if job.persist and self._life.is_(State.RUNNING):
                self._sync.mark(job.id, job.saved())  # a shared store shares the pause
                self._sync.save_soon()
        return job.snapshot()

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job from now on: its next fire time is computed afresh."""
        job = self._lookup(job_id)
        if job.standby:  # this process's definition takes the shared job back
            job.persist, job.standing_for = True, None
        if job.paused:
            job.paused = False
            if self._life.is_(State.RUNNING):
                job.set_next(next_fire_time(job.trigger, None, resume_from(job, self._clock.now())))
                if job.next_fire is not None:  # the fire times skipped while paused stay so
                    settle_before(job, job.next_fire)
                self._after_update(job)
                self._sync.save_soon()
                self._queue(job)
        return job.snapshot()

    def run_job(self, job_id: str) -> Job:
        """Start a run of the job now, outside its schedule; see :meth:`JobMethods.run_job`."""
        job = self._lookup(job_id)
        if not self._life.is_(State.RUNNING) or self._group is None:
            raise SchedulerStateError(
                f"run_job needs a running scheduler; the job scheduler is {self._life.state.value}"
            )
        if job.running >= job.max_instances:
            raise JobBusyError(
                f"job {job_id!r} has {job.running} run(s) in progress, its max_instances="
                f"{job.max_instances}; not started"
            )
        log.info("Job {}: run now (manual)", job_id)
        self._runs.start(self._group, job, self._clock.now(), manual=True)
        return job.snapshot()

    def next_fire_times(self, job_id: str, count: int = 5) -> list[datetime]:
        """The job's next fire times; see :meth:`JobMethods.next_fire_times`."""
        job = self._lookup(job_id)
        scheduled = self._life.reached(State.RUNNING)
        return preview(job, self._clock.now(), count, scheduled=scheduled)

    def _accepting(self) -> bool:
        return self._life.is_(State.RUNNING)

    # -- the scheduler task ------------------------------------------------------------

    def _wake(self) -> None:
        self._wakeup.set()

    def _queue(self, job: Entry) -> None:
        """Put a job in the timeline at its fire time; wake the task if it comes earlier."""
        timeline = self._timeline
        timeline.push(job)
        if job.ticket < 0:
            return  # it does not fire (paused, exhausted)
        at = job.fire_at
        if self._asleep and at is not None:
            until = self._asleep_until
            if until is None or at < until:
                self._asleep_until = at
                self._wake()
        timeline.compact(self._entries.values(), len(self._entries))

    def _lookup(self, job_id: str) -> Entry:
        try:
            return self._entries[job_id]
        except KeyError:
            raise JobLookupError(f"no job with id {job_id!r}") from None
