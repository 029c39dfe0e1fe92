"""`eventsched jobs --state-file F`: the saved jobs, read-only, while a scheduler holds F."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventsched import EXIT_CONFIG, EXIT_OK, EventScheduler, SavedJob, SQLiteJobStore
from eventsched.cli._jobs import read_state_file

#: Bound on one `eventsched jobs` child (start-up imports take ~1 s, more under load).
WAIT = 60.0


def clean_env() -> dict[str, str]:
    """Only what a Python process needs: no eventsched setting leaks in."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}


def jobs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventsched", "jobs", *args]


def fingerprint_of(path: Path) -> tuple[bytes, int, int]:
    """What "unchanged" means: the bytes, the modification time and the inode's change time."""
    info = os.stat(path)
    return path.read_bytes(), info.st_mtime_ns, info.st_ctime_ns


def write_state(path: Path, jobs: dict[str, SavedJob]) -> None:
    store = SQLiteJobStore(path, warn=False)
    try:
        store.lock_now()
        store.load_now()
        store.save_now(jobs)
    finally:
        store.close_now()


async def test_lists_a_running_schedulers_jobs_without_touching_the_file(
    tmp_path: Path, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    state_file = tmp_path / "jobs.sqlite"
    scheduler = EventScheduler(queue_size=10, workers=1, grace_period=1)
    scheduler.configure_jobs(state_file=state_file)
    started = anyio.Event()
    release = anyio.Event()

    async def once() -> None:
        started.set()
        await release.wait()

    async def hourly() -> None:
        pass

    # A run date in the future: a job added to run "now" is not saved (each start
    # would mean another time).
    soon = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.add_job(once, "date", run_date=soon, misfire_grace_time=WAIT, id="once")
    scheduler.add_job(hourly, "interval", hours=1, id="hourly")
    async with scheduler:
        with anyio.fail_after(WAIT):
            await started.wait()
        # The run starts only once its claim is saved, so the file now says: "once"
        # fired and its run is unfinished; "hourly" is due in an hour. The scheduler
        # holds the file's lock all along.
        before = fingerprint_of(state_file)
        with anyio.fail_after(WAIT):
            text = await anyio.run_process(
                jobs_command("--state-file", str(state_file), "--json"),
                env=clean_env(),
                check=False,
            )
        after = fingerprint_of(state_file)
        release.set()
        scheduler.stop()
    assert text.returncode == EXIT_OK, text.stderr.decode()[-2000:]
    assert after == before
    document = json.loads(text.stdout)
    assert document["not_recorded"] == []  # a version 2 file records both
    by_id = {job["id"]: job for job in document["jobs"]}
    assert sorted(by_id) == ["hourly", "once"]
    once_job, hourly_job = by_id["once"], by_id["hourly"]
    assert datetime.fromisoformat(once_job["last_fire_time"]) == soon
    assert once_job["running"] == [once_job["last_fire_time"]]
    assert once_job["next_fire_time"] is None
    assert hourly_job["last_fire_time"] is None
    assert hourly_job["running"] == []
    due = datetime.fromisoformat(hourly_job["next_fire_time"])
    assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
    assert "interval" in hourly_job["trigger"]
    for job in document["jobs"]:
        assert job["last_outcome"] is None  # no run has ended yet
        assert job["paused"] is False


def test_table_has_one_line_per_job(tmp_path: Path) -> None:
    state_file = tmp_path / "jobs.sqlite"
    fired = datetime(2026, 1, 1, tzinfo=UTC)
    write_state(
        state_file,
        {
            "report": SavedJob("cron[minute='*/5']", fired, fired + timedelta(minutes=5), (fired,)),
            "done": SavedJob("date[2026-01-01]", fired, None),
        },
    )
    before = fingerprint_of(state_file)
    result = subprocess.run(
        jobs_command("--state-file", str(state_file)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    assert fingerprint_of(state_file) == before
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "ID", "TRIGGER", "NEXT", "FIRE", "LAST", "FIRE", "LAST", "OUTCOME", "PAUSED", "RUNNING"
    ]  # fmt: skip
    assert [row.split("  ")[0] for row in rows] == ["done", "report"]
    done, report = (row.split() for row in rows)
    not_recorded = ["not", "recorded"] * 2
    assert done == ["done", "date[2026-01-01]", "-", fired.isoformat(), *not_recorded, "-"]
    assert report[2:4] == [(fired + timedelta(minutes=5)).isoformat(), fired.isoformat()]
    assert report[-1] == fired.isoformat()


def _not_sqlite(tmp: Path) -> Path:
    (tmp / "x").write_text("hello\n")
    return tmp / "x"


def _foreign_sqlite(tmp: Path) -> Path:
    with sqlite3.connect(tmp / "x") as conn:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    return tmp / "x"


def _malformed_job(tmp: Path) -> Path:
    write_state(tmp / "x", {})
    with sqlite3.connect(tmp / "x") as conn:
        conn.execute(
            "INSERT INTO jobs (job_id, fingerprint, next_fire_time, updated_at)"
            " VALUES ('tick', 'f', 'not a time', '')"
        )
    conn.close()
    return tmp / "x"


def _other_version(tmp: Path) -> Path:
    write_state(tmp / "x", {})
    with sqlite3.connect(tmp / "x") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    conn.close()
    return tmp / "x"


BAD = {
    "missing": (lambda tmp: tmp / "nowhere", "No such file"),
    "directory": (lambda tmp: tmp, "not a regular file"),
    "not sqlite": (_not_sqlite, "not a usable job state file"),
    "foreign sqlite": (_foreign_sqlite, "not an eventsched job state file"),
    "malformed job": (_malformed_job, "malformed"),
    "other version": (_other_version, "version '99'"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_line_and_exit_2_and_is_left_alone(tmp_path: Path, case: str) -> None:
    make, expected = BAD[case]
    path = make(tmp_path)
    before = fingerprint_of(path) if path.is_file() else None
    files = sorted(tmp_path.iterdir())
    result = subprocess.run(
        jobs_command("--state-file", str(path)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("eventsched jobs: "), line
    assert expected in line, line
    assert sorted(tmp_path.iterdir()) == files  # nothing created: no file, lock, journal
    if before is not None:
        assert fingerprint_of(path) == before


def test_no_state_file_says_how_to_give_one() -> None:
    result = subprocess.run(
        jobs_command(), env=clean_env(), capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert result.returncode == EXIT_CONFIG
    (line,) = result.stderr.splitlines()
    assert "--state-file" in line
    assert "--state-url" in line


def test_the_shared_state_file_setting_is_the_default(tmp_path: Path) -> None:
    write_state(tmp_path / "jobs.sqlite", {"a": SavedJob("t", None, None)})
    result = subprocess.run(
        jobs_command("--json"),
        env={**clean_env(), "STATE_FILE": str(tmp_path / "jobs.sqlite")},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert [job["id"] for job in json.loads(result.stdout)["jobs"]] == ["a"]


def test_read_state_file_matches_what_the_store_loads(tmp_path: Path) -> None:
    fired = datetime(2026, 3, 1, 12, tzinfo=UTC)
    saved = {"a": SavedJob("interval[0:00:05]", fired, fired + timedelta(seconds=5), (fired,))}
    write_state(tmp_path / "jobs.sqlite", saved)
    assert read_state_file(tmp_path / "jobs.sqlite") == saved
