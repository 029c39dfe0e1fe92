"""The start-up read a clean stop keeps in the SQLite state file (``_jobs/_sqlitekept.py``):
taken by the next start instead of a scan of the table, never used once any row changed
(whoever changed it) or once a start has opened the file, and ignored when unusable."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jobtools import EPOCH

from eventsched import EventScheduler, SQLiteJobStore
from eventsched._jobs import _sqlite
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

#: The restart: every fire time saved at EPOCH still ahead.
RESTART = EPOCH + timedelta(minutes=30)
#: A fire time no schedule gives: put in the kept read, it shows that the read was used.
MARKED = datetime.fromisoformat("2031-01-01T00:00:00.123456+00:00")
TRIGGERS = {"eventsched_startup_insert", "eventsched_startup_update", "eventsched_startup_delete"}


async def _noop() -> None:
    return None


def _scheduler(path: Path, at: datetime) -> EventScheduler:
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=SQLiteJobStore(path, warn=False), clock=VirtualClock(at))
    for n in range(5):
        scheduler.add_job(_noop, "interval", hours=1, id=f"plain-{n}")
    scheduler.add_job(_noop, "cron", minute="15", id="cron")
    scheduler.add_job(_noop, "interval", hours=1, id="paused", paused=True)
    return scheduler


async def _written(path: Path) -> None:
    """A state file as a clean stop leaves it."""
    async with _scheduler(path, EPOCH) as scheduler:
        await scheduler.jobs.flush_state()


def _sql(path: Path, *statements: str) -> list[Any]:
    """Run statements as another program would; the rows of the last one."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            rows: list[Any] = []
            for statement in statements:
                rows = conn.execute(statement).fetchall()
        return rows
    finally:
        conn.close()


def _kept(path: Path) -> tuple[bool, set[str]]:
    """Whether a kept read is current, and the triggers there are."""
    current = _sql(path, "SELECT 1 FROM meta WHERE key = 'startup_current'")
    triggers = _sql(path, "SELECT name FROM sqlite_master WHERE type = 'trigger'")
    return bool(current), {name for (name,) in triggers}


def _mark_kept(path: Path, job_id: str) -> None:
    """Give ``job_id`` the fire time MARKED in the kept read only (meta fires no trigger)."""
    ((value,),) = _sql(path, "SELECT value FROM meta WHERE key = 'startup'")
    kept = json.loads(value)
    kept[5][kept[3].index(job_id)] = MARKED.isoformat()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'startup'", (json.dumps(kept),))
    conn.close()


async def _next_fire_times(path: Path) -> dict[str, datetime | None]:
    scheduler = _scheduler(path, RESTART)
    async with scheduler:
        await scheduler.jobs.flush_state()
        return {job.id: job.next_fire_time for job in scheduler.get_jobs()}


async def test_a_clean_stop_keeps_the_read_and_the_next_start_takes_it(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    assert _kept(path) == (True, TRIGGERS)
    saved = await _next_fire_times(path)  # from the kept read: the same as the rows
    _mark_kept(path, "plain-2")
    restarted = _scheduler(path, RESTART)
    async with restarted:
        # Taken, and stale from now on: a process killed here leaves no current read,
        # and its own saves fire no trigger.
        assert _kept(path) == (False, set())
        jobs = {job.id: job for job in restarted.get_jobs()}
        assert jobs["plain-2"].next_fire_time == MARKED  # read from the kept value
        assert jobs["plain-1"].next_fire_time == saved["plain-1"]
        assert jobs["paused"].paused  # a row not plain: read from the table
    assert _kept(path) == (True, TRIGGERS)  # kept again by this stop


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE jobs SET updated_at = 'edited' WHERE job_id = 'plain-4'",
        "INSERT INTO jobs (job_id, fingerprint, updated_at) VALUES ('other', 'x', 'now')",
        "DELETE FROM jobs WHERE job_id = 'plain-4'",
    ],
    ids=["update", "insert", "delete"],
)
async def test_any_change_of_a_row_after_the_stop_makes_the_table_read(
    tmp_path: Path, change: str
) -> None:
    """By another program (the triggers): the start then reads the rows themselves."""
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    saved = await _next_fire_times(path)
    _mark_kept(path, "plain-2")
    _sql(path, change)
    assert _kept(path) == (False, TRIGGERS)
    found = await _next_fire_times(path)
    assert found["plain-2"] == saved["plain-2"] != MARKED


async def test_a_read_not_current_is_not_used(tmp_path: Path) -> None:
    """As a process killed while running leaves the file (its start took the read)."""
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    saved = await _next_fire_times(path)
    _mark_kept(path, "plain-2")
    _sql(path, "DELETE FROM meta WHERE key = 'startup_current'")
    assert (await _next_fire_times(path))["plain-2"] == saved["plain-2"]


@pytest.mark.parametrize(
    "value",
    [
        "not JSON",
        "[]",
        '["eventsched-startup-0", [], 0, [], [], [], [], []]',
        '["eventsched-startup-1", [], 1, ["plain-0"], [], [], [], []]',
        '["eventsched-startup-1", [1], 1, ["plain-0"], [0], ["x"], [null], [null]]',
        '["eventsched-startup-1", ["f"], 1, ["plain-0"], [3], ["x"], [null], [null]]',
        '["eventsched-startup-1", ["f"], "1", ["plain-0"], [0], ["x"], [null], [null]]',
    ],
    ids=["text", "empty", "tag", "lengths", "fingerprints", "index", "count"],
)
async def test_a_kept_read_that_cannot_be_used_is_ignored(tmp_path: Path, value: str) -> None:
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    saved = await _next_fire_times(path)
    _sql(path, f"UPDATE meta SET value = '{value}' WHERE key = 'startup'")
    assert _kept(path) == (True, TRIGGERS)
    assert await _next_fire_times(path) == saved


async def test_a_stop_that_cannot_keep_the_read_leaves_none_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    saved = await _next_fire_times(path)
    _mark_kept(path, "plain-2")

    def failing(conn: sqlite3.Connection, known: list[str]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(_sqlite, "keep_start_read", failing)
    await _next_fire_times(path)  # its stop keeps nothing, and says nothing of it
    monkeypatch.undo()
    assert _kept(path) == (False, set())
    assert (await _next_fire_times(path))["plain-2"] == saved["plain-2"]


async def test_a_store_opened_to_be_checked_keeps_no_read(tmp_path: Path) -> None:
    """Only a start (the bulk load) takes and keeps the read; ``check_state_file``
    leaves the file's as it was."""
    path = tmp_path / "jobs.sqlite"
    await _written(path)
    _mark_kept(path, "plain-2")
    _sqlite.check_state_file(path)
    assert _kept(path) == (True, TRIGGERS)
    assert (await _next_fire_times(path))["plain-2"] == MARKED
