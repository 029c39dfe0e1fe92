"""``eventsched jobs --state-url URL``: the jobs of a PostgreSQL schedule, read-only.

It never writes and takes no lock: one connection with ``default_transaction_read_only``
on (the server refuses any write), one repeatable-read transaction (so the jobs and
their fires are one consistent picture while schedulers keep claiming), no advisory
lock, no row in ``processes``, no migration: tables older or newer than this eventsched
are read as they are, or refused in one line.

Per job it shows what the database holds: the definition's fingerprint, the next and
last fire times, whether the job is paused (shared by every process), the fire times
claimed and not finished, and the last outcome recorded in ``fires``: ``ended`` (the
run finished, whatever its result), ``interrupted`` (its process died, or stopped
before running it) or ``running`` (claimed, not finished). Whether a run succeeded is
an event in its process, not in the database (``not recorded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._jobs._store import SavedJob

__all__ = ["ListedJob", "read_state_url"]


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One job as ``eventsched jobs`` shows it."""

    saved: SavedJob
    last_outcome: str | None
    """None: not recorded by this kind of store."""


def read_state_url(url: str) -> dict[str, ListedJob]:
    """The jobs in the schema of ``url``. :raises StateFileError: one line, no password"""
    import psycopg
    from psycopg import sql

    from .._exceptions import JobStateError
    from .._postgres import SCHEMA_VERSION, parse_state_url, schema_version
    from ._jobs import StateFileError

    try:
        target = parse_state_url(url)
    except JobStateError as exc:
        raise StateFileError(str(exc)) from None
    try:
        connection = psycopg.connect(
            target.conninfo,
            connect_timeout=5,
            options="-c default_transaction_read_only=on",
            application_name="eventsched jobs",
        )
    except psycopg.Error as exc:
        raise StateFileError(f"STATE_URL={target}: cannot connect: {_one_line(exc)}") from None
    schema = target.schema
    name = sql.Identifier(schema)
    try:
        with connection, connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            version = schema_version(connection, schema)
            if version == 0:
                raise StateFileError(
                    f"STATE_URL={target}: no eventsched tables in schema {schema!r}"
                )
            if version > SCHEMA_VERSION:
                raise StateFileError(
                    f"STATE_URL={target}: the tables in schema {schema!r} are version "
                    f"{version}, newer than this eventsched reads ({SCHEMA_VERSION})"
                )
            paused = sql.SQL("j.paused" if version >= 2 else "NULL")
            rows: list[tuple[Any, ...]] = connection.execute(
                sql.SQL(
                    "SELECT j.id, j.fingerprint, j.last_fire_time, j.next_fire_time, {paused},"
                    " (SELECT coalesce(f.outcome, 'running') FROM {schema}.fires f"
                    "  WHERE f.job_id = j.id ORDER BY f.fire_time DESC LIMIT 1),"
                    " ARRAY(SELECT f.fire_time FROM {schema}.fires f"
                    "  WHERE f.job_id = j.id AND f.outcome IS NULL ORDER BY f.fire_time)"
                    " FROM {schema}.jobs j ORDER BY j.id"
                ).format(paused=paused, schema=name)
            ).fetchall()
    except psycopg.Error as exc:
        raise StateFileError(f"STATE_URL={target}: cannot read: {_one_line(exc)}") from None
    finally:
        connection.close()
    return {
        str(job_id): ListedJob(
            SavedJob(fingerprint, last, following, tuple(_times(running)), paused_flag),
            outcome,
        )
        for job_id, fingerprint, last, following, paused_flag, outcome, running in rows
    }


def _times(values: Any) -> list[datetime]:
    return [value for value in values or () if isinstance(value, datetime)]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
