"""The job store interface: where the job scheduler keeps each job's place in its schedule.

A store keeps data only (never the callable, never pickle): per job id, a
:class:`SavedJob`. The scheduler uses a store in this order, each call awaited, never
two at once::

    await store.lock()      # once: take the store for this scheduler
    saved = await store.load()   # once: every job's saved state
    refused = await store.save(changes)   # once per scheduler pass, and after runs end
    ...
    await store.close()     # once, also after a failed lock() or load()

**The guarantee it serves: each fire time runs at most once.** Before a run starts,
the scheduler saves the job with the fire time in :attr:`SavedJob.running` (and the
schedule moved past it), and starts the run only once :meth:`JobStore.save` has
returned, so the claim is durable before any user code runs. When the run ends, a
later save drops the fire time from ``running``. A fire time still in ``running``
when the store is loaded again was claimed by a process that ended before it recorded
the outcome: the scheduler reports it as missed (``interrupted``) and never runs it
again.

A store shared by several processes at once (a database server) must make
:meth:`JobStore.save` a compare-and-set per job: a change is applied only if the job's
stored state is still the one this store last loaded or saved for it, and the ids of
refused changes are returned. The scheduler then does not start those runs (another
process claimed them) and loads nothing else; a store that only one process uses at a
time (it locks, as :class:`~eventsched.SQLiteJobStore` does) returns an empty set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._records import slot_setters

__all__ = ["JobStore", "MemoryJobStore", "SavedJob", "saved_job"]


@dataclass(frozen=True, slots=True)
class SavedJob:
    """What a job store remembers about one job."""

    fingerprint: str
    """Description of the trigger the times were computed with; a job whose trigger
    changed does not resume a saved schedule."""
    last_fire_time: datetime | None
    """The latest fire time the scheduler handled (claimed for a run, or missed)."""
    next_fire_time: datetime | None
    """The next fire time due, without jitter; None once the trigger is exhausted."""
    running: tuple[datetime, ...] = field(default=())
    """Fire times claimed for a run whose outcome is not recorded yet."""
    paused: bool | None = field(default=None)
    """Whether the job is paused, as last saved; None: not recorded (the memory store,
    rows from before a store recorded it). Only a store that shares pausing between
    processes (:class:`~eventsched.PostgresJobStore`, it has ``watch``) makes a
    restarted scheduler take it up; with the others it takes ``paused=`` from the code,
    and the SQLite store records it for ``eventsched jobs`` to show."""
    last_outcome: str | None = field(default=None)
    """How the job's latest run ended (``completed``, ``failed``, ``timed_out``,
    ``aborted``, or ``interrupted``: its process ended first); None: no run yet, or not
    recorded (the PostgreSQL store keeps outcomes in its ``fires`` table instead)."""


def _saved_job_builder() -> Callable[
    [str, datetime | None, datetime | None, tuple[datetime, ...], bool | None, str | None],
    SavedJob,
]:
    """A :class:`SavedJob` built through its slots, for the scheduler's own states.

    The dataclass's ``__init__`` of a frozen class sets each field through
    ``object.__setattr__``: ~2.4 us a state against ~1 us this way, and a durable store
    gets one state per run (:meth:`~._entry.Entry.saved`; 10,000 a second in the
    ``jobs`` benchmark). Same object, same fields: the slots' own descriptors set them,
    as ``object.__setattr__`` does (see :func:`~._records.slot_setters`).
    """
    new = object.__new__
    # Unpacked rather than looped over (as job_record does): ~0.5 us less a state.
    set_fingerprint, set_last, set_next, set_running, set_paused, set_outcome = slot_setters(
        SavedJob,
        (
            "fingerprint",
            "last_fire_time",
            "next_fire_time",
            "running",
            "paused",
            "last_outcome",
        ),
    )

    def saved_job(
        fingerprint: str,
        last_fire_time: datetime | None,
        next_fire_time: datetime | None,
        running: tuple[datetime, ...],
        paused: bool | None,
        last_outcome: str | None,
    ) -> SavedJob:
        saved: SavedJob = new(SavedJob)
        set_fingerprint(saved, fingerprint)
        set_last(saved, last_fire_time)
        set_next(saved, next_fire_time)
        set_running(saved, running)
        set_paused(saved, paused)
        set_outcome(saved, last_outcome)
        return saved

    return saved_job


#: ``SavedJob(...)`` with every field given, cheaper (see _saved_job_builder).
saved_job = _saved_job_builder()


@runtime_checkable
class JobStore(Protocol):
    """Where job states live; see the module documentation for the contract.

    Every method may block only by awaiting (a store around blocking I/O runs it in a
    worker thread). A method that cannot do its work raises
    :class:`~eventsched.JobStateError` with a one-line message naming the store.
    """

    @property
    def location(self) -> str | None:
        """Where the states are kept (a path, a URL without credentials); None: memory."""
        ...

    async def lock(self) -> None:
        """Take the store for this scheduler before :meth:`load`.

        A store that one process may use at a time refuses a second one here, naming
        where it is held and by whom; the hold must end with the process, even a
        killed one. A store shared safely by several processes may do nothing.
        """
        ...

    async def load(self) -> dict[str, SavedJob]:
        """Every saved job state, by job id."""
        ...

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        """Apply ``changes`` (None deletes a job's state) in one transaction.

        On return the changes are durable: a crash of this process afterwards does not
        lose them. Returns the ids whose change was refused because another process
        changed that job first (always empty for a store that one process uses at a
        time). On error nothing of ``changes`` may be applied.
        """
        ...

    async def close(self) -> None:
        """Release the store (and its lock); safe to call more than once."""
        ...


class MemoryJobStore:
    """A :class:`JobStore` in this process's memory: schedules last as long as it does.

    The default. Reusing one instance across schedulers in one process carries the
    schedules (and the at-most-once claims) from one to the next.
    """

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[str, SavedJob] = {}

    @property
    def location(self) -> str | None:
        return None

    async def lock(self) -> None:
        return None

    async def load(self) -> dict[str, SavedJob]:
        return dict(self._states)

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        for job_id, saved in changes.items():
            if saved is None:
                self._states.pop(job_id, None)
            else:
                # Pausing is not carried over to the next scheduler (as with SQLite).
                self._states[job_id] = replace(saved, paused=None)
        return frozenset()

    async def close(self) -> None:
        return None
