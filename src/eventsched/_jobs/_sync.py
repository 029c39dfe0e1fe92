"""Keeping the job store in step: changes batched per pass, saved off the hot path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import anyio
from loguru import logger

from ._sqliterows import SavedColumns
from ._store import JobStore, MemoryJobStore, SavedJob

__all__ = ["FLUSH_TIMEOUT", "StoreSync"]

log = logger.bind(component="jobs")

#: Seconds the final save to the job store may take at shutdown.
FLUSH_TIMEOUT: Final = 5.0
#: Seconds a change made outside a pass (a run that ended, a resumed job) may wait for
#: the writer. A run that ended this close before a crash of the process is reported at
#: the next start as ``interrupted`` (never run again: at most once still holds). One
#: whose job is claimed again within SAVE_DELAY of the writer's round is left to that
#: claim, which saves it in the same row (so at most twice SAVE_DELAY after its end).
SAVE_DELAY: Final = 5.0
#: Changes the writer saves per transaction.
WRITER_CHUNK: Final = 256


class Stateful(Protocol):
    """What gives its state when the change is saved (a job's entry)."""

    def saved(self) -> SavedJob: ...


#: A job's change as marked: its state, None (deleted), or what gives its state when
#: the change is saved (see :meth:`StoreSync.mark`).
Change = SavedJob | Stateful | None


def _state(change: Change) -> SavedJob | None:
    if change is None or isinstance(change, SavedJob):
        return change
    return change.saved()


_LAST: Final = (True, datetime.min.replace(tzinfo=UTC))


def _fire_order(pair: tuple[str, Change]) -> tuple[bool, datetime]:
    change = pair[1]
    at = getattr(change, "fire_at", None) or getattr(change, "next_fire_time", None)
    return _LAST if at is None else (False, at)


class StoreSync:
    """The changes not yet saved to a job store, and the one way they get there.

    Saves never overlap (a lock); a failed save keeps its changes pending, under
    any newer change to the same job.

    The default store, a plain :class:`MemoryJobStore`, is only read by the next
    scheduler that loads it, after this one has closed: nothing could see a claim or an
    ended run saved there any sooner. So for it (``durable`` False) neither the passes
    nor the writer save; :meth:`close` saves everything once. That is a store
    transaction (a lock round trip through the loop) per pass and a writer wake-up per
    ended run saved at 10,000 runs a second. Any other store, subclasses included,
    is saved as it changes.
    """

    __slots__ = (
        "_before",
        "_dirty",
        "_dropped",
        "_later",
        "_loaded",
        "_lock",
        "_owns",
        "_signal",
        "_signalled",
        "_soon",
        "_store",
        "adopt",
        "claimed_soon",
        "durable",
        "rows_written",
    )

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._dirty: dict[str, Change] = {}
        # Changes no pass needs saved first (ended runs): they wait for the job's next
        # claim, which carries them in the same row, or for the writer (SAVE_DELAY).
        self._later: dict[str, Change] = {}
        # Jobs a save refused, not planned anew since. A pass's changes may go out in
        # the writer's save (the lock was handed to the writer before the pass asked
        # for it) or be dropped by it (refused: made from the schedule that lost); the
        # pass, next in line for the lock, gets them as refused from its own flush.
        self._dropped: set[str] = set()
        self._signal = anyio.Event()
        self._signalled = False  # _signal set since the writer last renewed it
        # Set by save_soon(): the writer saves at once rather than after SAVE_DELAY.
        self._soon = anyio.Event()
        self._lock: anyio.Lock | None = None
        self._loaded = False
        # Shared stores: called with a refused job's id and the state that won.
        self.adopt: Callable[[str, SavedJob | None], None] | None = None
        # Set by the scheduler: asked at each writer round, it gives a test of whether
        # a change marked not urgent will be saved by its job's next claim within
        # SAVE_DELAY (the writer then leaves it to that claim).
        self.claimed_soon: Callable[[], Callable[[Change], bool]] | None = None
        # A store that records claims by a time (the SQLite store, see _claims): every
        # fire time before it is claimed. The store has the one last handed to it.
        self._before: datetime | None = None

    @property
    def store(self) -> JobStore:
        return self._store

    @store.setter
    def store(self, store: JobStore) -> None:
        self._store = store
        self.durable = type(store) is not MemoryJobStore
        owns = getattr(store, "owns", None)
        self._owns: Callable[[str, datetime], bool] | None = owns if callable(owns) else None
        # Set for a store that takes claims by a time (see cover()): its rows' state.
        self.rows_written: Mapping[str, tuple[object, ...]] | None = (
            getattr(store, "rows_written", None) if hasattr(store, "claimed_before") else None
        )

    async def open(self, fingerprints: Iterable[str] = ()) -> dict[str, SavedJob] | SavedColumns:
        """Lock and load the store (in bulk if it has ``load_columns``, as the SQLite
        store has, given the jobs' ``fingerprints``: see :mod:`._resume`).
        :raises JobStateError:"""
        self._lock = anyio.Lock()
        await self.store.lock()
        load_columns = getattr(self.store, "load_columns", None)
        saved: dict[str, SavedJob] | SavedColumns = await (
            load_columns(fingerprints) if callable(load_columns) else self.store.load()
        )
        self._loaded = True
        if self.rows_written is not None:
            self._before = self.store.claimed_before  # type: ignore[attr-defined]
        return saved

    @property
    def claimed_before(self) -> datetime | None:
        """Every fire time before this one is claimed (a store that records claims by a
        time: see :mod:`._claims`), as loaded or as the passes have moved it."""
        return self._before

    def cover(self, before: datetime, job_ids: list[str]) -> None:
        """Record this pass's claims of ``job_ids`` by the time ``before`` rather than
        their rows: every fire time before it is claimed (see :mod:`._claims`). It only
        grows (a pass's may be earlier: a job handed back a claim). Their changes wait for
        the writer (SAVE_DELAY), which writes each such job's row once a round rather
        than once a run.
        """
        if self._before is None or before > self._before:
            self._before = before
        dirty, later = self._dirty, self._later
        for job_id in job_ids:
            if job_id in dirty:
                later[job_id] = dirty.pop(job_id)

    async def close(self) -> None:
        """Save what is pending and release the store (shielded, bounded). Every row is
        then as it should be: the store's claimed_before goes (if that save fails, it
        stays, and a start takes the rows as claimed up to it)."""
        self._before = None
        with anyio.move_on_after(FLUSH_TIMEOUT, shield=True):
            await self.flush_logged()
            await self.store.close()

    def mark(self, job_id: str, saved: Change, *, urgent: bool = True, ended: bool = False) -> None:
        """Note a job's new state (None: deleted), for the next save.

        ``saved`` may be what gives the state (the job's entry): it is
        asked when the change is saved, so a claim and a run's end that the next claim
        supersedes build no :class:`SavedJob` each (two per run were ~7 us of the
        ~10 us a run cost with a durable store that saved nothing). The entry itself
        rather than its bound ``entry.saved``: a bound method is an object the garbage
        collector tracks, one per claim alive until the pass's save, and a pass claims
        its lead's worth of runs (400 at 10,000 a second): each pass then set off a
        collection (7 us a run, see docs/benchmarks.md). The state saved is
        then the job's at the save: never older than at the mark, and a claim of a
        pass is in it once marked (a job with unsaved claims is in ``_dirty``, which
        every save takes whole).

        ``urgent=False`` (a run that ended, a start's new schedule): the next pass need
        not save it; it goes with the job's next claim, or with the writer's save.
        ``ended``: only a run ended (not a schedule planned anew).
        """
        if not ended:
            # Planned from the schedule taken up after the refusal: not refused.
            self._dropped.discard(job_id)
        if urgent or job_id in self._dirty:
            self._dirty[job_id] = saved
            self._later.pop(job_id, None)
        else:
            self._later[job_id] = saved
        if self.durable and not self._signalled:
            self._signalled = True
            self._signal.set()

    def order_later(self) -> None:
        """Put the changes waiting for the writer in order of their jobs' next fire
        times (a job's entry: ``fire_at``; a state: ``next_fire_time``; none last).

        For a start's new rows: a store writes new rows at the end of its file (SQLite
        numbers them in order), and a pass claims jobs in order of fire time. Rows
        written in that order lie together, so a pass's claims touch a few pages of the
        file rather than one page each; an ``UPDATE`` commit writes every page it
        touches to the log (at 10,000 jobs added in an order unrelated to their fire
        times: ~5 us a row of commit against ~0.5, docs/benchmarks.md). The order holds
        as long as the jobs' fire times keep their order (one interval, cron times of
        the day); jobs of several intervals drift apart.
        """
        self._later = dict(sorted(self._later.items(), key=_fire_order))

    def save_soon(self) -> None:
        """Have the writer save now what is marked: for changes made outside a pass
        (a job added, paused, resumed or removed while running; a shared store's row
        taken up or written over), which no pass carries soon. Another process learns of
        them only once saved; a definition written over another process's must be saved
        before that process's next claim moves the row on again (a pass of a job slower
        than the other process's never wins that race)."""
        if self.durable:
            self._soon.set()
            self._signal.set()

    async def flush(self, *, urgent_only: bool = False) -> frozenset[str]:
        """Save what changed in one transaction; the ids whose change was refused.

        ``urgent_only`` (a pass saving its claims): leave the changes marked not
        urgent for later.
        """
        lock = self._lock
        if lock is None or not self._loaded:
            return frozenset()
        async with lock:
            if not urgent_only and self._later:
                self._later.update(self._dirty)
                self._dirty, self._later = self._later, {}
            # A pass whose changes a save of the writer refused while it waited must not
            # report the misses it planned from them: the process whose save won
            # planned them too.
            dropped, self._dropped = frozenset(self._dropped), set()
            # A new claimed_before is saved even with no row to save (a pass whose
            # claims all go by it); the store writes it if it is not in the file yet.
            store: Any = self.store
            by_time = self.rows_written is not None
            if not self._dirty and not (by_time and self._before != store.claimed_before):
                return dropped
            marked, self._dirty = self._dirty, {}
            states = {job_id: _state(saved) for job_id, saved in marked.items()}
            if by_time:
                store.claimed_before = self._before
            try:
                refused = await self.store.save(states)
            except BaseException:
                for job_id, saved in states.items():
                    if job_id not in self._later:
                        self._dirty.setdefault(job_id, saved)
                raise
            # A store shared by processes (PostgresJobStore) keeps the state another
            # process saved for each refused job: the scheduler takes it up.
            current = getattr(self.store, "current", None)
            if self.adopt is not None and callable(current):
                for job_id in refused:
                    # A change marked since was made from the schedule that lost.
                    self._dirty.pop(job_id, None)
                    self._later.pop(job_id, None)
                    self.adopt(job_id, current(job_id))
                self._dropped.update(refused)
            return refused | dropped

    @asynccontextmanager
    async def quiet(self) -> AsyncIterator[None]:
        """No save in progress within: a shared store's news are applied here (so that
        no save built from the schedule they replace is halfway through)."""
        assert self._lock is not None, "quiet() before open()"
        async with self._lock:
            yield

    def claimed(self, job_id: str, fire_time: datetime) -> bool:
        """Whether the store holds ``fire_time`` as this process's claim.

        A shared store answers for itself: the claim may have gone out in the writer's
        save, whose refusals nobody else sees. Other stores refuse nothing.
        """
        owns = self._owns
        return owns is None or bool(owns(job_id, fire_time))

    async def flush_logged(self, *, urgent_only: bool = False) -> bool:
        """:meth:`flush`, an error logged (and False returned) rather than raised."""
        try:
            await self.flush(urgent_only=urgent_only)
        except Exception:
            # Kept pending: the next change (or shutdown) tries again.
            log.exception("Could not save to the job store {}", self.store.location)
            return False
        return True

    async def writer(self, scope: anyio.CancelScope) -> None:
        """Save changes made outside a pass (ended runs, resumes) within SAVE_DELAY."""
        with scope:
            while True:
                await self._signal.wait()
                # Meanwhile a pass may save them with its claims, in the same row: a
                # job that runs every second then costs one row write per run, not two.
                # Unless save_soon() asks for them now.
                with anyio.move_on_after(SAVE_DELAY):
                    await self._soon.wait()
                self._signal, self._soon = anyio.Event(), anyio.Event()
                self._signalled = False
                if not await self.flush_logged(urgent_only=True):
                    continue
                # The rest in chunks, each its own transaction: a pass waiting to save
                # its claims never waits for more than one chunk (10,000 ended runs in
                # one save held the passes for 0.2 s, and the runs due meanwhile then
                # made the next passes' saves as large). Only the changes marked until
                # now: those marked meanwhile wait for the next round or their job's
                # claim. Chasing them, at 10,000 runs ending a second the writer never
                # left this loop, saving ~10 ended runs a transaction back to back
                # (each a row again at the job's claim a moment later).
                # Nor those whose job's claim comes before the next round: it saves them
                # in its own row. At 10,000 jobs a second each round found ~9,000 ended
                # runs, all saved again a moment later by their claims (over 12 s, 11% of
                # the rows written: docs/benchmarks.md).
                soon = self.claimed_soon() if self.claimed_soon is not None else None
                later = self._later
                pending = [
                    job_id for job_id, change in later.items() if soon is None or not soon(change)
                ]
                for start in range(0, len(pending), WRITER_CHUNK):
                    later = self._later  # (a full flush meanwhile takes it whole)
                    chunk = [
                        job_id
                        for job_id in pending[start : start + WRITER_CHUNK]
                        if job_id in later
                    ]
                    self._dirty.update((job_id, later.pop(job_id)) for job_id in chunk)
                    if chunk and not await self.flush_logged(urgent_only=True):
                        break
