"""The job table's side of its job store: what a run's end, a job's new place in its
schedule and a start's saved states write.

:class:`StoreTable` is the half of :class:`~._table.JobTable` that marks changes for the
store (:class:`~._sync.StoreSync` saves them: a pass's claims at once, a run's end with
the job's next claim or the writer's round) and gives a job added before the start its
saved schedule, one by one (the bulk take-up of plain rows is :mod:`._resume`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from loguru import logger

from . import _sync
from ._claims import claimed_since
from ._entry import Entry
from ._planning import Miss
from ._records import MissReason
from ._sharedtable import SharedStoreTable
from ._startnotes import StartNotes
from ._store import SavedJob
from ._sync import Change
from ._triggers import interval_of, next_fire_time, set_run_date, set_start

__all__ = ["StoreTable"]

log = logger.bind(component="jobs")


class StoreTable(SharedStoreTable):
    """Mixed into :class:`~._table.JobTable`, which sets these attributes."""

    #: The saved states loaded at start, until each job takes its own up.
    _saved: dict[str, SavedJob]
    #: The states as the store holds them (loaded at start), until each job resumes.
    _stored: dict[str, SavedJob]
    _notes: StartNotes

    def _run_ended(self, job: Entry, fire_time: datetime) -> None:
        """Clear the claim of a run that ended (or never started) in the store."""
        job.unclaim(fire_time)
        if job.unjittered:
            job.unjittered.pop(fire_time, None)
        if not self._sync.durable:
            return  # saved at close (StoreSync)
        owner = self._entries.get(job.id)
        if owner is not job and owner is not None and owner.shares_runs_with(job):
            target, owner.last_outcome = owner, job.last_outcome
        else:
            target = job
        if not target.persist:
            if target.standing_for is not None:
                # Standing by for another process's definition: its row is not ours to
                # write, but the claim this run held must still be finished there (a
                # claim left open counts, in the other processes, as a run in progress
                # against max_instances). The row as last seen, with our open claims:
                # the store then finishes the claim and leaves the row as it is.
                state = replace(target.standing_for, running=target.in_flight)
                self._sync.mark(target.id, state, ended=True)
                self._sync.save_soon()
            return
        if self._ends_soon(target):
            # Until its end is saved, the run counts against max_instances in the other
            # processes' claims: saved now, not with this process's next claim of the
            # job (another process may make that claim first).
            self._sync.mark(target.id, target.saved(), ended=True)
            self._sync.save_soon()
        else:
            # Its state when saved: usually with the job's next claim, which marks it anew.
            self._sync.mark(target.id, target, urgent=False, ended=True)

    def _claimed_soon(self) -> Callable[[Change], bool]:
        """For the writer's round (see StoreSync.claimed_soon): whether a change is the
        end of a job's run (a job claimed before) and the job fires, so is claimed
        again, within SAVE_DELAY from now. Not a job never claimed: a start's new rows
        go with the writer, so that the first passes' saves carry claims only."""
        now = self._clock.now()
        until = now + timedelta(seconds=_sync.SAVE_DELAY)
        # Claims recorded by a time (see _claims) write no row: only a job with jitter
        # (never recorded so) has its end carried by its next claim.
        by_time = self._sync.rows_written is not None

        def soon(change: Change) -> bool:
            if not isinstance(change, Entry) or change.last_fire is None or change.removed:
                return False
            if by_time and not change.jitter:
                return False
            at = change.fire_at
            return at is not None and now < at <= until and not change.paused

        return soon

    def _after_update(
        self, job: Entry, stored: SavedJob | None = None, *, urgent: bool = True
    ) -> None:
        """Save the job's fire times (unless ``stored`` holds them already) and retire
        it once its trigger is exhausted. ``urgent``: with the next pass's claims (see
        :meth:`StoreSync.mark`); else with the job's first claim or the writer's save."""
        if job.persist and not job.removed and (self._sync.durable or job.next_fire is None):
            # (The default in-memory store gets the states of the jobs still scheduled
            # at close; an exhausted job leaves the table now, so its state goes now.)
            if stored is None:
                # A pass's claims and the like: the state is built when saved (StoreSync.mark).
                self._sync.mark(job.id, job, urgent=urgent)
            else:
                state = job.saved()
                if stored.paused is None:
                    # A store (or a row) that does not record pausing: not a change.
                    state = job.saved(paused=None)
                if state != stored:
                    self._sync.mark(job.id, state, urgent=urgent)
        if job.next_fire is None and not job.removed:
            job.removed = True
            if self._entries.get(job.id) is job:
                del self._entries[job.id]
            log.debug("Job {} has no more fire times and was removed", job.id)

    def _schedule_new(self, job: Entry, now: datetime, *, queue: bool = True) -> None:
        """Give a newly started job its first fire time, or its saved one (``queue``:
        and put it on the timeline; the scheduler's start queues all at once)."""
        saved = self._saved.pop(job.id, None)
        stored = self._stored.pop(job.id, None)
        interrupted: tuple[datetime, ...] = ()
        if saved is not None:
            job.last_outcome = saved.last_outcome  # history, whatever the definition now
            interrupted = saved.running
        if saved is not None and saved.fingerprint != job.fingerprint:
            self._notes.changed(job.id, saved.fingerprint, job.fingerprint)
            job.replaces = saved.fingerprint
            saved = None
        if saved is not None and saved.paused is not None and self._shared:
            # Pausing shared through the store is the store's; one that only records it
            # (SQLite) leaves it to the code, and the row is rewritten if they differ.
            job.paused = saved.paused
        if job.deferred == "start":
            first = saved.next_fire_time if saved is not None else None
            set_start(job.trigger, first or now + interval_of(job.trigger))
        elif job.deferred == "now":
            set_run_date(job.trigger, now)
        job.deferred = None
        if saved is not None:
            job.last_fire, following = saved.last_fire_time, saved.next_fire_time
            before = self._sync.claimed_before
            if (
                before is not None
                and following is not None
                and following < before
                and not saved.paused
                and not job.jitter
            ):
                # Claimed since the row was written, by the store's time (see _claims).
                claimed, following = claimed_since(job, following, before)
                job.last_fire = claimed[-1]
                interrupted += tuple(claimed)
            job.set_next(following)
            if following is not None and following < now:
                self._notes.due(job.id, following)
        else:
            job.set_next(next_fire_time(job.trigger, None, now))
        # A job resuming its saved schedule unchanged costs the store no write: a start
        # with many saved jobs rewrites only the rows that changed. The others are not
        # urgent: the writer saves them (the caller asks it to, save_soon) in chunks,
        # or the job's first claim does. Urgent, a start's 10,000 new jobs were all in
        # the first pass's save (0.15 s), which the first runs waited for.
        if interrupted:
            job.last_outcome = "interrupted"
            miss = Miss(MissReason.INTERRUPTED, interrupted)
            if (event := self._runs.missed_event(job, miss, now)) is not None:
                self._reports.append(event)
                self._wake()  # the next pass emits it
        if not (saved is not None and saved is stored and job.resumes(saved)):
            self._after_update(job, saved if saved is stored else None, urgent=False)
        if queue and not job.removed:
            self._queue(job)
