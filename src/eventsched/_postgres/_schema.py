"""eventsched's tables in PostgreSQL: versioned, created and migrated under a lock.

Any number of processes may start together on an empty database: each takes a
transaction-scoped advisory lock named after the schema before looking at anything,
so one creates the tables and the others, once it commits, find them there.
A database whose tables are newer than this eventsched is refused (upgrade eventsched
first) rather than used with the wrong layout.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql

from .. import JobStateError

__all__ = ["SCHEMA_VERSION", "migrate", "schema_version"]

#: The layout this eventsched reads and writes.
SCHEMA_VERSION: Final = 3

# Each entry upgrades the layout from the version before it; never edit a shipped one.
_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        # One row per job id: its place in its schedule, and a version for
        # compare-and-set writes (a process writes only what it last read).
        """CREATE TABLE {schema}.jobs (
            id text PRIMARY KEY,
            fingerprint text NOT NULL,
            last_fire_time timestamptz,
            next_fire_time timestamptz,
            version bigint NOT NULL DEFAULT 1,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX jobs_next_fire_time ON {schema}.jobs (next_fire_time)",
        # One row per claimed fire time: the primary key makes a second claim of the
        # same fire time impossible, whatever the processes believe.
        """CREATE TABLE {schema}.fires (
            job_id text NOT NULL,
            fire_time timestamptz NOT NULL,
            claimed_by text NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            outcome text,
            finished_at timestamptz,
            PRIMARY KEY (job_id, fire_time)
        )""",
        "CREATE INDEX fires_unfinished ON {schema}.fires (claimed_by) WHERE outcome IS NULL",
        # The live processes, each with a heartbeat: a claim whose process stopped
        # beating ended with that process, and is reported as interrupted.
        """CREATE TABLE {schema}.processes (
            id text PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            heartbeat_at timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    2: (
        # Pausing is shared: a job paused (or resumed) in one process is paused (or
        # resumed) in all of them, as its schedule is.
        "ALTER TABLE {schema}.jobs ADD COLUMN paused boolean NOT NULL DEFAULT false",
    ),
    3: (
        # max_instances across processes: a claim counts the job's unfinished fires,
        # which this finds without reading the job's finished history.
        "CREATE INDEX fires_unfinished_job ON {schema}.fires (job_id) WHERE outcome IS NULL",
        # Pruning finds the oldest finished fires first (see _prune.py).
        "CREATE INDEX fires_finished ON {schema}.fires (finished_at) WHERE outcome IS NOT NULL",
    ),
}


def _lock_key(schema: str) -> str:
    return f"eventsched schema {schema}"


def schema_version(connection: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The layout version in ``schema``; 0 where there are no tables yet."""
    row = connection.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{schema}.meta"]).fetchone()
    if row is None or not row[0]:
        return 0
    found = connection.execute(
        sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'").format(
            sql.Identifier(schema)
        )
    ).fetchone()
    return 0 if found is None else int(str(found[0]))


def migrate(connection: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """Bring ``schema`` to :data:`SCHEMA_VERSION` inside the caller's transaction.

    Returns the version found before. Holding the advisory lock until the transaction
    ends makes concurrent callers take turns.
    """
    connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_lock_key(schema)])
    name = sql.Identifier(schema)
    connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
    connection.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.meta (key text PRIMARY KEY, value text NOT NULL)"
        ).format(name)
    )
    found = schema_version(connection, schema)
    if found > SCHEMA_VERSION:
        raise JobStateError(
            f"the tables in schema {schema!r} are version {found}, newer than this "
            f"eventsched knows ({SCHEMA_VERSION}): upgrade eventsched"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[version]:
            connection.execute(sql.SQL(statement).format(schema=name))
    connection.execute(
        sql.SQL(
            "INSERT INTO {}.meta (key, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ).format(name),
        [str(SCHEMA_VERSION)],
    )
    return found
