"""One scheduled job and its place in its schedule, as the scheduler task keeps it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

from .._invoke import is_async
from .._validate import check_int, check_seconds
from ._records import Job, job_record
from ._retry import Backoff, retry_policy
from ._store import SavedJob, saved_job
from ._triggers import build_trigger, fingerprint

__all__ = ["Entry", "SharedRuns", "new_entry"]


class SharedRuns:
    """The runs in progress and claims of a job and of the job that replaced it (same
    id), counted together: made only when a job is replaced while it has some."""

    __slots__ = ("_claims", "_running", "_waiting")

    def __init__(self, running: int, waiting: int, claims: tuple[datetime, ...]) -> None:
        self._running = running
        self._waiting = waiting
        self._claims = claims


@dataclass(slots=True, eq=False, kw_only=True)
class Entry:
    """A job and its scheduling state; mutated on the event loop thread only."""

    id: str
    name: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    trigger: Any
    deferred: str | None
    """What the trigger still needs at schedule time: "start", "now" (see build_trigger)."""
    max_instances: int
    misfire_grace_time: float | None
    coalesce: bool
    timeout: float | None
    jitter: float | None
    paused: bool
    spec: tuple[Any, tuple[tuple[str, Any], ...]] = ("", ())
    """The trigger as given (name or instance, options), to rebuild it in another zone.
    Tuples: once its options are plain values, the garbage collector stops tracking it
    (a tuple holding a dict stays tracked, one more object per job in every full
    collection)."""
    own_timezone: bool = True
    """Whether its trigger's timezone is its own (given, or an instance's) rather than
    the scheduler's default, which ``configure_jobs(timezone=)`` may still change."""
    retries: int = 0
    backoff: Backoff | None = None
    is_async: bool = field(init=False)
    persist: bool = field(init=False)
    """Whether its state goes to the job store: not for a "run now" date job (no stable
    schedule to resume), nor once removed or replaced (the row is no longer its own)."""
    fingerprint: str = field(init=False)
    next_fire: datetime | None = None
    """The next fire time as the trigger computed it."""
    fire_at: datetime | None = None
    """next_fire plus jitter."""
    last_fire: datetime | None = None
    settled: datetime | None = None
    """The latest fire time that started a run here, was reported missed, or was
    handled by another process: a claimed fire time whose run never started is handed
    back to the schedule only if it is later (see :mod:`._giveback`)."""
    unjittered: dict[datetime, datetime] = field(default_factory=dict)
    """The trigger's fire time behind each claimed jittered one, until its run ends."""
    # Its runs in progress (started, not ended), those claimed and waiting for their
    # fire time (not started), and the fire times claimed (in the store's row until their
    # runs end): plain fields of its own, read through the properties below. A tuple of
    # datetimes, not a list: the garbage collector stops tracking it. (The two small
    # lists these were, per job, were two of the five objects per job that each full
    # collection traversed.)
    _running: int = field(default=0, init=False)
    _waiting: int = field(default=0, init=False)
    _claims: tuple[datetime, ...] = field(default=(), init=False)
    shared: SharedRuns | None = field(default=None, init=False)
    """Set once it replaced (same id) a job with runs in progress or claims, or was so
    replaced: both count theirs here (see :meth:`hand_runs_to`)."""
    runs: int = 0
    failures: int = 0
    last_outcome: str | None = None
    """How its latest run ended (see :attr:`SavedJob.last_outcome`), saved with it."""
    missed: dict[str, int] = field(default_factory=dict)
    """Fire times of this job that did not become runs, by MissReason value."""
    removed: bool = False
    """Removed by the user, replaced, or finished: no longer in the schedule."""
    withdrawn: bool = False
    """Removed by the user or replaced (not merely finished): a claimed fire time of it
    whose run has not started yet does not run (reported ``withdrawn``)."""
    ticket: int = -1
    """Its live item in the :class:`~._timeline.Timeline`, or -1: not queued."""
    replaces: str | None = None
    """The fingerprint of the definition the store held when this one started: a row
    still holding it is older than this definition, which is written over it."""
    standing_for: SavedJob | None = None
    """On standby (a shared store holds another definition of this job): that row as
    last seen. The job does not fire here (it is held paused, and not saved) until the
    store's definition is this one again; a claim this process still holds is finished
    against this row (see the table's run ends)."""

    def __post_init__(self) -> None:
        self.is_async = is_async(self.func)
        self.persist = self.deferred != "now"
        self.fingerprint = fingerprint(self.trigger)

    @property
    def standby(self) -> bool:
        """Standing by for another definition in a shared store (see standing_for)."""
        return self.standing_for is not None

    @property
    def running(self) -> int:
        """Runs started and not ended (claimed ones not started yet: :attr:`waiting`)."""
        return (self.shared or self)._running

    @running.setter
    def running(self, value: int) -> None:
        (self.shared or self)._running = value

    @property
    def waiting(self) -> int:
        """Runs claimed, held or handed to a lane, waiting for their fire time (not started)."""
        return (self.shared or self)._waiting

    @waiting.setter
    def waiting(self, value: int) -> None:
        (self.shared or self)._waiting = value

    @property
    def in_flight(self) -> tuple[datetime, ...]:
        """The fire times claimed whose runs have not ended, in the order claimed."""
        return (self.shared or self)._claims

    def claim(self, fire_time: datetime) -> None:
        """Note a claimed fire time (until :meth:`unclaim`)."""
        holder = self.shared or self
        holder._claims = (*holder._claims, fire_time)

    def unclaim(self, fire_time: datetime) -> None:
        """A claimed fire time's run ended (or never started): no longer claimed."""
        holder = self.shared or self
        claims = holder._claims
        if fire_time in claims:
            at = claims.index(fire_time)
            holder._claims = claims[:at] + claims[at + 1 :]

    def hand_runs_to(self, successor: Entry) -> None:
        """``successor`` replaces this job (same id): this job's runs still in progress
        count against the new ``max_instances``, and their claims stay in the saved
        state until they end. Both count theirs in one :class:`SharedRuns` from now on,
        made only when there is something to share (the common case has nothing)."""
        shared = self.shared
        if shared is None:
            if not (self._running or self._waiting or self._claims):
                return
            shared = self.shared = SharedRuns(self._running, self._waiting, self._claims)
        successor.shared = shared

    def shares_runs_with(self, other: Entry) -> bool:
        """Whether ``other`` counts its runs and claims with this job's (itself, or a
        job that replaced it or that it replaced)."""
        return self is other or (self.shared is not None and self.shared is other.shared)

    def snapshot(self) -> Job:
        # Job's fields in their order (job_record: a cheaper Job(...)).
        return job_record(
            self.id,
            self.name,
            str(self.trigger),
            None if self.paused else self.fire_at,  # next_fire_time
            self.last_fire,
            self.paused,  # True on standby too: it does not fire here
            self.running,
            self.runs,
            self.failures,
            self.max_instances,
            self.coalesce,
            self.misfire_grace_time,
            self.timeout,
            dict(self.missed),
        )

    def saved(self, *, paused: bool | Literal["job"] | None = "job") -> SavedJob:
        """Its state for the store (``paused=None``: without pausing)."""
        return saved_job(
            self.fingerprint,
            self.last_fire,
            self.next_fire,
            self.in_flight,
            self.paused if paused == "job" else paused,
            self.last_outcome,
        )

    def resumes(self, saved: SavedJob) -> bool:
        """Whether this job, just given ``saved``'s schedule, would save that same row.

        Told from the fields without building its state to compare: that (and
        ``dataclasses.replace``) was a fifth of a start with 50,000 saved jobs.
        """
        return (
            self.next_fire is not None
            and not saved.running
            and not self.in_flight
            and (saved.paused is None or saved.paused == self.paused)
        )

    def use_default_timezone(self, tz: tzinfo) -> None:
        """Rebuild a trigger given by name in the scheduler's new default zone.

        Before start only: a job added without ``timezone=`` follows the default as it is
        when the scheduler starts, whatever the order of ``add_job`` and
        ``configure_jobs`` (so ``TIMEZONE`` applies to an application's jobs too).
        """
        name, options = self.spec
        if self.own_timezone or not isinstance(name, str):
            return
        self.trigger, self.deferred = build_trigger(name, dict(options), tz)
        self.fingerprint = fingerprint(self.trigger)

    def set_next(self, next_fire: datetime | None) -> None:
        self.next_fire = next_fire
        if next_fire is not None and self.jitter:
            next_fire = next_fire + timedelta(seconds=random.uniform(0, self.jitter))
        self.fire_at = next_fire


def new_entry(
    func: Callable[..., Any],
    trigger: Any,
    *,
    id: str | None,
    name: str | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    max_instances: int,
    misfire_grace_time: float | None,
    coalesce: bool,
    timeout: float | None,
    jitter: float | None,
    timezone: tzinfo,
    paused: bool,
    trigger_args: Mapping[str, Any],
    own_timezone: bool = True,
    retries: int = 0,
    retry_backoff: Backoff | float | None = None,
) -> Entry:
    """A job from ``add_job``'s arguments, checked; each error names the argument."""
    if not callable(func):
        raise TypeError(f"job function must be callable, not {func!r}")
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    if id is None:
        id = f"{getattr(func, '__module__', None) or '?'}.{qualname}"
    if not isinstance(id, str) or not id:
        raise ValueError(f"job id={id!r} must be a non-empty string")
    check_int("max_instances", max_instances, minimum=1)
    if misfire_grace_time is not None:
        check_seconds("misfire_grace_time", misfire_grace_time, allow_zero=False)
    if timeout is not None:
        check_seconds("timeout", timeout, allow_zero=False)
    if jitter is not None:
        check_seconds("jitter", jitter, allow_zero=True)
    backoff = retry_policy(retries, retry_backoff)
    built, deferred = build_trigger(trigger, trigger_args, timezone)
    own_timezone = own_timezone or not isinstance(trigger, str)
    return Entry(
        id=id,
        name=name or qualname,
        func=func,
        args=tuple(args),
        kwargs=dict(kwargs) if kwargs else {},
        trigger=built,
        deferred=deferred,
        max_instances=max_instances,
        misfire_grace_time=misfire_grace_time,
        coalesce=bool(coalesce),
        timeout=timeout,
        jitter=jitter or None,
        paused=paused,
        # Kept only for a trigger that may be rebuilt in another zone (use_default_timezone).
        spec=("", ()) if own_timezone else (trigger, tuple(trigger_args.items())),
        own_timezone=own_timezone,
        retries=retries,
        backoff=backoff,
    )
