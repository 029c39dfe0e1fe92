"""``eventsched jobs --state-file F`` (or ``--state-url URL``): the saved jobs, read-only.

It never changes the file: SQLite opens it with ``mode=ro`` (no write, no journal, no
creation), no lock is taken, nothing is written to its ``meta`` table (the scheduler's
store does write there when it opens the file, to fail early on a read-only file) and
a version 1 file is not migrated. So it works while a scheduler holds the file's lock,
and shows what the scheduler had committed at that moment: SQLite's read transaction
sees either all of a save or none of it.

What the file records per job is :class:`~eventsched.SavedJob`: the trigger's
fingerprint, the last and next fire times, the fire times claimed for a run whose
outcome is not recorded yet, whether the job was paused when it was last saved, and how
its latest run ended (``completed``, ``failed``, ``timed_out``, ``aborted``, or
``interrupted``: its process ended first; ``-`` in the table, null in JSON: no run
yet). A version 1 file (before pausing and outcomes were recorded) says ``not
recorded`` in those columns rather than guess, as does a row the scheduler has not
rewritten since it migrated the file. Pausing is recorded, not restored: a restarted
scheduler takes ``paused=`` from the code (and records that).

While a scheduler runs (or after it was killed), a job's row may lag its runs by up to
the writer's round (``SAVE_DELAY``, 5 s): its claims are recorded by the time kept in
``meta`` as ``claimed_before`` rather than in its row (see ``docs/jobs.md``). A
scheduler that closed cleanly leaves every row up to date and no such time.

``--state-url URL`` (or ``STATE_URL``) reads a PostgreSQL schedule instead, read-only
too (:mod:`._jobsdb`): there pausing is shared, so recorded, and the last outcome is
the one ``fires`` holds for the job's latest claimed fire time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from pydantic import BaseModel, Field
from pydantic_settings import CliImplicitFlag

from .._exit import EXIT_CONFIG, EXIT_OK

if TYPE_CHECKING:
    from .._jobs._store import SavedJob
    from ._jobsdb import ListedJob
    from ._settings import Settings

__all__ = ["JobsCommand", "StateFileError", "read_state_file"]

#: What a version 1 state file does not record, in both outputs.
NOT_RECORDED: Final = ("last_outcome", "paused")


class StateFileError(Exception):
    """The file cannot be read as a job state file; the message is one line."""


class JobsCommand(BaseModel):
    """List the saved jobs, changing nothing: eventsched jobs --state-file F | --state-url U."""

    state_file: Path | None = Field(
        None,
        description="the SQLite job state file to read (never written); default: the "
        "shared STATE_FILE",
    )
    state_url: str | None = Field(
        None,
        description="a postgresql:// state URL to read instead (never written, no lock "
        "taken); default: the shared STATE_URL",
    )
    json_output: CliImplicitFlag[bool] = Field(
        False, alias="json", description="print JSON instead of a table"
    )

    def run(self, settings: Settings) -> int:
        """Print the jobs; exit 2 with one line if the state cannot be read."""
        if self.state_file is not None and self.state_url is not None:
            return _refuse("give --state-file or --state-url, not both")
        path = self.state_file
        url = self.state_url
        if path is None and url is None:
            path, url = settings.state_file, settings.state_url
        if path is None and url is None:
            return _refuse("no state to read: give --state-file F or --state-url URL")
        try:
            if path is not None:
                saved_jobs, version = read_state_file_version(path)
                jobs = {j: _listed(saved) for j, saved in saved_jobs.items()}
                where = {"state_file": os.fspath(path)}
                unrecorded = NOT_RECORDED if version < 2 else ()
            else:
                from .._postgres import redact
                from ._jobsdb import read_state_url

                assert url is not None
                jobs = read_state_url(url)
                where = {"state_url": redact(url)}
                unrecorded = ()
        except StateFileError as error:
            return _refuse(str(error))
        if self.json_output:
            print(json.dumps(as_json(where, jobs, unrecorded), indent=2), flush=True)
        else:
            sys.stdout.write(as_table(jobs))
            sys.stdout.flush()
        return EXIT_OK


def _refuse(message: str) -> int:
    print(f"eventsched jobs: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def _listed(saved: SavedJob) -> ListedJob:
    from ._jobsdb import ListedJob

    return ListedJob(saved, saved.last_outcome)


def read_state_file(path: str | os.PathLike[str]) -> dict[str, SavedJob]:
    """The saved jobs in ``path``, opened read-only. :raises StateFileError:"""
    return read_state_file_version(path)[0]


def read_state_file_version(path: str | os.PathLike[str]) -> tuple[dict[str, SavedJob], int]:
    """The saved jobs in ``path`` and the file's version (1 to 3), read-only, never
    migrated. :raises StateFileError:"""
    from .._exceptions import JobStateError
    from .._jobs._sqliterows import FORMAT, FORMAT_VERSION, parse_v1, read_rows

    shown = repr(os.fspath(path))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise StateFileError(f"cannot read {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StateFileError(f"{shown} is not a regular file")
    # mode=ro: SQLite neither creates the file nor writes it, and takes only the shared
    # lock of a read transaction (the scheduler's flock is on a sidecar file).
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StateFileError(f"cannot open {shown}: {exc}") from None
    try:
        with conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "meta" not in tables or "jobs" not in tables:
                raise StateFileError(f"{shown} is not an eventsched job state file")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise StateFileError(f"{shown} is not an eventsched job state file")
            version = meta.get("version")
            if version not in ("1", "2", str(FORMAT_VERSION)):
                raise StateFileError(
                    f"{shown} has job state version {version!r}; this eventsched reads "
                    f"versions 1 to {FORMAT_VERSION}"
                )
            if version == "1":
                rows = conn.execute("SELECT job_id, state FROM jobs ORDER BY job_id").fetchall()
                saved = {str(j): parse_v1(shown, j, state) for j, state in rows}
            else:
                saved = read_rows(shown, conn, ordered=True)
    except sqlite3.DatabaseError as exc:
        raise StateFileError(f"{shown} is not a usable job state file ({exc})") from None
    except JobStateError as exc:
        raise StateFileError(str(exc)) from None
    finally:
        conn.close()
    return saved, int(version)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def as_json(
    where: dict[str, str], jobs: dict[str, ListedJob], unrecorded: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The ``--json`` document: where, what it does not record, and one object per job.

    ``last_outcome`` and ``paused`` are null where a job has none recorded (no run yet,
    or a row from before they were recorded); ``not_recorded`` names the fields the
    whole store does not record (a version 1 state file).
    """
    return {
        **where,
        "not_recorded": list(unrecorded),
        "jobs": [
            {
                "id": job_id,
                "trigger": job.saved.fingerprint,
                "next_fire_time": _iso(job.saved.next_fire_time),
                "last_fire_time": _iso(job.saved.last_fire_time),
                "last_outcome": job.last_outcome,
                "paused": job.saved.paused,
                "running": [at.isoformat() for at in job.saved.running],
            }
            for job_id, job in jobs.items()
        ],
    }


_COLUMNS: Final = ("ID", "TRIGGER", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME", "PAUSED", "RUNNING")


def _shown(value: object) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def as_table(jobs: dict[str, ListedJob]) -> str:
    """One line per job under a header; ``RUNNING`` lists claimed but unfinished runs."""
    if not jobs:
        return "no jobs saved\n"
    rows = [
        (
            job_id,
            job.saved.fingerprint,
            _iso(job.saved.next_fire_time) or "-",
            _iso(job.saved.last_fire_time) or "-",
            # Recorded, but no run yet: "-" (a row that records pausing records
            # outcomes too, in both stores).
            "-"
            if job.last_outcome is None and job.saved.paused is not None
            else _shown(job.last_outcome),
            _shown(job.saved.paused),
            ",".join(at.isoformat() for at in job.saved.running) or "-",
        )
        for job_id, job in jobs.items()
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in [_COLUMNS, *rows]
    )
