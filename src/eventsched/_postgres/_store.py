"""The PostgreSQL job store: one schedule shared by several processes, each fire time once.

Every :meth:`PostgresJobStore.save` is one transaction. It locks the rows of the jobs it
changes (in id order, so two processes never deadlock), and applies each change as a
compare-and-set on the row's ``version``: only if the row is still the one this store
last loaded or saved; a job with no row yet is inserted, and losing that race (ON
CONFLICT DO NOTHING) is a refusal too. Each fire time newly claimed for a run is
inserted into ``fires``, whose primary key ``(job_id, fire_time)`` makes a second claim
impossible whatever the processes believe. The refused ids are returned, and the row
each refused job has now is kept (:meth:`PostgresJobStore.current`) so the scheduler
can take up the schedule the winner wrote.

A change that only ends runs (the schedule as this store last wrote it, fewer fire
times running) touches ``fires`` alone, never the job's row: a run ending in one
process never makes another's claim fail.

Liveness (:mod:`._liveness`): :meth:`PostgresJobStore.lock` registers the process in
``processes`` and holds a session advisory lock named after it on a connection of its
own; each poll beats. :meth:`PostgresJobStore.poll` (from the first,
at start, on) takes over the unfinished fires of dead processes among the jobs this
process defines (marking them ``interrupted`` in the same transaction, so only one
process reports them).

``max_instances`` holds across processes (:mod:`._claims`): the scheduler binds its
jobs' limits and a way to report the fire times a save left unclaimed
(:meth:`PostgresJobStore.bind_limits`).

Wake-ups (:mod:`._watch`): a save that makes a job due earlier for the others (a row
inserted, resumed or paused, moved back, or given another definition) announces it with
NOTIFY in its transaction; each process's watcher polls on it, or once per
``poll_interval`` at the latest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

import anyio
import anyio.lowlevel
import psycopg
from loguru import logger
from psycopg import sql

from .. import JobStateError
from .._jobs._store import SavedJob
from .._validate import check_seconds
from . import _prune as prune
from ._claims import Outcome, Row, apply, without_running
from ._database import Database
from ._liveness import LEASE, heartbeat, lock_key, relock, takeover
from ._schema import migrate
from ._url import PostgresTarget, parse_state_url

__all__ = ["PostgresJobStore"]

log = logger.bind(component="postgres")

#: Seconds between heartbeat writes piggybacked on saves (the poll beats too).
HEARTBEAT: Final = 1.0
#: The most seconds between two polls of the others' changes (see :mod:`._watch`).
POLL_INTERVAL: Final = 1.0

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Polled:
    """What one poll found: rows other processes changed, and runs of dead ones."""

    rows: dict[str, SavedJob]
    """Jobs whose row another process wrote since the last poll (newer than ours)."""
    versions: dict[str, int]
    """The version of each of those rows (see :meth:`PostgresJobStore.rebase`)."""
    interrupted: dict[str, tuple[datetime, ...]]
    """Fire times of the given jobs whose process died: this process reports them."""


class PostgresJobStore:
    """A :class:`~eventsched.JobStore` in PostgreSQL that several processes may share.

    :param url: ``postgresql://user:password@host:port/database?schema=name`` (the
        schema, default ``eventsched``, holds the tables; created if missing)
    :param connections: the most connections (and worker threads) its queries use
    :param poll_interval: the most seconds between two looks at the other processes'
        changes and at dead processes (a NOTIFY brings the look forward)
    :param lease: seconds a process may go without a heartbeat (and without its session
        lock) before it is presumed dead and its runs in progress reported interrupted
    :param keep_fires: seconds a finished fire time stays in the ``fires`` table (a
        job's latest stays whatever its age; see :mod:`._prune`)

    The URL is checked here (:class:`~eventsched.JobStateError`, one line, without the
    password); the server is first reached by :meth:`lock`.
    """

    #: Seconds ahead of a fire time the job scheduler claims it here (see
    #: ``eventsched._jobs._claims.claim_lead``): a claim's transaction through a
    #: worker thread takes tens of milliseconds, which must not land on the fire time.
    claim_lead: ClassVar[float] = 0.1

    __slots__ = (
        "_beat",
        "_database",
        "_limit",
        "_limited",
        "_refused_rows",
        "_report",
        "_seen",
        "_session",
        "alone",
        "keep_fires",
        "known",
        "lease",
        "owned",
        "poll_interval",
        "process",
    )

    def __init__(
        self,
        url: str,
        *,
        connections: int = 4,
        poll_interval: float = POLL_INTERVAL,
        lease: float = LEASE,
        keep_fires: float = prune.KEEP,
    ) -> None:
        check_seconds("poll_interval", poll_interval, allow_zero=False)
        check_seconds("lease", lease, allow_zero=False)
        check_seconds("keep_fires", keep_fires, allow_zero=False)
        self.poll_interval = float(poll_interval)
        self.lease = float(lease)
        self.keep_fires = float(keep_fires)
        #: This process's id in ``processes`` and in ``fires.claimed_by``.
        self.process = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Named after the process, so that its connections can be told apart (and an
        # operator, or a test, can end exactly them).
        self._database = Database(
            parse_state_url(url),
            connections=connections,
            application_name=f"eventsched {self.process}"[:63],
        )
        # The row version each poll last handed over, per job (and ours, once written).
        self._seen: dict[str, int] = {}
        self.known: dict[str, Row] = {}
        # Fire times this store recorded as claimed (or took over) and not yet ended.
        self.owned: dict[str, frozenset[datetime]] = {}
        self._refused_rows: dict[str, SavedJob | None] = {}
        self._session: Connection | None = None
        self._beat = 0.0
        #: No other process was registered at the last poll: this one's run ends need
        #: not be saved at once for the others' max_instances counts (see
        #: :mod:`._claims`). False until a poll says so.
        self.alone = False
        self._limit: Callable[[str], int | None] = _unlimited
        self._report: Callable[[str, tuple[datetime, ...], int], None] | None = None
        # Fire times a committed save left unclaimed, until reported (on the loop).
        self._limited: dict[str, tuple[tuple[datetime, ...], int]] = {}

    def bind_limits(
        self,
        limit: Callable[[str], int | None],
        report: Callable[[str, tuple[datetime, ...], int], None],
    ) -> None:
        """How the scheduler shares ``max_instances``: ``limit(job_id)`` (None: not a
        job of this process), and ``report(job_id, fire_times, running)`` for the fire
        times a save of this store did not claim because ``running`` runs of the job
        were in progress across the processes (called on the event loop)."""
        self._limit, self._report = limit, report

    def _deliver(self) -> None:
        """Report what committed saves left unclaimed (see :meth:`bind_limits`)."""
        report = self._report
        while self._limited and report is not None:
            job_id, (fire_times, running) = self._limited.popitem()
            report(job_id, fire_times, running)

    @property
    def target(self) -> PostgresTarget:
        return self._database.target

    @property
    def location(self) -> str | None:
        return f"{self._database.target} (schema {self._database.target.schema})"

    def current(self, job_id: str) -> SavedJob | None:
        """The state another process saved for a job whose change was just refused."""
        return self._refused_rows.pop(job_id, None)

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this schema (hashed: a channel name has at most 63 bytes)."""
        digest = hashlib.blake2b(self._database.target.schema.encode(), digest_size=8)
        return f"eventsched_{digest.hexdigest()}"

    @property
    def database(self) -> Database:
        return self._database

    def owns(self, job_id: str, fire_time: datetime) -> bool:
        """Whether ``fire_time`` of ``job_id`` is recorded in ``fires`` as this process's."""
        return fire_time in self.owned.get(job_id, frozenset())

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(
            sql.Identifier(self._database.target.schema), sql.Identifier(name)
        )

    async def lock(self) -> None:
        """Connect, create or migrate the tables, and register this process."""
        await self._database.open()
        schema = self._database.target.schema
        await self._database.run(lambda c: migrate(c, schema))
        session = await self._database.connect_dedicated()
        self._session = session
        key = lock_key(self.process)
        query = sql.SQL(
            "INSERT INTO {} (id, host, pid) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
        ).format(self.table("processes"))

        def register(connection: Connection) -> None:
            connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
            connection.execute(query, [self.process, socket.gethostname(), os.getpid()])

        await self._database.run_in_thread(lambda: register(session))

    async def load(self) -> dict[str, SavedJob]:
        """Every job's row (``running`` empty: a dead process's runs are taken over by
        the polls, which know the jobs this process defines and so can report them)."""
        select = sql.SQL(
            "SELECT id, fingerprint, last_fire_time, next_fire_time, version, paused FROM {}"
        ).format(self.table("jobs"))

        def work(connection: Connection) -> list[tuple[Any, ...]]:
            return connection.execute(select).fetchall()

        rows = await self._database.run(work)
        saved: dict[str, SavedJob] = {}
        for job_id, fingerprint, last, following, version, paused in rows:
            state = SavedJob(fingerprint, last, following, (), paused)
            self.known[job_id] = Row(version, state)
            self._seen[job_id] = version
            self.owned[job_id] = frozenset()
            saved[job_id] = state
        return saved

    async def poll(self, jobs: Collection[str]) -> Polled:
        """Beat; take over the runs of dead processes among ``jobs``; the rows others
        changed since the last poll."""
        schema = self._database.target.schema
        seen = dict(self._seen)
        select = sql.SQL(
            "SELECT j.id, j.fingerprint, j.last_fire_time, j.next_fire_time, j.version,"
            " j.paused FROM {} j LEFT JOIN unnest(%s::text[], %s::bigint[]) AS k(id, v)"
            " ON k.id = j.id WHERE k.v IS DISTINCT FROM j.version AND j.updated_by <> %s"
        ).format(self.table("jobs"))
        wanted = sorted(jobs)
        others = sql.SQL("SELECT count(*) FROM {} WHERE id <> %s").format(self.table("processes"))

        def work(connection: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            heartbeat(connection, schema, self.process)
            taken = takeover(connection, schema, self.process, self.lease, wanted)
            changed = connection.execute(
                select, [list(seen), list(seen.values()), self.process]
            ).fetchall()
            found = connection.execute(others, [self.process]).fetchone()
            self.alone = found is not None and found[0] == 0
            return changed, taken

        def committed(result: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
            self._beat = time.monotonic()
            for row in result[0]:
                self._seen[row[0]] = row[4]

        changed, taken = await self._database.run(work, committed)
        rows: dict[str, SavedJob] = {}
        versions: dict[str, int] = {}
        for job_id, fingerprint, last, following, version, paused in changed:
            known = self.known.get(job_id)
            if known is None or version > known.version:
                rows[job_id] = SavedJob(fingerprint, last, following, (), paused)
                versions[job_id] = version
        interrupted: dict[str, list[datetime]] = {}
        for job_id, fire_time in taken:
            interrupted.setdefault(job_id, []).append(fire_time)
        self._deliver()
        return Polled(rows, versions, {j: tuple(sorted(t)) for j, t in interrupted.items()})

    def rebase(self, job_id: str, version: int, state: SavedJob) -> None:
        """Compare the job's next change with this polled row (the scheduler took it up,
        with no save in progress); never with an older row than the one known."""
        known = self.known.get(job_id)
        if known is None or version > known.version:
            self.known[job_id] = Row(version, without_running(state))

    async def check_session(self) -> None:
        """Reconnect the session that holds this process's lock if it was cut off."""
        schema = self._database.target.schema

        def check() -> None:
            session = self._session
            if session is not None and not session.closed:
                try:
                    session.execute("SELECT 1")
                except psycopg.Error:
                    session.close()
                else:
                    return
            fresh = psycopg.connect(
                self._database.target.conninfo,
                autocommit=True,
                connect_timeout=5,
                application_name=f"eventsched {self.process}"[:63],
            )
            if relock(fresh, schema, self.process):
                self._session = fresh
            else:  # the old session's lock is not released yet: next time
                fresh.close()

        if self._session is not None:
            await self._database.run_in_thread(check)

    async def watch(
        self,
        changed: Callable[[Polled], Awaitable[None]],
        takeover: Callable[[], AbstractContextManager[Collection[str]]],
    ) -> None:
        """Poll on every NOTIFY, or every ``poll_interval`` s, and hand over what changed
        (``takeover``: see :func:`._watch.watch`). Runs until cancelled; a lost database
        costs a warning and a retry, never the task."""
        from ._watch import watch

        async with anyio.create_task_group() as group:
            group.start_soon(self._prune_rounds, name="eventsched fires pruning")
            await watch(self, changed, takeover)

    async def prune(self) -> int:
        """Delete the finished fires older than ``keep_fires`` (each job's latest
        kept), in batches; how many. Stops early if another process is pruning."""
        schema, keep = self._database.target.schema, self.keep_fires
        total = 0
        while True:
            deleted = await self._database.run(
                lambda c: prune.prune_batch(c, schema, keep, prune.BATCH)
            )
            total += deleted or 0
            if deleted is None or deleted < prune.BATCH:
                return total
            await anyio.lowlevel.checkpoint()

    async def _prune_rounds(self) -> None:
        """A pruning round every minute (or ``keep_fires``), for as long as the watcher
        runs; a failed round costs a warning, never the watcher."""
        failing = False
        while True:
            await anyio.sleep(min(prune.EVERY, self.keep_fires))
            try:
                await self.prune()
            except (psycopg.Error, OSError, JobStateError) as exc:
                if not failing:
                    log.warning(
                        "Pruning the fires table in {} failed ({}); trying again later",
                        self.location,
                        " ".join(str(exc).split())[:200] or type(exc).__name__,
                    )
                failing = True
            else:
                failing = False

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        """Apply ``changes`` in one transaction; the ids whose compare-and-set failed."""
        changes = dict(changes)
        if not changes:
            return frozenset()
        beat = time.monotonic() >= self._beat + HEARTBEAT
        limits = {
            job_id: limit
            for job_id, change in changes.items()
            if change is not None and change.running and (limit := self._limit(job_id))
        }
        outcome = await self._database.run(
            lambda c: apply(c, self, changes, beat, limits),
            lambda o: self._committed(changes, o, beat),
        )
        self._deliver()
        return frozenset(outcome.refused)

    def _committed(self, changes: dict[str, SavedJob | None], outcome: Outcome, beat: bool) -> None:
        """Keep what the save committed (in its thread, so a cancelled caller loses nothing)."""
        if beat:
            self._beat = time.monotonic()
        for job_id, row in outcome.written.items():
            self.known[job_id] = row
            self._seen[job_id] = max(row.version, self._seen.get(job_id, 0))
        for job_id in outcome.deleted:
            self.known.pop(job_id, None)
            self.owned.pop(job_id, None)
        for job_id, change in changes.items():
            if change is None:
                continue
            owned = self.owned.get(job_id, frozenset())
            if job_id in outcome.refused:
                # Its ended runs were recorded; its new claims were not.
                self.owned[job_id] = owned & frozenset(change.running)
            else:
                limited = outcome.limited.get(job_id, ((), 0))[0]
                self.owned[job_id] = frozenset(change.running).difference(limited)
        self._limited.update(outcome.limited)
        for job_id, found in outcome.current.items():
            # The next compare-and-set is against the winner's row, which the
            # scheduler takes up (current()): refused once, not for ever.
            self._refused_rows[job_id] = None if found is None else found.state
            if found is None:
                self.known.pop(job_id, None)
            else:
                self.known[job_id] = found

    async def close(self) -> None:
        """Unregister this process and close every connection; safe to call twice."""
        self._deliver()  # a save cancelled once committed left them here
        session, self._session = self._session, None
        if session is not None:
            query = sql.SQL("DELETE FROM {} WHERE id = %s").format(self.table("processes"))

            def unregister() -> None:
                try:
                    session.execute(query, [self.process])
                except psycopg.Error:
                    pass  # the server is gone: so is our lock, and the row is stale
                finally:
                    session.close()

            await self._database.run_in_thread(unregister)
        await self._database.close()


def _unlimited(job_id: str) -> int | None:
    return None
