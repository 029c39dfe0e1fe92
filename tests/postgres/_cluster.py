"""A private PostgreSQL server for one test, which the test may stop and restart.

The shared server (``conftest.postgres_url``) serves every test at once under xdist, so
a test that restarts its server needs one of its own: ``initdb`` into a temporary
directory (trust auth, no fsync: a test's data), started on a free port of 127.0.0.1
with its socket in that directory. PostgreSQL refuses to run as root, so as root (this
machine, CI) the server's programs run as the ``postgres`` OS user, owner of the
directory. About a second to create and start (measured: initdb 1.1 s, start 0.25 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Cluster", "ClusterUnavailable", "find_bindir"]

#: Bound on each pg_ctl/initdb call (they wait for the server themselves, with -w).
_CALL_LIMIT = 60


class ClusterUnavailable(Exception):
    """No server programs here, or the cluster would not start (the one line why)."""


def find_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian), else the PATH."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    usable = (c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists())
    return next(usable, None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One private server; :meth:`create` it, then start/stop/restart as the test needs."""

    def __init__(self, bindir: Path) -> None:
        self._bindir = bindir
        # Not pytest's tmp_path: that is root's and closed to the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="es-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _call(self, program: str, *args: str) -> None:
        command: Sequence[str] = [*self._as, str(self._bindir / program), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=_CALL_LIMIT
        )
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-200:]
            raise ClusterUnavailable(f"{program} {args[0]} failed ({done.returncode}): {tail}")

    def create(self) -> None:
        """initdb and start."""
        data = str(self.data)
        self._call("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._call(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, *extra
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection ended, the server back at once."""
        self._pg_ctl("restart", "-m", "fast")

    def destroy(self) -> None:
        """Stop the server whatever its state, and remove its files."""
        if (self.data / "postmaster.pid").exists():
            # Stopped meanwhile, or stuck: the files go anyway.
            with contextlib.suppress(ClusterUnavailable, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
