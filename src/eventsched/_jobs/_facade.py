"""The job methods of :class:`~eventsched.EventScheduler`, forwarding to its job scheduler.

Written out, not generated, so that "go to definition" on ``scheduler.add_job`` lands
here, on the signature and its documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeVar

from .._clock import Clock
from ._entry import new_entry
from ._records import Job, JobStatistics
from ._retry import Backoff
from ._store import JobStore
from ._timings import JobTimings

if TYPE_CHECKING:
    from ._scheduler import JobScheduler
    from ._table import JobTable
from ._triggers import BaseTrigger

__all__ = ["JobMethods"]

JobFunc = TypeVar("JobFunc", bound=Callable[..., Any])


class JobMethods:
    """Mixin: ``add_job`` and friends, for EventScheduler (whose ``_jobs`` is its
    JobScheduler) and JobScheduler itself (whose table is itself)."""

    __slots__ = ()
    _jobs: JobScheduler  # an EventScheduler's

    @property
    def _job_table(self) -> JobTable:
        """The jobs these methods change (JobTable overrides this with itself)."""
        return self._jobs

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
        retries: int = 0,
        retry_backoff: Backoff | float | None = None,
        **trigger_args: Any,
    ) -> Job:
        """Schedule ``func(*args, **kwargs)``; works before start and while running.

        ``trigger`` is ``"interval"`` (``weeks``, ``days``, ``hours``, ``minutes``,
        ``seconds``, ``start_date``, ``end_date``; the first run is one interval after
        the scheduler starts or the job is added, unless ``start_date`` says otherwise),
        ``"cron"`` (the fields ``year``, ``month``, ``day``, ``week``, ``day_of_week``,
        ``hour``, ``minute``, ``second``, or ``crontab="*/5 * * * *"``), ``"date"``
        (``run_date``; omitted: run once, now), or an APScheduler 3 trigger instance.

        Day-of-week numbering: a ``crontab=`` string means what crontab(5) means (0 and
        7 are Sunday, ``1-5`` Monday to Friday); the keyword field ``day_of_week=``
        keeps APScheduler's meaning (0 is Monday, 6 Sunday). Day names mean the same in
        both. As in crontab(5), a ``crontab=`` string that restricts both day-of-month
        and day-of-week fires on a day matching either.

        :param id: unique id (default: the function's module and qualified name); also
            the key under which the job store keeps its schedule
        :param max_instances: most runs at once; a fire time beyond it is reported missed
        :param misfire_grace_time: seconds a run may be late when not coalescing
        :param coalesce: collapse several due fire times into one run
        :param timeout: seconds a run may take; then it is cancelled and reported failed
        :param jitter: up to this many random seconds added to each fire time
        :param timezone: for a trigger given by name (default: the scheduler's, UTC)
        :param replace_existing: replace a job with the same id instead of raising
        :param paused: add the job paused (see :meth:`resume_job`)
        :param retries: try a failed run (exception or timeout) again up to this many
            times, each retry a run of its own announced by ``JOB_RETRY`` (default 0)
        :param retry_backoff: the delays between attempts: a :class:`~eventsched.Backoff`,
            or seconds (a fixed delay); default ``Backoff()``: 1 s, doubling, at most 300 s
        :raises ConflictingIdError: a job with this id exists and not replace_existing
        :raises SchedulerStateError: the scheduler is shutting down or has stopped
        """
        table = self._job_table
        job = new_entry(
            func,
            trigger,
            id=id,
            name=name,
            args=args,
            kwargs=kwargs,
            max_instances=max_instances,
            misfire_grace_time=misfire_grace_time,
            coalesce=coalesce,
            timeout=timeout,
            jitter=jitter,
            timezone=table.timezone_for(timezone),
            own_timezone=timezone is not None,
            paused=paused,
            trigger_args=trigger_args,
            retries=retries,
            retry_backoff=retry_backoff,
        )
        return table.add(job, replace_existing=replace_existing)

    def job(
        self, /, trigger: str | BaseTrigger = "interval", **options: Any
    ) -> Callable[[JobFunc], JobFunc]:
        """Decorator form of :meth:`add_job`: ``@scheduler.job("cron", minute="*/5")``.

        Takes the same arguments as :meth:`add_job` after ``func``; returns the
        function unchanged.
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
        """Unschedule a job; runs in progress finish.

        :raises JobLookupError: no job has this id
        """
        self._job_table.remove_job(job_id)

    def pause_job(self, job_id: str) -> Job:
        """Stop a job firing until resumed; fire times meanwhile are not reported.

        :raises JobLookupError: no job has this id
        """
        return self._job_table.pause_job(job_id)

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job from now on: its next fire time is computed afresh.

        :raises JobLookupError: no job has this id
        """
        return self._job_table.resume_job(job_id)

    def run_job(self, job_id: str) -> Job:
        """Start a run of the job now, outside its schedule; returns its snapshot.

        The run is counted (``runs_started``, ``runs_manual``), says ``"manual": true``
        in its ``JOB_*`` events, has the job's timeout and retries, and starts a
        correlation chain of its own. The schedule does not move: the next fire time
        stays what it was. A paused job runs too (the call is explicit).

        :raises JobLookupError: no job has this id
        :raises JobBusyError: ``max_instances`` runs of it are in progress (a retry
            waiting counts); nothing was started
        :raises SchedulerStateError: the scheduler is not running
        """
        return self._job_table.run_job(job_id)

    def next_fire_times(self, job_id: str, count: int = 5) -> list[datetime]:
        """The job's next ``count`` fire times (fewer if its trigger ends), oldest first.

        Runs nothing and changes nothing; works before start (assuming a start now; a
        saved schedule is not read until start) and while running. Without jitter. For
        a paused job: the fire times it would have if resumed now.

        :raises JobLookupError: no job has this id
        :raises ValueError: ``count`` is not an integer from 1 to 1000
        """
        return self._job_table.next_fire_times(job_id, count)

    def get_job(self, job_id: str) -> Job:
        """A snapshot of one job.

        :raises JobLookupError: no job has this id
        """
        return self._job_table.get_job(job_id)

    def get_jobs(self) -> list[Job]:
        """Snapshots of every scheduled job, in the order they were added."""
        return self._job_table.get_jobs()

    def configure_jobs(
        self,
        *,
        clock: Clock | None = None,
        state_file: str | PathLike[str] | None = None,
        timezone: str | tzinfo | None = None,
        store: JobStore | None = None,
    ) -> None:
        """Change the jobs' clock, job store or default timezone; before start only.

        Arguments left as None keep their current value.

        :param clock: wall time for triggers (e.g. :class:`eventsched.testing.VirtualClock`)
        :param state_file: keep the schedules across restarts in this SQLite file
            (:class:`~eventsched.SQLiteJobStore`: created with mode 0600, its directory
            must exist, one process at a time)
        :param timezone: for triggers given by name (default UTC)
        :param store: any :class:`~eventsched.JobStore`, instead of ``state_file``
        :raises SchedulerStateError: the scheduler has started
        """
        self._job_table.configure(
            clock=clock, state_file=state_file, timezone=timezone, store=store
        )

    def job_statistics(self) -> JobStatistics:
        """A snapshot of the job run counters (see :class:`~eventsched.JobStatistics`)."""
        return self._job_table.statistics()

    def job_timings(self) -> JobTimings:
        """Histograms of how late job runs start and how long they take.

        See :class:`~eventsched.JobTimings`; exported by the HTTP service as
        ``eventsched_job_lateness_seconds`` and ``eventsched_job_duration_seconds``.
        """
        return self._job_table.timings()
