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

Liveness: :meth:`PostgresJobStore.lock` registers the process in ``processes`` and holds
a session advisory lock named after it on a connection of its own. The server drops
that lock when the connection ends, so a process killed by ``kill -9`` is known dead at
once. :meth:`PostgresJobStore.load` takes over the unfinished fires of dead processes
(marking them ``interrupted`` in the same transaction, so only one loader reports them)
and returns them as :attr:`~eventsched.SavedJob.running`, which the scheduler reports as
missed (``interrupted``).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from .._jobs._store import SavedJob
from ._database import Database
from ._schema import migrate
from ._url import PostgresTarget, parse_state_url

__all__ = ["PostgresJobStore"]

#: Seconds between heartbeat writes (piggybacked on saves; liveness is the lock).
HEARTBEAT: Final = 1.0

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


def _lock_key(process: str) -> str:
    return f"eventsched process {process}"


def _schedule(state: SavedJob) -> tuple[str, datetime | None, datetime | None]:
    return state.fingerprint, state.last_fire_time, state.next_fire_time


class PostgresJobStore:
    """A :class:`~eventsched.JobStore` in PostgreSQL that several processes may share.

    :param url: ``postgresql://user:password@host:port/database?schema=name`` (the
        schema, default ``eventsched``, holds the tables; created if missing)
    :param connections: the most connections (and worker threads) its queries use

    The URL is checked here (:class:`~eventsched.JobStateError`, one line, without the
    password); the server is first reached by :meth:`lock`.
    """

    __slots__ = ("_beat", "_database", "_known", "_owned", "_refused_rows", "_session", "process")

    def __init__(self, url: str, *, connections: int = 4) -> None:
        self._database = Database(parse_state_url(url), connections=connections)
        #: This process's id in ``processes`` and in ``fires.claimed_by``.
        self.process = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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
        key = _lock_key(self.process)
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
        jobs, fires, processes = (self._table(n) for n in ("jobs", "fires", "processes"))
        takeover = sql.SQL(
            "WITH dead AS (DELETE FROM {processes} p WHERE p.id <> %(me)s"
            " AND pg_try_advisory_xact_lock(hashtextextended('eventsched process ' || p.id, 0))"
            " RETURNING p.id)"
            " UPDATE {fires} f SET outcome = 'interrupted', finished_at = now()"
            " WHERE f.outcome IS NULL AND f.claimed_by <> %(me)s AND (f.claimed_by IN"
            " (SELECT id FROM dead) OR f.claimed_by NOT IN (SELECT id FROM {processes}))"
            " RETURNING f.job_id, f.fire_time"
        ).format(fires=fires, processes=processes)
        select = sql.SQL(
            "SELECT id, fingerprint, last_fire_time, next_fire_time, version FROM {}"
        ).format(jobs)

        def work(connection: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            taken = connection.execute(takeover, {"me": self.process}).fetchall()
            return connection.execute(select).fetchall(), taken

        rows, taken = await self._database.run(work)
        interrupted: dict[str, list[datetime]] = {}
        for job_id, fire_time in taken:
            interrupted.setdefault(job_id, []).append(fire_time)
        saved: dict[str, SavedJob] = {}
        for job_id, fingerprint, last, following, version in rows:
            state = SavedJob(fingerprint, last, following)
            self._known[job_id] = _Row(version, state)
            running = tuple(sorted(interrupted.get(job_id, ())))
            self._owned[job_id] = frozenset(running)
            saved[job_id] = SavedJob(fingerprint, last, following, running)
        return saved

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
                "SELECT id, fingerprint, last_fire_time, next_fire_time, version, updated_by"
                " FROM {} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
            ).format(jobs),
            [ids],
        ).fetchall()
        rows = {r[0]: _Row(r[4], SavedJob(r[1], r[2], r[3])) for r in locked}
        # Rows this process wrote last: a save whose commit went through but whose
        # answer was lost (cancelled, connection cut) is recognised when repeated.
        mine = {r[0] for r in locked if r[5] == self.process}
        out = _Outcome(set(), {}, set(), {})
        claims: list[tuple[str, datetime]] = []
        ended: list[tuple[str, datetime]] = []
        released: list[tuple[str, datetime]] = []
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
            for at in owned - set(change.running):
                following = change.next_fire_time
                # A schedule moved back to the fire time gives it back (a run that was
                # never started at shutdown): its claim goes, for another process.
                given_back = following is not None and following <= at
                (released if given_back else ended).append((job_id, at))
            if row is None:
                inserted = connection.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, fingerprint, last_fire_time, next_fire_time,"
                        " updated_by) VALUES (%s, %s, %s, %s, %s)"
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
                        " next_fire_time = %s, version = version + 1, updated_by = %s,"
                        " updated_at = now() WHERE id = %s"
                    ).format(jobs),
                    [*_schedule(change), self.process, job_id],
                )
                out.written[job_id] = _Row(row.version + 1, _without_running(change))
            claims += [(job_id, at) for at in new]
        if claims:
            recorded = connection.execute(
                sql.SQL(
                    "INSERT INTO {} (job_id, fire_time, claimed_by)"
                    " SELECT j, t, %s FROM unnest(%s::text[], %s::timestamptz[]) AS c(j, t)"
                    " ON CONFLICT (job_id, fire_time) DO UPDATE"
                    " SET claimed_by = excluded.claimed_by"
                    " WHERE {}.claimed_by = excluded.claimed_by RETURNING job_id, fire_time"
                ).format(fires, fires),
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
                "SELECT fingerprint, last_fire_time, next_fire_time, version FROM {} WHERE id = %s"
            ).format(self._table("jobs")),
            [job_id],
        ).fetchone()
        return None if row is None else _Row(row[3], SavedJob(row[0], row[1], row[2]))

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
    return SavedJob(state.fingerprint, state.last_fire_time, state.next_fire_time)
