"""Pruning the ``fires`` table: finished fire times go once old enough, in small batches.

Each claimed fire time leaves a row in ``fires`` (2,500 a second in the benchmark of
four processes). Nothing needs a finished row for long: liveness and reporting read
only the unfinished ones (a dead process's runs), a claim repeated after a lost answer
finds its own unfinished row within seconds (a finished fire time is kept from being
claimed again by the job row's compare-and-set, the primary key being the second line),
and ``eventsched jobs`` shows each job's latest fire time and its outcome. So a row is
deleted once it has been finished for ``keep`` seconds, unless it is its job's latest.

Off the hot path: each process's watcher prunes at most once a minute (or once per
``keep``, if shorter), in transactions of :data:`BATCH` rows, until a batch comes back
short. Processes take turns: a batch runs only under a transaction-scoped advisory lock
named after the schema, and a process that finds it taken leaves the round to the
holder.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

__all__ = ["BATCH", "EVERY", "KEEP", "prune_batch"]

#: Seconds a finished fire time is kept (a job's latest is kept whatever its age).
KEEP: Final = 3600.0
#: The most seconds between two pruning rounds of one process.
EVERY: Final = 60.0
#: Rows deleted per transaction: each holds its locks only briefly.
BATCH: Final = 1000


def prune_batch(
    connection: psycopg.Connection[tuple[Any, ...]], schema: str, keep: float, batch: int
) -> int | None:
    """Delete up to ``batch`` rows (one transaction); None: another process prunes."""
    got = connection.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [f"eventsched prune {schema}"]
    ).fetchone()
    if got is None or not got[0]:
        return None
    fires = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("fires"))
    deleted = connection.execute(
        sql.SQL(
            "DELETE FROM {fires} d USING (SELECT f.job_id, f.fire_time FROM {fires} f"
            " WHERE f.outcome IS NOT NULL"
            " AND f.finished_at < now() - make_interval(secs => %s)"
            " AND f.fire_time < (SELECT max(g.fire_time) FROM {fires} g"
            " WHERE g.job_id = f.job_id)"
            " ORDER BY f.finished_at LIMIT %s) old"
            " WHERE d.job_id = old.job_id AND d.fire_time = old.fire_time"
        ).format(fires=fires),
        [keep, batch],
    )
    return deleted.rowcount
