"""Persistent job state: each job's last and next fire time in a small SQLite file.

Only data is stored, as JSON: never the callable, never pickle. A job is matched to
its saved state by id and by a fingerprint of its trigger (``str(trigger)`` plus the
timezone), so a job whose schedule changed starts afresh instead of inheriting fire
times that no longer fit. Every call here blocks: the job scheduler runs them in a
worker thread (``anyio.to_thread``), one at a time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from loguru import logger

from ._exceptions import EventschedError

__all__ = ["FORMAT", "FORMAT_VERSION", "JobStateError", "JobStateStore", "SavedJob"]

log = logger.bind(component="jobstate")

#: Marker stored in the ``meta`` table; a file without it is not ours.
FORMAT: Final = "eventsched-job-state"
FORMAT_VERSION: Final = 1

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, state TEXT NOT NULL)",
)


class JobStateError(EventschedError):
    """The job state file cannot be used: corrupt, foreign, or of another version.

    The message names the file. Nothing in it was acted upon; move or delete the file
    (losing the saved fire times) or point ``state_file`` elsewhere.
    """


@dataclass(frozen=True, slots=True)
class SavedJob:
    """What the state file remembers about one job."""

    fingerprint: str
    """Description of the trigger the times were computed with."""
    last_fire_time: datetime | None
    """The latest fire time the scheduler handled (ran, or reported as missed)."""
    next_fire_time: datetime | None
    """The next fire time due, without jitter; None once the trigger is exhausted."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "last_fire_time": _iso(self.last_fire_time),
                "next_fire_time": _iso(self.next_fire_time),
                "updated_at": datetime.now(UTC).isoformat(),
            },
            separators=(",", ":"),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class JobStateStore:
    """One SQLite file of job states. Not thread-safe: the caller serialises calls."""

    __slots__ = ("_conn", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def open(self, *, warn: bool = True) -> dict[str, SavedJob]:
        """Open (creating it with mode 0600 if missing) and return the saved states.

        ``warn=False`` leaves out the warning about a file others can read (for a check
        before the real opening, which warns).

        :raises JobStateError: the file is not a job state file of this version, or a
            saved state is malformed
        """
        path = self.path
        if path.is_dir():
            raise JobStateError(f"{path} is a directory; name a file in it instead")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if warn and mode & 0o077:
                log.warning("Job state file {} is accessible to others (mode {:o})", path, mode)
        except OSError as exc:
            raise JobStateError(f"cannot create the job state file {path}: {exc}") from exc
        else:
            os.close(fd)
        try:
            conn = sqlite3.connect(path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JobStateError(f"cannot open the job state file {path}: {exc}") from exc
        try:
            saved = self._load(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return saved

    def _load(self, conn: sqlite3.Connection) -> dict[str, SavedJob]:
        path = self.path
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                with conn:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("format", FORMAT), ("version", str(FORMAT_VERSION))],
                    )
                return {}
            if "meta" not in tables or "jobs" not in tables:
                raise JobStateError(
                    f"{path} is an SQLite file but not an eventsched job state file "
                    f"(tables: {', '.join(sorted(tables))}); point state_file elsewhere"
                )
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            rows = conn.execute("SELECT job_id, state FROM jobs").fetchall()
        except sqlite3.DatabaseError as exc:
            raise JobStateError(
                f"{path} is not a usable job state file ({exc}); move or delete it"
            ) from exc
        if meta.get("format") != FORMAT:
            raise JobStateError(
                f"{path} is not an eventsched job state file (format {meta.get('format')!r})"
            )
        if meta.get("version") != str(FORMAT_VERSION):
            raise JobStateError(
                f"{path} has job state version {meta.get('version')!r}; this eventsched "
                f"reads version {FORMAT_VERSION}"
            )
        return {str(job_id): _parse(path, job_id, state) for job_id, state in rows}

    def write(self, states: dict[str, SavedJob | None]) -> None:
        """Save the given states in one transaction; None deletes a job's state."""
        conn = self._conn
        if conn is None:
            return
        with conn:
            for job_id, saved in states.items():
                if saved is None:
                    conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
                else:
                    conn.execute(
                        "INSERT INTO jobs (job_id, state) VALUES (?, ?) "
                        "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state",
                        (job_id, saved.to_json()),
                    )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _parse(path: Path, job_id: object, state: object) -> SavedJob:
    def bad(why: str) -> JobStateError:
        return JobStateError(f"{path}: the saved state of job {job_id!r} is malformed ({why})")

    if not isinstance(job_id, str) or not isinstance(state, str):
        raise bad("not text")
    try:
        data: Any = json.loads(state)
    except ValueError as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
        raise bad("no fingerprint")
    return SavedJob(
        data["fingerprint"],
        _parse_time(data.get("last_fire_time"), bad),
        _parse_time(data.get("next_fire_time"), bad),
    )


def _parse_time(value: object, bad: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"fire time {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"fire time {value!r} is not an ISO 8601 datetime") from None
    if parsed.tzinfo is None:
        raise bad(f"fire time {value!r} has no timezone")
    try:
        # Checked here, where the file is judged: a time near the ends of the datetime
        # range can be written but not moved to UTC (year 1 at +05:00, for one).
        parsed.astimezone(UTC)
    except OverflowError:
        raise bad(f"fire time {value!r} is out of range") from None
    return parsed
