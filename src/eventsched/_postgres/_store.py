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
own; each poll beats. :meth:`PostgresJobStore.load` and every
:meth:`PostgresJobStore.poll` take over the unfinished fires of dead processes (marking
them ``interrupted`` in the same transaction, so only one process reports them).

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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from .._jobs._store import SavedJob
from .._validate import check_seconds
from ._database import Database
from ._liveness import LEASE, heartbeat, lock_key, relock, takeover
from ._notify import notify
from ._schema import migrate
from ._url import PostgresTarget, parse_state_url

__all__ = ["PostgresJobStore"]

#: Seconds between heartbeat writes piggybacked on saves (the poll beats too).
HEARTBEAT: Final = 1.0
#: The most seconds between two polls of the others' changes (see :mod:`._watch`).
POLL_INTERVAL: Final = 1.0

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Row:
    """A job's row as last read or written by this store."""

    version: int
    state: SavedJob


@dataclass(slots=True)
class _Outcome:
    """What one save transaction did, applied to the store only once it committed."""

    refused: set[str]
    written: dict[str, _Row]
    deleted: set[str]
    current: dict[str, _Row | None]


@dataclass(frozen=True, slots=True)
class Polled:
    """What one poll found: rows other processes changed, and runs of dead ones."""

    rows: dict[str, SavedJob]
    """Jobs whose row another process wrote since the last poll (newer than ours)."""
    versions: dict[str, int]
    """The version of each of those rows (see :meth:`PostgresJobStore.rebase`)."""
    interrupted: dict[str, tuple[datetime, ...]]
    """Fire times of the given jobs whose process died: this process reports them."""


def _schedule(state: SavedJob) -> tuple[str, datetime | None, datetime | None, bool]:
    return state.fingerprint, state.last_fire_time, state.next_fire_time, bool(state.paused)


def _announces(row: SavedJob | None, change: SavedJob) -> bool:
    """Whether the other processes must hear of ``change`` now, not at their next poll:
    it may make the job due earlier for them (or stop it)."""
    if row is None:
        return True
    if row.fingerprint != change.fingerprint or bool(row.paused) != bool(change.paused):
        return True
    before, after = row.next_fire_time, change.next_fire_time
    return after is not None and (before is None or after < before)


class PostgresJobStore:
    """A :class:`~eventsched.JobStore` in PostgreSQL that several processes may share.

    :param url: ``postgresql://user:password@host:port/database?schema=name`` (the
        schema, default ``eventsched``, holds the tables; created if missing)
    :param connections: the most connections (and worker threads) its queries use
    :param poll_interval: the most seconds between two looks at the other processes'
        changes and at dead processes (a NOTIFY brings the look forward)
    :param lease: seconds a process may go without a heartbeat (and without its session
        lock) before it is presumed dead and its runs in progress reported interrupted

    The URL is checked here (:class:`~eventsched.JobStateError`, one line, without the
    password); the server is first reached by :meth:`lock`.
    """

    __slots__ = (
        "_beat",
        "_database",
        "_known",
        "_owned",
        "_refused_rows",
        "_seen",
        "_session",
        "lease",
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
    ) -> None:
        check_seconds("poll_interval", poll_interval, allow_zero=False)
        check_seconds("lease", lease, allow_zero=False)
        self.poll_interval = float(poll_interval)
        self.lease = float(lease)
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
        self._known: dict[str, _Row] = {}
        # Fire times this store recorded as claimed (or took over) and not yet ended.
        self._owned: dict[str, frozenset[datetime]] = {}
        self._refused_rows: dict[str, SavedJob | None] = {}
        self._session: Connection | None = None
        self._beat = 0.0

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
        return fire_time in self._owned.get(job_id, frozenset())

    def _table(self, name: str) -> sql.Composed:
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
        ).format(self._table("processes"))

        def register(connection: Connection) -> None:
            connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
            connection.execute(query, [self.process, socket.gethostname(), os.getpid()])

        await self._database.run_in_thread(lambda: register(session))

    async def load(self) -> dict[str, SavedJob]:
        """Every job's row, with the unfinished fires of dead processes as ``running``."""
        select = sql.SQL(
            "SELECT id, fingerprint, last_fire_time, next_fire_time, version, paused FROM {}"
        ).format(self._table("jobs"))
        schema = self._database.target.schema

        def work(connection: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            taken = takeover(connection, schema, self.process, self.lease, None)
            return connection.execute(select).fetchall(), taken

        rows, taken = await self._database.run(work)
        interrupted: dict[str, list[datetime]] = {}
        for job_id, fire_time in taken:
            interrupted.setdefault(job_id, []).append(fire_time)
        saved: dict[str, SavedJob] = {}
        for job_id, fingerprint, last, following, version, paused in rows:
            state = SavedJob(fingerprint, last, following, (), paused)
            self._known[job_id] = _Row(version, state)
            self._seen[job_id] = version
            running = tuple(sorted(interrupted.get(job_id, ())))
            self._owned[job_id] = frozenset(running)
            saved[job_id] = replace(state, running=running)
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
        ).format(self._table("jobs"))
        wanted = sorted(jobs)

        def work(connection: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            heartbeat(connection, schema, self.process)
            taken = takeover(connection, schema, self.process, self.lease, wanted)
            changed = connection.execute(
                select, [list(seen), list(seen.values()), self.process]
            ).fetchall()
            return changed, taken

        def committed(result: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
            self._beat = time.monotonic()
            for row in result[0]:
                self._seen[row[0]] = row[4]

        changed, taken = await self._database.run(work, committed)
        rows: dict[str, SavedJob] = {}
        versions: dict[str, int] = {}
        for job_id, fingerprint, last, following, version, paused in changed:
            known = self._known.get(job_id)
            if known is None or version > known.version:
                rows[job_id] = SavedJob(fingerprint, last, following, (), paused)
                versions[job_id] = version
        interrupted: dict[str, list[datetime]] = {}
        for job_id, fire_time in taken:
            interrupted.setdefault(job_id, []).append(fire_time)
        return Polled(rows, versions, {j: tuple(sorted(t)) for j, t in interrupted.items()})

    def rebase(self, job_id: str, version: int, state: SavedJob) -> None:
        """Compare the job's next change with this polled row (the scheduler took it up,
        with no save in progress); never with an older row than the one known."""
        known = self._known.get(job_id)
        if known is None or version > known.version:
            self._known[job_id] = _Row(version, _without_running(state))

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
        jobs: Callable[[], Collection[str]],
    ) -> None:
        """Poll on every NOTIFY, or every ``poll_interval`` s, and hand over what changed.

        Runs until cancelled; a lost database costs a warning and a retry, never the task.
        """
        from ._watch import watch

        await watch(self, changed, jobs)

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        """Apply ``changes`` in one transaction; the ids whose compare-and-set failed."""
        changes = dict(changes)
        if not changes:
            return frozenset()
        beat = time.monotonic() >= self._beat + HEARTBEAT
        outcome = await self._database.run(
            lambda c: self._apply(c, changes, beat), lambda o: self._committed(changes, o, beat)
        )
        return frozenset(outcome.refused)

    def _committed(
        self, changes: dict[str, SavedJob | None], outcome: _Outcome, beat: bool
    ) -> None:
        """Keep what the save committed (in its thread, so a cancelled caller loses nothing)."""
        if beat:
            self._beat = time.monotonic()
        for job_id, row in outcome.written.items():
            self._known[job_id] = row
            self._seen[job_id] = max(row.version, self._seen.get(job_id, 0))
        for job_id in outcome.deleted:
            self._known.pop(job_id, None)
            self._owned.pop(job_id, None)
        for job_id, change in changes.items():
            if change is None:
                continue
            owned = self._owned.get(job_id, frozenset())
            if job_id in outcome.refused:
                # Its ended runs were recorded; its new claims were not.
                self._owned[job_id] = owned & frozenset(change.running)
            else:
                self._owned[job_id] = frozenset(change.running)
        for job_id, found in outcome.current.items():
            # The next compare-and-set is against the winner's row, which the
            # scheduler takes up (current()): refused once, not for ever.
            self._refused_rows[job_id] = None if found is None else found.state
            if found is None:
                self._known.pop(job_id, None)
            else:
                self._known[job_id] = found

    def _apply(
        self, connection: Connection, changes: dict[str, SavedJob | None], beat: bool
    ) -> _Outcome:
        """The save transaction (in a worker thread; repeatable: it changes no attribute)."""
        jobs, fires = self._table("jobs"), self._table("fires")
        ids = sorted(changes)
        locked = connection.execute(
            sql.SQL(
                "SELECT id, fingerprint, last_fire_time, next_fire_time, version, updated_by,"
                " paused FROM {} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
            ).format(jobs),
            [ids],
        ).fetchall()
        rows = {r[0]: _Row(r[4], SavedJob(r[1], r[2], r[3], (), r[6])) for r in locked}
        # Rows this process wrote last: a save whose commit went through but whose
        # answer was lost (cancelled, connection cut) is recognised when repeated.
        mine = {r[0] for r in locked if r[5] == self.process}
        out = _Outcome(set(), {}, set(), {})
        claims: list[tuple[str, datetime]] = []
        ended: list[tuple[str, datetime]] = []
        released: list[tuple[str, datetime]] = []
        announced: list[str] = []
        for job_id in ids:
            change, row, known = changes[job_id], rows.get(job_id), self._known.get(job_id)
            owned = self._owned.get(job_id, frozenset())
            if change is None:
                if row is not None and (known is None or row.version != known.version):
                    out.refused.add(job_id)
                    out.current[job_id] = row
                    continue
                connection.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(jobs), [job_id])
                ended += [(job_id, at) for at in owned]
                out.deleted.add(job_id)
                continue
            new = [at for at in change.running if at not in owned]
            back: list[tuple[str, datetime]] = []
            for at in owned - set(change.running):
                following = change.next_fire_time
                # A schedule moved back to the fire time gives it back (a run that was
                # never started at shutdown): its claim goes, for another process.
                given_back = following is not None and following <= at
                (back if given_back else ended).append((job_id, at))
            # Given back only with the schedule: if another process moved the row on
            # meanwhile, the claim stays unfinished, and is reported interrupted by a
            # live process once this one has gone (never silently dropped).
            refused_before = len(out.refused)
            if row is None:
                inserted = connection.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, fingerprint, last_fire_time, next_fire_time,"
                        " paused, updated_by) VALUES (%s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (id) DO NOTHING RETURNING version"
                    ).format(jobs),
                    [job_id, *_schedule(change), self.process],
                ).fetchone()
                if inserted is None:
                    out.refused.add(job_id)
                    out.current[job_id] = self._read(connection, job_id)
                    continue
                out.written[job_id] = _Row(inserted[0], _without_running(change))
            elif known is not None and not new and _schedule(change) == _schedule(known.state):
                continue  # only runs ended: the row stays as it is
            elif job_id in mine and _schedule(change) == _schedule(row.state):
                out.written[job_id] = row  # our own write, committed before
            elif known is None or row.version != known.version:
                out.refused.add(job_id)
                out.current[job_id] = row
                continue
            else:
                connection.execute(
                    sql.SQL(
                        "UPDATE {} SET fingerprint = %s, last_fire_time = %s,"
                        " next_fire_time = %s, paused = %s, version = version + 1, updated_by = %s,"
                        " updated_at = now() WHERE id = %s"
                    ).format(jobs),
                    [*_schedule(change), self.process, job_id],
                )
                out.written[job_id] = _Row(row.version + 1, _without_running(change))
            claims += [(job_id, at) for at in new]
            if len(out.refused) == refused_before:
                released += back
                if job_id in out.written and _announces(None if row is None else row.state, change):
                    announced.append(job_id)
        if claims:
            recorded = connection.execute(
                sql.SQL(
                    "INSERT INTO {} (job_id, fire_time, claimed_by)"
                    " SELECT j, t, %s FROM unnest(%s::text[], %s::timestamptz[]) AS c(j, t)"
                    " ON CONFLICT (job_id, fire_time) DO UPDATE"
                    " SET claimed_by = excluded.claimed_by"
                    " WHERE {}.claimed_by = excluded.claimed_by AND {}.outcome IS NULL"
                    " RETURNING job_id, fire_time"
                ).format(fires, fires, fires),
                [self.process, [j for j, _ in claims], [t for _, t in claims]],
            ).fetchall()
            # Cannot happen while every claim goes through the row's compare-and-set;
            # if it did, the fire time ran elsewhere: refuse the run, keep the schedule.
            taken = {(j, t) for j, t in recorded}
            for job_id, at in claims:
                if (job_id, at) not in taken:
                    out.refused.add(job_id)
                    out.current[job_id] = out.written[job_id]
        if ended:
            connection.execute(
                sql.SQL(
                    "UPDATE {} SET outcome = 'ended', finished_at = now()"
                    " FROM unnest(%s::text[], %s::timestamptz[]) AS e(j, t)"
                    " WHERE job_id = e.j AND fire_time = e.t AND outcome IS NULL"
                ).format(fires),
                [[j for j, _ in ended], [t for _, t in ended]],
            )
        if released:
            connection.execute(
                sql.SQL(
                    "DELETE FROM {} USING unnest(%s::text[], %s::timestamptz[]) AS e(j, t)"
                    " WHERE job_id = e.j AND fire_time = e.t AND outcome IS NULL"
                ).format(fires),
                [[j for j, _ in released], [t for _, t in released]],
            )
        if announced:
            notify(connection, self.channel, str(len(announced)))
        if beat:
            connection.execute(
                sql.SQL("UPDATE {} SET heartbeat_at = now() WHERE id = %s").format(
                    self._table("processes")
                ),
                [self.process],
            )
        return out

    def _read(self, connection: Connection, job_id: str) -> _Row | None:
        row = connection.execute(
            sql.SQL(
                "SELECT fingerprint, last_fire_time, next_fire_time, version, paused FROM {}"
                " WHERE id = %s"
            ).format(self._table("jobs")),
            [job_id],
        ).fetchone()
        return None if row is None else _Row(row[3], SavedJob(row[0], row[1], row[2], (), row[4]))

    async def close(self) -> None:
        """Unregister this process and close every connection; safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            query = sql.SQL("DELETE FROM {} WHERE id = %s").format(self._table("processes"))

            def unregister() -> None:
                try:
                    session.execute(query, [self.process])
                except psycopg.Error:
                    pass  # the server is gone: so is our lock, and the row is stale
                finally:
                    session.close()

            await self._database.run_in_thread(unregister)
        await self._database.close()


def _without_running(state: SavedJob) -> SavedJob:
    return replace(state, running=(), paused=bool(state.paused))
