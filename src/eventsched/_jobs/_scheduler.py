"""The job scheduler: one anyio task that fires jobs on APScheduler triggers.

The :class:`JobScheduler` is a service of the :class:`~eventsched.EventScheduler`: one
task in its top-level task group. It keeps the jobs in a heap by fire time
(:mod:`._timeline`), sleeps until the earliest (converted to the event loop's clock each
time it sleeps) and wakes early only when a change brings an earlier fire time; it
never polls. Each due fire time becomes a run in a task group this task owns, or a
``JOB_MISSED`` report, never nothing (:mod:`._planning` decides which).

Each pass claims the fire times it will run in the job store, in one transaction,
before any of those runs starts (:mod:`._store` has the contract; :mod:`._claims` how
far ahead, how many, and how): a fire time runs at most once, even across a crash, and
a run a crash cut short is reported (``interrupted``) at the next start. With a durable
store a pass claims a lead ahead, so that the commit is done before the fire times
rather than on their path; each claimed run is held (:mod:`._held`) until its fire
time is near (:data:`RELEASE_AHEAD`), then waits on the shared timers in its lane and
decides whether it may still start (:func:`~._giveback.at_fire_time`: a job paused,
removed or replaced meanwhile, or ``max_instances`` runs going).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from loguru import logger

from .._events import Event, _handling
from .._lifecycle import State
from ._claims import claim_lead, claim_limit, covered
from ._entry import Entry
from ._facade import JobMethods
from ._giveback import settle
from ._lanes import MAX_IDLE
from ._planning import Miss, plan
from ._records import MissReason
from ._resume import resume_plain
from ._shared import drop_lost_misses
from ._sqliterows import SavedColumns
from ._startnotes import StartNotes
from ._sync import SAVE_DELAY
from ._table import JobTable
from ._triggers import due_fire_times

__all__ = ["JobScheduler"]

log = logger.bind(component="jobs")

#: The scheduler task wakes this long before a fire time and starts the run's task,
#: which then sleeps until the fire time itself. So the job starts on a timer of its
#: own, as punctually as a bare ``sleep_until`` loop, with the task spawn, the claim
#: in the job store and the scheduler's bookkeeping done ahead. It also absorbs the
#: rounding between the loop clock and microsecond datetimes.
RUN_LEAD: Final = 0.002
#: A pass also starts the runs due this much beyond RUN_LEAD: with many jobs whose fire
#: times are close together (10,000 a second), one pass then starts every run of the
#: next couple of milliseconds instead of waking once per fire time; each run still
#: starts on its own timer.
BATCH: Final = 0.002
#: A fire time this close beyond RUN_LEAD counts as due too: the loop clock and the
#: wall clock are converted through floats and microsecond datetimes, and a wake-up
#: a hair early must not cost a second trip (or, in virtual time, endless ones).
EARLY_TOLERANCE: Final = 0.0002
_NEAR: Final = timedelta(seconds=RUN_LEAD + BATCH + EARLY_TOLERANCE)
_SAVE_DELAY: Final = timedelta(seconds=SAVE_DELAY)
#: Seconds beyond RUN_LEAD + BATCH the releaser hands held runs to their lanes (to wait
#: on the shared timers) while fewer than RELEASE_MOST wait there. At RUN_LEAD + BATCH it
#: woke every ~2 ms: 5-7% of the CPU with a state file at 10,000 runs a second. Unbounded,
#: at 20,000 a second more waited than lanes are kept idle (MAX_IDLE), and lanes churned:
#: p99 6-7x (docs/benchmarks.md, "Claims recorded by a time").
RELEASE_AHEAD: Final = 0.01
RELEASE_MOST: Final = MAX_IDLE // 2
_RELEASE: Final = _NEAR + timedelta(seconds=RELEASE_AHEAD)


class JobScheduler(JobTable, JobMethods):
    """The scheduler task: runs jobs on APScheduler triggers inside an EventScheduler.

    Every :class:`~eventsched.EventScheduler` has one (``scheduler.jobs``) and forwards
    ``add_job`` and friends to it; you rarely build one yourself. All methods except
    :meth:`run`, :meth:`wait_idle` and :meth:`flush_state` are sync and must be called
    on the event loop thread (from another thread, go through
    ``anyio.from_thread.run_sync``).

    :param emitter: where events go (the EventScheduler, whose accounting counts them)
    :param clock: wall time for triggers (default :class:`~eventsched.SystemClock`)
    :param state_file: path of an SQLite file that keeps each job's schedule across
        restarts (None, the default: in memory only)
    :param timezone: for triggers given by name (default UTC); a job may override it
    :param store: a :class:`~eventsched.JobStore` instead of ``state_file``
    """

    name = "jobs"
    #: Passes of the scheduler task (wake-ups), for tests: none while idle.
    passes = 0
    #: Seconds ahead of a fire time a pass claims it (see :func:`claim_lead`).
    _lead = 0.0
    #: The most jobs a pass claims (see :func:`claim_limit`); None: no limit.
    _limit: int | None = None
    #: Set once the scheduler task's passes are over (see :meth:`wait_idle`).
    _passes_over: anyio.Event | None = None
    #: Set when runs are held (see _release_held), replaced by the releaser as it looks.
    _held_changed: anyio.Event | None = None

    # -- the Service protocol ----------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The scheduler task: lock and load the job store, then fire jobs until shutdown.

        Returns after :meth:`begin_shutdown` once the runs in progress are done. When
        cancelled, the runs still going are cancelled and counted as aborted. Either
        way the store gets the last changes (shielded, up to :data:`FLUSH_TIMEOUT` s).

        :raises JobStateError: the store cannot be used (before started)
        """
        self._life.require(State.CREATED, "run the job scheduler")
        self._life.advance(State.STARTING)
        _handling.set(None)  # each run starts a chain of its own
        sync = self._sync
        sync.store = self._store  # changes made before start (removals) stay pending
        self._lead = claim_lead(self._store) if sync.durable else 0.0
        self._limit = claim_limit(self._store) if sync.durable else None
        try:
            await self._take_up_saved()
            async with anyio.create_task_group() as group:
                self._group = group
                writer = anyio.CancelScope()
                group.start_soon(sync.writer, writer, name="eventsched job state")
                # Shared stores only (PostgresJobStore); cancelled by _stop_watching.
                self._watcher = watcher = anyio.CancelScope()
                group.start_soon(self._watch_store, watcher, name="eventsched job store watch")
                releaser = anyio.CancelScope()
                self._held_changed = anyio.Event()
                if self._lead:
                    group.start_soon(self._release_held, releaser, name="eventsched held runs")
                self._life.advance(State.RUNNING)
                task_status.started()
                self._passes_over = anyio.Event()
                try:
                    await self._loop()
                finally:
                    self._passes_over.set()
                    self._life.advance(State.STOPPING)
                    self._runs.close()  # idle run lanes end, busy ones after their run
                    writer.cancel()
                    self._stop_watching()  # the watcher (a poll taking over: at its end)
                    releaser.cancel()
        finally:
            self._group = None
            self._life.advance(State.STOPPED)
            # Claims of a pass cancelled while saving them that could not be handed back.
            self._runs.report_unstarted()
            if not sync.durable:
                # The default in-memory store is not kept in step while running (see
                # StoreSync): it gets every job's final state now, in one save.
                for job in self._entries.values():
                    if job.persist and not job.removed:
                        sync.mark(job.id, job.saved())
            await sync.close()

    async def _take_up_saved(self) -> None:
        """Lock and load the store, and give each job added so far its place in its
        schedule (its saved one if it has one), all put on the timeline at once."""
        # The distinct fingerprints (usually few), so that the rows can name theirs by
        # number (see read_columns); noted as the jobs were added.
        fingerprints = list(self._added_fingerprints or ())
        self._added_fingerprints = None
        loaded = await self._sync.open(fingerprints)
        if self._store.location is not None:
            log.info("Job state file {}: {} saved job(s)", self._store.location, len(loaded))
        now = self._clock.now()
        resumed = 0
        if isinstance(loaded, SavedColumns):  # the SQLite store: see _resume
            before = self._sync.claimed_before
            resumed, left = resume_plain(
                self._entries,
                loaded,
                fingerprints,
                now.timestamp(),
                self._timeline,
                self._notes,
                None if before is None else before.timestamp(),
            )
            if left:  # read again, checked, for the job-by-job take-up
                loaded.others.update(await self._store.load_some(left))  # type: ignore[attr-defined]
            loaded = loaded.others
        self._stored = loaded
        self._saved.update(loaded)
        if resumed != len(self._entries):
            # The jobs not resumed above (all of them with other stores), one by one.
            jobs = [job for job in self._entries.values() if job.next_fire is None]
            for job in jobs:
                self._schedule_new(job, now, queue=False)
            self._sync.order_later()  # new rows in order of fire time: see there
            self._sync.save_soon()  # their rows, by the writer (see _schedule_new)
            # On the timeline in one heapify: nothing sleeps on it yet to wake.
            self._timeline.push_all(job for job in jobs if not job.removed)
        self._notes.close()
        self._notes = StartNotes(limit=None)  # jobs added from now on: one line each

    def begin_shutdown(self) -> None:
        """Start no new runs: the scheduler task stops; runs in progress go on."""
        if self._life.is_(State.RUNNING):
            self._life.advance(State.STOPPING)
        self._runs.stop_retries()  # a retry waiting its delay ends now (aborted)
        self._wake()

    async def wait_idle(self) -> None:
        """Return once no run is in progress and, when stopping, the last pass is over.

        The pass first: one that was saving its claims when shutdown began still
        reports its misses after the save, and the shutdown closes event intake only
        after this returns (within the grace period), so the reports become events.
        """
        # Only once stopping: while running, passes go on (and this is "no run now").
        if self._passes_over is not None and not self._life.is_(State.RUNNING):
            await self._passes_over.wait()
            await self._takeover_over()  # its reports too (SharedStoreTable._takeover)
        await self._runs.wait_idle()

    async def flush_state(self) -> None:
        """Save pending changes to the job store now."""
        await self._sync.flush()

    async def _loop(self) -> None:
        timeline = self._timeline
        # A pass wakes RUN_LEAD + the claim lead before the earliest fire time and claims
        # every fire time up to twice the lead beyond RUN_LEAD + BATCH: its commit has
        # the lead's time before the first of its runs, and passes come once per lead.
        wake = RUN_LEAD + self._lead
        lead = timedelta(seconds=2 * self._lead)
        # Claimed only once the earliest is within the claim lead: a pass that only
        # hands held runs to their lanes (every couple of milliseconds) claims nothing,
        # so there is still one transaction per lead.
        claim_from = _NEAR + timedelta(seconds=self._lead)
        while self._life.is_(State.RUNNING):
            self._wakeup = anyio.Event()
            self.passes += 1
            now = self._clock.now()
            near = now + _NEAR
            horizon = near + lead
            reports, self._reports = self._reports, []
            starts: list[tuple[Entry, datetime]] = []
            first = timeline.earliest()
            due = (
                timeline.pop_due(horizon, self._limit)
                if first is not None and first - now <= claim_from
                else []
            )
            for job in due:
                self._fire(job, now, near, horizon, reports, starts)
            # Back in the timeline only now, so that no job fires twice in one pass.
            for job in due:
                timeline.push(job)
            if starts or (reports and self._shared):  # shared: claim misses first too
                # Every job's next fire time is now at or after the earliest: every fire
                # time before it was planned (claims recorded by a time, see _claims).
                earliest = timeline.earliest()
                before = horizon if earliest is None or earliest > horizon else earliest
                await self._claim_and_start(starts, now, reports, near, before)
            for report in reports:
                await self._runs.emit(report)
            if not self._life.is_(State.RUNNING):
                break
            earliest = timeline.earliest()
            now = self._clock.now()
            delay = math.inf if earliest is None else (earliest - now).total_seconds() - wake
            if delay > 0:
                # Deadline on the loop's clock, recomputed from the wall clock each time.
                self._asleep, self._asleep_until = True, earliest
                try:
                    with anyio.move_on_after(delay):
                        await self._wakeup.wait()
                finally:
                    self._asleep = False
            else:
                await anyio.lowlevel.checkpoint()

    async def _release_held(self, scope: anyio.CancelScope) -> None:
        """Hand the claimed runs held back (:mod:`._held`) to their lanes as their fire
        times come near (see RELEASE_AHEAD): a task of its own, since the
        scheduler task may then be waiting for the next claim's commit (tens of
        milliseconds on PostgreSQL), which the held runs must not wait for."""
        with scope:
            while self._life.is_(State.RUNNING):
                changed = self._held_changed = anyio.Event()
                held = self._runs.held.earliest()
                delay = math.inf if held is None else self._seconds_until(held) - RUN_LEAD
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await changed.wait()
                    continue
                assert self._group is not None
                now = self._clock.now()
                # (Not ahead for a shared store: its stop's hand-backs race others.)
                ahead = now + (_NEAR if self._shared else _RELEASE)
                self._runs.release(self._group, now + _NEAR, ahead, RELEASE_MOST)
                await anyio.lowlevel.checkpoint()

    def _seconds_until(self, moment: datetime) -> float:
        return (moment - self._clock.now()).total_seconds()

    def _fire(
        self,
        job: Entry,
        now: datetime,
        near: datetime,
        horizon: datetime,
        reports: list[Event],
        starts: list[tuple[Entry, datetime]],
    ) -> None:
        """Plan a job's due fire times: runs to claim and start, and misses to report.

        Those up to ``near`` (RUN_LEAD + BATCH ahead) are planned as due now; those
        beyond it, up to ``horizon`` (the claim lead), are claimed ahead: none of them
        is late, so none is coalesced or missed here (max_instances is checked when
        each one's fire time comes, see :func:`~._giveback.at_fire_time`).
        """
        assert job.next_fire is not None
        assert job.fire_at is not None
        # What is due is what falls before the horizon (and at least the first fire
        # time, or a trigger would answer with that same time again).
        ahead: list[datetime] = []
        if job.fire_at > near:
            due, more, following = due_fire_times(
                job.trigger, job.next_fire, max(horizon, job.next_fire)
            )
            if not more:  # (more: over MAX_CATCH_UP within the lead: planned as due)
                due, ahead = ahead, due
        else:
            due, more, following = due_fire_times(
                job.trigger, job.next_fire, max(near, job.next_fire)
            )
            if following is not None and following <= horizon and not more:
                extra, beyond, after = due_fire_times(job.trigger, following, horizon)
                if not beyond:
                    ahead, following = extra, after
        first = due or ahead
        job.last_fire = (ahead or due)[-1]
        if job.jitter and job.fire_at != first[0]:
            # A run handed back returns the schedule to the trigger's time, not this one.
            job.unjittered[job.fire_at] = first[0]
            first[0] = job.fire_at  # the first with its jitter
        job.set_next(following)
        for at in ahead:
            job.claim(at)
            starts.append((job, at))
        if due:
            self._plan(job, due, more, now, reports, starts)
        self._after_update(job)

    def _plan(
        self,
        job: Entry,
        due: list[datetime],
        more: bool,
        now: datetime,
        reports: list[Event],
        starts: list[tuple[Entry, datetime]],
    ) -> None:
        """The fire times due now: runs to claim and start, and misses to report."""
        if (
            len(due) == 1
            and not more
            and job.running + job.waiting < job.max_instances
            and (job.coalesce or job.misfire_grace_time is None)
        ):
            # The common case, and what plan() would decide: one fire time, room to
            # run it, no grace to check. Skipping plan() saves its records per run.
            job.claim(due[0])
            starts.append((job, due[0]))
        else:
            decided = plan(
                due,
                now,
                coalesce=job.coalesce,
                misfire_grace_time=job.misfire_grace_time,
                max_instances=job.max_instances,
                running=job.running + job.waiting,
                more=more,
            )
            # Reported: a claim of this pass that never starts cannot be handed back
            # to before one of them (it would come round again).
            if decided.missed:
                listed = [at for one in decided.missed for at in one.fire_times]
                settle(job, due[-1] if more or not listed else max(listed))
            # One JOB_MISSED per job and pass, whatever the reasons (see missed_event).
            if (
                decided.missed
                and (event := self._runs.missed_event(job, decided.missed, now)) is not None
            ):
                reports.append(event)
            for at in decided.run:
                job.claim(at)
                starts.append((job, at))

    async def _claim_and_start(
        self,
        starts: list[tuple[Entry, datetime]],
        now: datetime,
        reports: list[Event],
        near: datetime,
        before: datetime,
    ) -> None:
        """Save the claims of this pass in one transaction, then start those runs (the
        ones beyond ``near`` held until shortly before their fire times, see
        :meth:`_release_held`). ``before``: every fire time before it is planned (a
        store that records claims by a time takes those claims so, see _claims)."""
        try:
            # The default in-memory store is saved at close only (see StoreSync).
            sync = self._sync
            if sync.rows_written is not None:
                soon = before + _SAVE_DELAY
                sync.cover(before, covered(starts, before, soon, sync.rows_written))
            refused = await sync.flush(urgent_only=True) if sync.durable else frozenset()
        except Exception:
            log.exception("Could not save to the job store {}", self._store.location)
            unsaved: dict[str, list[datetime]] = {}
            for job, at in starts:
                settle(job, at)  # reported below
                self._run_ended(job, at)
                unsaved.setdefault(job.id, []).append(at)
            for job, _ in dict.fromkeys(starts):
                if job.id in unsaved:
                    miss = Miss(MissReason.NOT_SAVED, tuple(unsaved.pop(job.id)))
                    if (event := self._runs.missed_event(job, miss, now)) is not None:
                        reports.append(event)
            return
        except BaseException:
            for job, at in starts:
                self._runs.hand_back(job, at)  # the claims may be saved: hand them back
                self._run_ended(job, at)  # cancelled: none of them starts
            raise
        drop_lost_misses(reports, refused, self._runs.missed)
        assert self._group is not None
        held = False
        for job, at in starts:
            if job.id in refused or not self._sync.claimed(job.id, at):  # shared stores
                log.debug("Job {}: fire time {} was claimed elsewhere", job.id, at)
                settle(job, at)  # handled there: never handed back from here
                self._run_ended(job, at)
            else:
                self._runs.start(self._group, job, at, hold=at > near)
                held = held or at > near
        if held and self._held_changed is not None:
            self._held_changed.set()  # the releaser may sleep for a later one, or none
