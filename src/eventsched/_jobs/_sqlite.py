"""The SQLite job store: each job's saved state in a small file that one process holds.

Only data is stored, as text columns (:mod:`._sqliterows` has the format and its
versions): never the callable, never pickle. The file is refused
unless it is a regular file reached without a symlink (a symlink could make us
rewrite some other file as SQLite), writable (checked by a write when it is opened,
so that a read-only file fails at start rather than at every save), and ours (a
``meta`` table with our format marker and version).

One process at a time: an OS lock (``flock``) on a sidecar file ``<state file>.lock``,
which holds the pid of the process that has it. The kernel drops the lock when that
process ends, even by ``kill -9``, so a crash never leaves the file locked.

While the store is open, commits go to a write-ahead log (``journal_mode=WAL``) with
``synchronous=NORMAL``: a commit is a write to the log, not an fsync; at close the file
returns to the rollback journal, one file at rest. When :meth:`SQLiteJobStore.save` returns,
the changes survive a crash of the process (``kill -9`` included): they are in the
operating system's hands. A crash of the operating system or a power loss can undo the
last commits before the log was synced (SQLite syncs it at checkpoints), never corrupt
the file; a fire time claimed in them may then run once more after the reboot, and a
run interrupted then goes unreported. The rollback journal with ``synchronous=FULL``
(three fsyncs per commit) held the scheduler task for each pass's claim commit: at
2,500 fires a second the runs started hundreds of milliseconds late.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar
from urllib.parse import quote

import anyio.to_thread
from loguru import logger

from .._exceptions import JobStateError
from ._sqliterows import (
    CLAIMED_BEFORE,
    FORMAT,
    FORMAT_VERSION,
    SCHEMA,
    SavedColumns,
    migrate_v1,
    read_columns,
    read_rows,
    read_some,
)
from ._sqlitesave import RowWriter
from ._store import SavedJob

__all__ = ["FORMAT", "FORMAT_VERSION", "SQLiteJobStore", "check_state_file"]

log = logger.bind(component="jobstate")

# Failures of open(2) that mean "you may not write here", whoever you are.
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}

Loaded = TypeVar("Loaded")


def _show(path: object) -> str:
    """The path for a one-line message: quoted, cut if long."""
    text = repr(os.fspath(path)) if isinstance(path, str | os.PathLike) else repr(path)
    return text if len(text) <= 80 else text[:60] + "..." + text[-17:]


class SQLiteJobStore:
    """A :class:`~eventsched.JobStore` in an SQLite file; see the module documentation.

    :param path: the state file (created with mode 0600 if missing; its directory must
        exist)
    :param warn: warn when the file is accessible to others
    """

    #: Seconds ahead of a fire time the job scheduler claims it here (see
    #: ``eventsched._jobs._claims.claim_lead``). Not the 0.02 s default: at 5,000
    #: fires a second a pass's save (its rows built in the worker thread, which holds the
    #: GIL meanwhile) outlasted 20 ms, and runs waited for it (p99 115-214 ms against
    #: 18-69 with 0.1 s, docs/benchmarks.md). A process killed outright has its claims
    #: ahead reported ``interrupted`` at the next start, up to 0.2 s of fire times.
    claim_lead: ClassVar[float] = 0.1
    #: The most jobs a pass claims here, in one transaction (see
    #: ``eventsched._jobs._claims.claim_limit``). A pass's claims are a stretch of
    #: the event loop's time (planning each job, building its state) and its rows are
    #: written by a worker thread that holds the GIL between them: without a limit, a
    #: pass at 10,000 fires a second claimed its lead's ~1,000 jobs at once, stalling
    #: the runs due meanwhile by 5-15 ms, and kept ~1,000 claims alive long enough to
    #: be promoted to the collector's oldest generation (a full collection of 24-49 ms
    #: about every 4 s). Start lateness p99 12-93 ms against 2-6 without the file
    #: (docs/benchmarks.md, "the tail with a state file").
    claim_limit: ClassVar[int] = 256

    __slots__ = ("_before_written", "_conn", "_lock_fd", "_rows", "_warn", "claimed_before", "path")

    def __init__(self, path: str | os.PathLike[str], *, warn: bool = True) -> None:
        self.path = Path(path)
        self._warn = warn
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._rows = RowWriter()
        #: Every fire time before this one has been claimed, whatever the rows say
        #: (None: the rows say it all). Read from the file when it is opened; the job
        #: scheduler sets it before a save, which writes it (see :mod:`._claims`).
        self.claimed_before: datetime | None = None
        self._before_written: datetime | None = None

    @property
    def location(self) -> str | None:
        return str(self.path)

    async def lock(self) -> None:
        await anyio.to_thread.run_sync(self.lock_now)

    async def load(self) -> dict[str, SavedJob]:
        return await anyio.to_thread.run_sync(self.load_now)

    async def load_columns(self, fingerprints: Iterable[str] = ()) -> SavedColumns:
        """:meth:`load` for a start-up: the plain rows without an object per job, each
        fingerprint one of ``fingerprints`` as its index in them (see
        :class:`~._sqliterows.SavedColumns`). The scheduler calls this rather than
        :meth:`load`: a subclass that changes what is loaded overrides both."""
        return await anyio.to_thread.run_sync(self.load_columns_now, list(fingerprints))

    async def load_some(self, job_ids: Iterable[str]) -> dict[str, SavedJob]:
        """The saved states of ``job_ids``, checked (after :meth:`load_columns`)."""
        return await anyio.to_thread.run_sync(self.load_some_now, list(job_ids))

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        await anyio.to_thread.run_sync(self.save_now, dict(changes))
        return frozenset()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.close_now)

    @property
    def rows_written(self) -> Mapping[str, tuple[object, ...]]:
        """Per job, what its committed row holds, fingerprint and pausing first (the
        job scheduler records a claim by ``claimed_before`` only for a job whose row
        is its definition's: see :mod:`._claims`)."""
        return self._rows.written

    # -- the blocking work, in a worker thread ---------------------------------------

    def lock_now(self) -> None:
        """Take the sidecar lock and write our pid in it. :raises JobStateError:"""
        lock_path = Path(f"{self.path}.lock")
        _check_path(self.path)
        _check_path(lock_path)
        fd = _open(lock_path, "lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise JobStateError(
                f"{_show(self.path)} is in use by process {holder} (lock {_show(lock_path)}); "
                "stop that process or point the state file elsewhere"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise JobStateError(f"cannot lock {_show(lock_path)}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def load_now(self) -> dict[str, SavedJob]:
        """Open (creating it if missing) and return the saved states. :raises JobStateError:"""
        return self._open(read_rows, dict, dict)

    def load_columns_now(self, fingerprints: list[str]) -> SavedColumns:
        """:meth:`load_now`, the states as :meth:`load_columns` gives them."""
        return self._open(
            lambda path, conn: read_columns(path, conn, fingerprints),
            SavedColumns,
            lambda saved: SavedColumns(others=saved),
        )

    def load_some_now(self, job_ids: Iterable[object]) -> dict[str, SavedJob]:
        conn = self._conn
        if conn is None:
            raise JobStateError(f"the job state file {_show(self.path)} is not open")
        try:
            return read_some(_show(self.path), conn, job_ids)
        except sqlite3.DatabaseError as exc:
            raise JobStateError(
                f"{_show(self.path)} is not a usable job state file ({exc})"
            ) from None

    def _open(
        self,
        read: Callable[[str, sqlite3.Connection], Loaded],
        empty: Callable[[], Loaded],
        migrated: Callable[[dict[str, SavedJob]], Loaded],
    ) -> Loaded:
        """Open the file and read it with ``read`` (``empty``: a new file; ``migrated``:
        the states of a version 1 file, once rewritten)."""
        path = self.path
        _check_path(path)
        fd = _open(path, "job state file")
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if self._warn and mode & 0o077:
            log.warning("Job state file {} is accessible to others (mode {:o})", path, mode)
        try:
            # nofollow: SQLite itself refuses a symlink put in place since the check.
            uri = f"file:{quote(os.fspath(path))}?nofollow=1"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JobStateError(f"cannot open the job state file {_show(path)}: {exc}") from None
        self.claimed_before = self._before_written = None  # (a new file: none)
        try:
            saved = self._load(conn, read, empty, migrated)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._rows.forget()  # rows this store wrote before may have changed since
        return saved

    def _load(
        self,
        conn: sqlite3.Connection,
        read: Callable[[str, sqlite3.Connection], Loaded],
        empty: Callable[[], Loaded],
        migrated: Callable[[dict[str, SavedJob]], Loaded],
    ) -> Loaded:
        path = _show(self.path)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                with conn:
                    for statement in SCHEMA:
                        conn.execute(statement)
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("format", FORMAT), ("version", str(FORMAT_VERSION))],
                    )
                _tune(conn)
                return empty()
            if "meta" not in tables or "jobs" not in tables:
                raise JobStateError(
                    f"{path} is an SQLite file but not an eventsched job state file "
                    f"(tables: {', '.join(sorted(tables))}); point state_file elsewhere"
                )
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise JobStateError(
                    f"{path} is not an eventsched job state file (format {meta.get('format')!r})"
                )
            version = meta.get("version")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                # Per connection, the file untouched: the write below is then synced at
                # a checkpoint, not at its commit (~1.5 ms less at each start). A file
                # not yet in WAL mode (version 1, migrated below) is synced until _tune.
                conn.execute("PRAGMA synchronous=NORMAL")
            now = datetime.now(UTC).isoformat()
            # A write now, so that a read-only file fails at start, not at each save;
            # a version 1 file is migrated in the same transaction (all of it or none).
            with conn:
                if version == "1":
                    saved = migrated(migrate_v1(conn, path, now))
                    log.info(
                        "Job state file {}: migrated from version 1 to {}", path, FORMAT_VERSION
                    )
                elif version in ("2", str(FORMAT_VERSION)):
                    if version == "2":  # the same rows; a reader of 2 must not take it
                        conn.execute(
                            "UPDATE meta SET value = ? WHERE key = 'version'",
                            (str(FORMAT_VERSION),),
                        )
                        log.info("Job state file {}: version 2 is now {}", path, FORMAT_VERSION)
                    saved = read(path, conn)
                else:
                    raise JobStateError(_version_refused(path, version))
                self.claimed_before = self._before_written = _claimed_before(
                    path, meta.get(CLAIMED_BEFORE)
                )
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('opened_at', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (now,),
                )
            _tune(conn)  # ours: only now may the file's journal change
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise JobStateError(f"{path} is read-only: {exc}; make it writable") from None
            raise JobStateError(f"{path} is not a usable job state file ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise JobStateError(
                f"{path} is not a usable job state file ({exc}); move or delete it"
            ) from None
        return saved

    def save_now(self, changes: Mapping[str, SavedJob | None]) -> None:
        """Apply ``changes`` in one committed transaction; None deletes a job's state."""
        conn = self._conn
        if conn is None:
            raise JobStateError(f"the job state file {_show(self.path)} is not open")
        before = self.claimed_before
        also = None if before == self._before_written else partial(_write_before, before)
        self._rows.save(conn, changes, datetime.now(UTC).isoformat(), also)
        self._before_written = before

    def close_now(self) -> None:
        if self._conn is not None:
            # Back to the rollback journal at rest: the file is one file again (no
            # -wal, -shm beside it), as readers such as `eventsched jobs` expect.
            # Skipped if a reader holds it now; the next close tries again.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.close()
            self._conn = None
            self._rows.forget()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _version_refused(path: str, version: str | None) -> str:
    """The one line refusing a file of another version (a newer one: never rewritten)."""
    if version is not None and version.isdigit() and int(version) > FORMAT_VERSION:
        return (
            f"{path} has job state version {version}, newer than this eventsched reads "
            f"({FORMAT_VERSION}); upgrade eventsched or point state_file elsewhere"
        )
    return (
        f"{path} has job state version {version!r}; this eventsched reads versions 1 "
        f"and 2 (migrated when opened) and {FORMAT_VERSION}"
    )


def _write_before(before: datetime | None, conn: sqlite3.Connection) -> None:
    """Write (or, None, remove) the file's ``claimed_before``, in the save's transaction."""
    if before is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (CLAIMED_BEFORE,))
    else:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (CLAIMED_BEFORE, before.isoformat()),
        )


def _claimed_before(path: str, text: str | None) -> datetime | None:
    """The file's ``claimed_before``, checked. :raises JobStateError:"""
    if text is None:
        return None
    try:
        before = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        before = None
    if before is None or before.tzinfo is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise JobStateError(f"{path} has a malformed {CLAIMED_BEFORE} time {shown!r}")
    return before


def _tune(conn: sqlite3.Connection) -> None:
    """Write-ahead log, synced at checkpoints only (see the module documentation).

    The journal mode is kept in the file; ``synchronous`` is per connection.
    """
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def check_state_file(path: str | os.PathLike[str]) -> None:
    """Lock, open and read the state file, then let go: for a check before start.

    :raises JobStateError: it cannot be used (the message says why, in one line)
    """
    store = SQLiteJobStore(path, warn=False)
    try:
        store.lock_now()
        store.load_now()
    finally:
        store.close_now()


def _check_path(path: Path) -> None:
    """Refuse a path that cannot name our file: a NUL, too long, a symlink, a directory."""
    text = os.fspath(path)
    if "\0" in text:
        raise JobStateError(f"the path {_show(path)} contains a NUL character")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JobStateError(f"cannot use {_show(path)}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise JobStateError(
            f"{_show(path)} is a symlink; name the file itself (symlinks are refused so "
            "that no other file is rewritten)"
        )
    if stat.S_ISDIR(info.st_mode):
        raise JobStateError(f"{_show(path)} is a directory; name a file in it instead")
    if not stat.S_ISREG(info.st_mode):
        raise JobStateError(f"{_show(path)} is not a regular file")


def _open(path: Path, what: str) -> int:
    """Open (creating, mode 0600) for writing, never through a symlink. :raises JobStateError:"""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _open_error(path, exc, what) from None


def _open_error(path: Path, exc: OSError, what: str) -> JobStateError:
    if exc.errno == errno.ELOOP:
        return JobStateError(f"{_show(path)} is a symlink; name the file itself")
    if exc.errno in _READ_ONLY:
        return JobStateError(
            f"cannot write the {what} {_show(path)} ({exc.strerror}): it or its directory "
            "is read-only; make it writable or point the state file elsewhere"
        )
    return JobStateError(f"cannot open the {what} {_show(path)}: {exc.strerror}")
