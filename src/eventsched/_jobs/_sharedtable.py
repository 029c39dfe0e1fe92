"""The job table's side of a job store shared by several processes.

:class:`SharedStoreTable` is the half of :class:`~._table.JobTable` that a store shared
by processes (:class:`~eventsched.PostgresJobStore`: it has ``watch``) talks to: rows
other processes wrote, taken up (:mod:`._shared`); runs of dead processes, and fire
times the store did not claim because ``max_instances`` runs of the job were in
progress across the processes, reported; ``max_instances`` handed to the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import anyio

from .._clock import Clock
from .._events import Event
from .._lifecycle import Lifecycle, State
from ._entry import Entry
from ._planning import Miss
from ._records import MissReason
from ._runs import Runs
from ._shared import take_up
from ._store import JobStore, SavedJob
from ._sync import SAVE_DELAY, StoreSync

__all__ = ["SharedStoreTable"]


class SharedStoreTable:
    """Mixed into :class:`~._table.JobTable`, which sets these attributes."""

    _entries: dict[str, Entry]
    _store: JobStore
    _sync: StoreSync
    _runs: Runs
    _clock: Clock
    _reports: list[Event]
    _life: Lifecycle
    #: Set when the watcher's poll in progress, which may take over dead processes'
    #: runs, is over (None: no such poll); see :meth:`_takeover`.
    _taking_over: anyio.Event | None = None
    #: The watcher's scope (set by the scheduler task), and whether it is to go on.
    _watcher: anyio.CancelScope | None = None
    _watching = True
    #: Whether the store is shared by several processes (set by :meth:`_bind_limits`).
    _shared = False

    def _wake(self) -> None:
        raise NotImplementedError

    def _queue(self, job: Entry) -> None:
        raise NotImplementedError

    def _bind_limits(self) -> None:
        """Note whether the store is shared by several processes (it has ``watch``), and
        hand it the jobs' ``max_instances`` if so. Called whenever the store is set
        (before start): every run's end asks ``_shared``, which is then no lookup."""
        self._shared = callable(getattr(self._store, "watch", None))
        bind_limits = getattr(self._store, "bind_limits", None)
        if callable(bind_limits):  # a store shared by processes (PostgresJobStore)
            bind_limits(self._max_instances, self._limited_elsewhere)

    def _ends_soon(self, job: Entry) -> bool:
        """Whether a run's end must be saved at once: the store is shared with other
        processes, and the job's next fire time comes before the writer's delay is
        over."""
        if not self._shared or getattr(self._store, "alone", False):
            return False
        following = job.fire_at
        if following is None or job.paused:
            return False
        return (following - self._clock.now()).total_seconds() < SAVE_DELAY

    def _adopt(self, job_id: str, saved: SavedJob | None) -> None:
        """Take up the schedule another process saved for a job whose change was refused."""
        job = self._entries.get(job_id)
        if job is None or saved is None:
            return
        taken = take_up(job, saved, refused=True)
        if taken is None:  # this definition is the newer: written over the row
            if job.persist:
                self._sync.mark(job_id, job.saved())
                self._sync.save_soon()
            return
        if not taken:
            return
        # Back on the timeline at its new time (the old item goes stale): wakes the task
        # only if that comes before the time it sleeps until.
        self._queue(job)

    async def _watch_store(self, scope: anyio.CancelScope) -> None:
        """Hear of the other processes' changes, for a store shared by several
        (:class:`~eventsched.PostgresJobStore` has ``watch``; the others do not)."""
        watch = getattr(self._store, "watch", None)
        if callable(watch):
            with scope:
                await watch(self._store_changed, self._takeover)

    @contextlib.contextmanager
    def _takeover(self) -> Iterator[list[str]]:
        """Around one poll: the jobs whose dead processes' runs it takes over and reports.

        None once stopping: its reports might meet closed intake and be log lines only;
        the runs stay unfinished for a live process, or the next start, to report. A
        poll that began while running is waited for by the shutdown (:meth:`wait_idle`)
        and not cancelled when the passes end (:meth:`_stop_watching`): it was cut off
        with its fires marked ``interrupted`` in the database and no ``JOB_MISSED``
        (seen in tests/postgres/test_processes.py under load, when a survivor's stop
        came during the poll that took over the killed process's runs).
        """
        if not self._life.is_(State.RUNNING):
            yield []
            return
        self._taking_over = over = anyio.Event()
        try:
            yield list(self._entries)
        finally:
            self._taking_over = None
            over.set()
            if not self._watching and self._watcher is not None:  # passes ended meanwhile
                self._watcher.cancel()

    def _stop_watching(self) -> None:
        """The passes are over: cancel the watcher now, or at the end of the poll taking
        over runs (see :meth:`_takeover`)."""
        self._watching = False
        if self._taking_over is None and self._watcher is not None:
            self._watcher.cancel()

    async def _takeover_over(self) -> None:
        """Return once no poll is taking over dead processes' runs."""
        if self._taking_over is not None:
            await self._taking_over.wait()

    async def _store_changed(self, polled: Any) -> None:
        """Rows other processes changed (``polled.rows``, at ``polled.versions``) and
        the runs of dead processes this one reports (``polled.interrupted``); see
        :mod:`._shared`."""
        async with self._sync.quiet():
            for job_id, saved in polled.rows.items():
                job = self._entries.get(job_id)
                if job is not None and take_up(job, saved, refused=False):
                    # The row taken up is the base of this job's next compare-and-set;
                    # a change pending from the schedule it replaces is replaced too.
                    self._store.rebase(job_id, polled.versions[job_id], saved)  # type: ignore[attr-defined]
                    self._sync.mark(job_id, job.saved())
                    self._sync.save_soon()
                    self._queue(job)
        for job_id, fire_times in polled.interrupted.items():
            self._report_shared(job_id, Miss(MissReason.INTERRUPTED, tuple(fire_times)))

    def _max_instances(self, job_id: str) -> int | None:
        job = self._entries.get(job_id)
        return None if job is None else job.max_instances

    def _limited_elsewhere(
        self, job_id: str, fire_times: tuple[datetime, ...], running: int
    ) -> None:
        """Fire times a shared store did not claim: ``running`` runs of the job were in
        progress across the processes (see :meth:`_report_shared`)."""
        self._report_shared(job_id, Miss(MissReason.MAX_INSTANCES, fire_times), running)

    def _report_shared(self, job_id: str, miss: Miss, running: int | None = None) -> None:
        """Report fire times a shared store found missed (counted and logged either way).

        Emitted now, not with the next pass's reports: a pass drops the misses of jobs
        whose save was refused (planned from a schedule that lost), and these are not
        planned by a pass.
        """
        job = self._entries.get(job_id)
        if job is None:
            return
        report = self._runs.missed_event(job, miss, self._clock.now(), running)
        if report is not None and not self._runs.offer(report):
            self._reports.append(report)
            self._wake()  # the next pass emits it
