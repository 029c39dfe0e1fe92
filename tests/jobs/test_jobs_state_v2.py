"""The state file's version 2 (a column per field): the same states back, version 1
files migrated (a file written by the version 1 code, in ``data/``), newer files
refused, and each job's last outcome and pausing recorded for ``eventsched jobs``."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from jobtools import EPOCH

from eventsched import Event, EventScheduler, EventType, JobStateError, SavedJob, SQLiteJobStore
from eventsched._jobs._sqliterows import FORMAT_VERSION
from eventsched.cli._jobs import as_json, as_table, read_state_file_version
from eventsched.cli._jobsdb import ListedJob
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

V1_FILE = Path(__file__).parent / "data" / "state_v1.sqlite"
AT = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def open_store(path: Path) -> tuple[SQLiteJobStore, dict[str, SavedJob]]:
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    try:
        return store, store.load_now()
    except BaseException:
        store.close_now()
        raise


def meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        found = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    return found


@pytest.mark.parametrize(
    "saved",
    [
        SavedJob('cron["x"] \\ é\n\t', None, None),
        SavedJob(
            "interval[0:00:01]",
            datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 3, 29, 3, 0, tzinfo=timezone(timedelta(hours=2))),
            (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
            True,
            "timed_out",
        ),
        SavedJob("date[x]", AT, None, (), False, "completed"),
        # Where the fast read hands over to the checked one: a year at the edge.
        SavedJob("f", datetime(9999, 12, 31, tzinfo=UTC), datetime(1, 1, 1, 5, tzinfo=UTC)),
    ],
)
def test_a_state_comes_back_as_it_was_saved(tmp_path: Path, saved: SavedJob) -> None:
    store, _ = open_store(tmp_path / "jobs.sqlite")
    try:
        store.save_now({"j": saved})
    finally:
        store.close_now()
    again, loaded = open_store(tmp_path / "jobs.sqlite")
    again.close_now()
    assert loaded == {"j": saved}
    assert [at.utcoffset() for at in loaded["j"].running] == [
        at.utcoffset() for at in saved.running
    ]
    if saved.next_fire_time is not None:
        assert loaded["j"].next_fire_time.utcoffset() == saved.next_fire_time.utcoffset()  # type: ignore[union-attr]


V1_STATES = {
    "hourly": SavedJob("interval[1:00:00]", AT, AT + timedelta(hours=1)),
    "berlin": SavedJob(
        "cron[hour='2', minute='30']",
        datetime(2026, 3, 28, 2, 30, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 3, 30, 2, 30, tzinfo=timezone(timedelta(hours=2))),
    ),
    "claimed": SavedJob("interval[0:00:10]", AT, AT + timedelta(seconds=10), (AT,)),
    "done": SavedJob('date[2026-01-01] "odd" \\ é', AT, None),
}


def test_a_version_1_file_is_migrated_when_opened(tmp_path: Path) -> None:
    """The file the version 1 code wrote: read, rewritten as version 2, read again."""
    path = tmp_path / "jobs.sqlite"
    shutil.copyfile(V1_FILE, path)
    assert meta(path)["version"] == "1"
    # `eventsched jobs` reads it as it is, and leaves it so.
    listed, version = read_state_file_version(path)
    assert (listed, version) == (V1_STATES, 1)
    assert meta(path)["version"] == "1"
    store, loaded = open_store(path)
    store.close_now()
    assert loaded == V1_STATES
    assert meta(path)["version"] == str(FORMAT_VERSION)
    with sqlite3.connect(path) as conn:
        tables = sorted(row[0] for row in conn.execute("SELECT name FROM sqlite_master"))
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    conn.close()
    assert "jobs_v1" not in tables
    assert "state" not in columns
    again, reloaded = open_store(path)
    again.close_now()
    assert reloaded == V1_STATES
    assert read_state_file_version(path) == (V1_STATES, FORMAT_VERSION)


def test_a_version_1_file_with_a_bad_row_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    shutil.copyfile(V1_FILE, path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO jobs VALUES ('broken', 'not json')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JobStateError, match=r"'broken'.*not JSON"):
        open_store(path)
    assert path.read_bytes() == before  # the migration's transaction rolled back


def test_a_newer_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store, _ = open_store(path)
    store.close_now()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'version'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JobStateError, match=r"version 4, newer than this eventsched reads \(3\)"):
        open_store(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("next_fire_time", "2026-13-01T00:00:00+00:00", "not an ISO 8601"),
        ("last_fire_time", "2026-01-01T00:00:00", "no timezone"),
        ("next_fire_time", "0001-01-01T00:00:00+05:00", "out of range"),
        ("paused", 7, "paused 7"),
        ("last_outcome", "exploded", "last outcome 'exploded'"),
        ("fingerprint", b"\x80", "no fingerprint"),
        ("running", "[1]", "is not a string"),
    ],
)
def test_a_malformed_row_names_its_job(
    tmp_path: Path, column: str, value: object, why: str
) -> None:
    path = tmp_path / "jobs.sqlite"
    store, _ = open_store(path)
    try:
        store.save_now({"a": SavedJob("f", AT, AT), "tick": SavedJob("f", AT, AT)})
    finally:
        store.close_now()
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE jobs SET {column} = ? WHERE job_id = 'tick'", (value,))
    conn.close()
    with pytest.raises(JobStateError, match=rf"'tick'.*{re.escape(why)}"):
        open_store(path)


class CountingStore(SQLiteJobStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, warn=False)
        self.written: set[str] = set()

    def save_now(self, changes: Mapping[str, SavedJob | None]) -> None:
        self.written.update(changes)
        super().save_now(changes)


async def _ok() -> None:
    return None


async def _bad() -> None:
    raise RuntimeError("boom")


async def _slow() -> None:
    await anyio.sleep_forever()


def _scheduler(store: SQLiteJobStore) -> EventScheduler:
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=VirtualClock(EPOCH))
    for job_id, func, options in (
        ("ok", _ok, {}),
        ("bad", _bad, {}),
        ("slow", _slow, {"timeout": 0.01}),
        ("idle", _ok, {"start_date": EPOCH + timedelta(hours=1)}),
    ):
        scheduler.add_job(func, "interval", hours=1, id=job_id, **{"start_date": EPOCH, **options})
    return scheduler


async def test_outcomes_and_pausing_are_recorded_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    scheduler = _scheduler(SQLiteJobStore(path, warn=False))
    ended: set[str] = set()
    all_ended = anyio.Event()

    async def record(event: Event) -> None:
        ended.add(event.data["job_id"])
        if ended == {"ok", "bad", "slow"}:
            all_ended.set()

    scheduler.on(EventType.JOB_COMPLETED, record)
    scheduler.on(EventType.JOB_FAILED, record)  # a time-out is a failure event too

    async with scheduler:
        with anyio.fail_after(10):
            await all_ended.wait()
        scheduler.pause_job("idle")
    listed, version = read_state_file_version(path)
    assert version == FORMAT_VERSION
    outcomes = {job_id: (s.last_outcome, s.paused) for job_id, s in listed.items()}
    assert outcomes == {
        "ok": ("completed", False),
        "bad": ("failed", False),
        "slow": ("timed_out", False),
        "idle": (None, True),
    }
    jobs = {job_id: ListedJob(s, s.last_outcome) for job_id, s in listed.items()}
    table = {line.split()[0]: line.split() for line in as_table(jobs).splitlines()[1:]}
    assert table["bad"][-3:-1] == ["failed", "no"]
    assert table["idle"][-3:-1] == ["-", "yes"]  # recorded: no run yet
    assert as_json({"state_file": str(path)}, jobs)["not_recorded"] == []

    # Restarted: pausing comes from the code (recorded, not restored), so only the
    # row that differs is written; the others are resumed as they are.
    store = CountingStore(path)
    restarted = _scheduler(store)
    async with restarted:
        await restarted.jobs.flush_state()
        assert not restarted.get_job("idle").paused
    assert store.written == {"idle"}
    listed, _ = read_state_file_version(path)
    assert listed["idle"].paused is False
    assert listed["bad"].last_outcome == "failed"


async def test_a_run_its_process_did_not_finish_is_recorded_as_interrupted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    first = _scheduler(SQLiteJobStore(path, warn=False))
    async with first:
        await first.jobs.flush_state()
    store, saved = open_store(path)
    try:
        idle = saved["idle"]
        store.save_now({"idle": replace(idle, running=(idle.next_fire_time,))})  # type: ignore[arg-type]
    finally:
        store.close_now()
    restarted = _scheduler(SQLiteJobStore(path, warn=False))
    async with restarted:
        await restarted.jobs.flush_state()
    listed, _ = read_state_file_version(path)
    assert listed["idle"].last_outcome == "interrupted"
    assert listed["idle"].running == ()
