"""One save of the PostgreSQL job store: a single transaction of compare-and-set writes.

It locks the rows of the jobs it changes (in id order, so two processes never
deadlock) and applies each change only if the row is still the one this process last
loaded or saved (:class:`Base` holds what it knows); a claim is a row in ``fires``,
whose primary key admits each fire time once. It changes nothing in Python (it may run
twice: a retry after a lost answer); :class:`Outcome` says what to keep once committed.

**max_instances across processes.** A job's new claims are counted, in the same
transaction, against its unfinished fires claimed by the *other* live processes (a row
in ``processes``: a dead one's row goes when a live one takes over its fires) plus this
process's runs in progress. A fire time beyond ``max_instances`` is not claimed, but
the row still moves past it: it is handled, as a local ``max_instances`` miss is, and
the process whose save moved the row (the compare-and-set lets one do so) reports it,
once. The count is taken once the job's row is locked, and every claim of the job
locks that row: two claims never count past each other (a count from before another
transaction committed can only be too high, never too low).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import sql

from .._jobs._store import SavedJob
from ._notify import notify

__all__ = ["Base", "Outcome", "Row", "announces", "apply", "read", "schedule", "without_running"]

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Row:
    """A job's row as last read or written by this store."""

    version: int
    state: SavedJob


@dataclass(slots=True)
class Outcome:
    """What one save transaction did, applied to the store only once it committed."""

    refused: set[str]
    written: dict[str, Row]
    deleted: set[str]
    current: dict[str, Row | None]
    limited: dict[str, tuple[tuple[datetime, ...], int]]
    """Fire times not claimed (``max_instances`` runs across processes), and how many
    runs of the job were in progress, per job whose row this save moved."""


class Base(Protocol):
    """What the save compares with: the store, read-only."""

    @property
    def process(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def known(self) -> dict[str, Row]: ...
    @property
    def owned(self) -> dict[str, frozenset[datetime]]: ...
    def table(self, name: str) -> sql.Composed: ...


def schedule(state: SavedJob) -> tuple[str, datetime | None, datetime | None, bool]:
    return state.fingerprint, state.last_fire_time, state.next_fire_time, bool(state.paused)


def announces(row: SavedJob | None, change: SavedJob) -> bool:
    """Whether the other processes must hear of ``change`` now, not at their next poll:
    it may make the job due earlier for them (or stop it)."""
    if row is None:
        return True
    if row.fingerprint != change.fingerprint or bool(row.paused) != bool(change.paused):
        return True
    before, after = row.next_fire_time, change.next_fire_time
    return after is not None and (before is None or after < before)


def apply(
    connection: Connection,
    base: Base,
    changes: dict[str, SavedJob | None],
    beat: bool,
    limits: Mapping[str, int],
) -> Outcome:
    """The save transaction (in a worker thread; repeatable: it changes no attribute).

    ``limits``: the ``max_instances`` of the jobs this process defines.
    """
    jobs, fires = base.table("jobs"), base.table("fires")
    ids = sorted(changes)
    # Only the jobs that claim a fire time in this save are counted.
    counted = [
        job_id
        for job_id in ids
        if job_id in limits
        and (change := changes[job_id]) is not None
        and not base.owned.get(job_id, frozenset()).issuperset(change.running)
    ]
    locked = connection.execute(
        sql.SQL(
            "SELECT id, fingerprint, last_fire_time, next_fire_time, version, updated_by,"
            " paused, CASE WHEN id = ANY(%s) THEN (SELECT count(*) FROM {} f"
            " WHERE f.job_id = j.id AND f.outcome IS NULL AND f.claimed_by <> %s"
            " AND EXISTS (SELECT 1 FROM {} p WHERE p.id = f.claimed_by)) END"
            " FROM {} j WHERE id = ANY(%s) ORDER BY id FOR UPDATE OF j"
        ).format(fires, base.table("processes"), jobs),
        [counted, base.process, ids],
    ).fetchall()
    rows = {r[0]: Row(r[4], SavedJob(r[1], r[2], r[3], (), r[6])) for r in locked}
    elsewhere = {r[0]: int(r[7]) for r in locked if r[7] is not None}
    # Rows this process wrote last: a save whose commit went through but whose
    # answer was lost (cancelled, connection cut) is recognised when repeated.
    mine = {r[0] for r in locked if r[5] == base.process}
    out = Outcome(set(), {}, set(), {}, {})
    claims: list[tuple[str, datetime]] = []
    ended: list[tuple[str, datetime]] = []
    released: list[tuple[str, datetime]] = []
    announced: list[str] = []
    for job_id in ids:
        change, row, known = changes[job_id], rows.get(job_id), base.known.get(job_id)
        owned = base.owned.get(job_id, frozenset())
        if change is None:
            if row is not None and (known is None or row.version != known.version):
                out.refused.add(job_id)
                out.current[job_id] = row
                continue
            connection.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(jobs), [job_id])
            ended += [(job_id, at) for at in owned]
            out.deleted.add(job_id)
            continue
        new = sorted(at for at in change.running if at not in owned)
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
                [job_id, *schedule(change), base.process],
            ).fetchone()
            if inserted is None:
                out.refused.add(job_id)
                out.current[job_id] = read(connection, base, job_id)
                continue
            out.written[job_id] = Row(inserted[0], without_running(change))
        elif known is not None and not new and schedule(change) == schedule(known.state):
            continue  # only runs ended: the row stays as it is
        elif job_id in mine and schedule(change) == schedule(row.state):
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
                [*schedule(change), base.process, job_id],
            )
            out.written[job_id] = Row(row.version + 1, without_running(change))
        if job_id in elsewhere and new:
            # The oldest first, as a local plan keeps them.
            running = elsewhere[job_id] + len(owned & set(change.running))
            room = max(0, limits[job_id] - running)
            if len(new) > room:
                out.limited[job_id] = (tuple(new[room:]), running)
                new = new[:room]
        claims += [(job_id, at) for at in new]
        if len(out.refused) == refused_before:
            released += back
            if job_id in out.written and announces(None if row is None else row.state, change):
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
            [base.process, [j for j, _ in claims], [t for _, t in claims]],
        ).fetchall()
        # Cannot happen while every claim goes through the row's compare-and-set;
        # if it did, the fire time ran elsewhere: refuse the run, keep the schedule.
        taken = {(j, t) for j, t in recorded}
        for job_id, at in claims:
            if (job_id, at) not in taken:
                out.refused.add(job_id)
                out.current[job_id] = out.written[job_id]
                out.limited.pop(job_id, None)
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
        notify(connection, base.channel, str(len(announced)))
    if beat:
        connection.execute(
            sql.SQL("UPDATE {} SET heartbeat_at = now() WHERE id = %s").format(
                base.table("processes")
            ),
            [base.process],
        )
    return out


def read(connection: Connection, base: Base, job_id: str) -> Row | None:
    row = connection.execute(
        sql.SQL(
            "SELECT fingerprint, last_fire_time, next_fire_time, version, paused FROM {}"
            " WHERE id = %s"
        ).format(base.table("jobs")),
        [job_id],
    ).fetchone()
    return None if row is None else Row(row[3], SavedJob(row[0], row[1], row[2], (), row[4]))


def without_running(state: SavedJob) -> SavedJob:
    return replace(state, running=(), paused=bool(state.paused))
