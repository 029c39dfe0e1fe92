"""Which processes sharing a schedule are alive, and what becomes of a dead one's runs.

A process is alive while it holds a session advisory lock named after it, on a
connection of its own (the server drops the lock when that connection ends, even after
``kill -9``), **or** while its heartbeat (``processes.heartbeat_at``, written at each
poll, at most a second apart) is younger than the lease. Both must fail for it to be
presumed dead: a kill is found within the lease, and a live process whose connections
were cut (a restarted server) has the lease to reconnect and beat again before anyone
reports its runs. The lease counts from the server's start when that is later than the
last beat: a server down for longer than the lease would otherwise let the first
process back presume every other one dead (seen with a real restart:
tests/postgres/test_restart.py), although they reconnect within a backoff step.

A dead process's fires whose outcome is not recorded are marked ``interrupted`` by the
transaction that finds them: the row locks of that UPDATE let only one process mark
(and so report) each of them.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Final

import psycopg
from loguru import logger
from psycopg import sql

__all__ = ["LEASE", "heartbeat", "lock_key", "relock", "takeover"]

log = logger.bind(component="postgres")

#: Seconds without a heartbeat (and without its session lock) before a process is
#: presumed dead and its unfinished runs are reported as interrupted.
LEASE: Final = 5.0

Connection = psycopg.Connection[tuple[Any, ...]]


def lock_key(process: str) -> str:
    return f"eventsched process {process}"


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def takeover(
    connection: Connection,
    schema: str,
    me: str,
    lease: float,
    jobs: list[str] | None,
) -> list[tuple[Any, ...]]:
    """Mark the unfinished fires of dead processes ``interrupted``; ``(job_id, fire_time)``.

    ``jobs``: only the fires of these job ids (the ones the caller can report); None:
    all. The dead processes' rows go; fires of other jobs stay unfinished, claimed by a
    process that no longer has a row, for a process that knows those jobs.
    """
    fires, processes = _table(schema, "fires"), _table(schema, "processes")
    restrict = sql.SQL("") if jobs is None else sql.SQL(" AND f.job_id = ANY(%(jobs)s)")
    query = sql.SQL(
        "WITH dead AS (DELETE FROM {processes} p WHERE p.id <> %(me)s"
        # The server's own downtime is not the process's silence: the lease counts
        # from the later of its last beat and the server's start.
        " AND greatest(p.heartbeat_at, pg_postmaster_start_time())"
        " < now() - make_interval(secs => %(lease)s)"
        " AND pg_try_advisory_xact_lock(hashtextextended('eventsched process ' || p.id, 0))"
        " RETURNING p.id)"
        " UPDATE {fires} f SET outcome = 'interrupted', finished_at = now()"
        " WHERE f.outcome IS NULL AND f.claimed_by <> %(me)s AND (f.claimed_by IN"
        " (SELECT id FROM dead) OR NOT EXISTS"
        " (SELECT 1 FROM {processes} q WHERE q.id = f.claimed_by)){restrict}"
        " RETURNING f.job_id, f.fire_time"
    ).format(fires=fires, processes=processes, restrict=restrict)
    return connection.execute(query, {"me": me, "lease": lease, "jobs": jobs}).fetchall()


def heartbeat(connection: Connection, schema: str, me: str) -> None:
    """Beat; re-register if this process was presumed dead meanwhile (and say so)."""
    processes = _table(schema, "processes")
    beat = connection.execute(
        sql.SQL("UPDATE {} SET heartbeat_at = now() WHERE id = %s RETURNING id").format(processes),
        [me],
    ).fetchone()
    if beat is None:
        log.warning(
            "This process ({}) was presumed dead by another (no heartbeat for the lease): "
            "runs it had in progress may have been reported as interrupted; registered again",
            me,
        )
        connection.execute(
            sql.SQL("INSERT INTO {} (id, host, pid) VALUES (%s, %s, %s)").format(processes),
            [me, socket.gethostname(), os.getpid()],
        )


def relock(session: Connection, schema: str, me: str) -> bool:
    """Whether ``session`` holds this process's lock, taking it if free (autocommit)."""
    got = session.execute(
        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [lock_key(me)]
    ).fetchone()
    if got is None or not got[0]:
        return False
    processes = _table(schema, "processes")
    session.execute(
        sql.SQL(
            "INSERT INTO {} (id, host, pid) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
        ).format(processes),
        [me, socket.gethostname(), os.getpid()],
    )
    return True
