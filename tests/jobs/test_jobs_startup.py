"""A start-up with an SQLite state file takes up the plain saved rows in bulk
(``_jobs/_resume.py``): the same schedules as the job-by-job take-up, no row written
again, no ``SavedJob`` per plain row, and a malformed row still refused by name."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from jobtools import EPOCH

from eventsched import Event, EventScheduler, EventType, JobStateError, SavedJob, SQLiteJobStore
from eventsched._jobs import _resume, _sqliterows
from eventsched._jobs._startnotes import MAX_NAMED, StartNotes
from eventsched._jobs._timeline import Timeline
from eventsched.cli._jobs import read_state_file_version
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

LATER = EPOCH + timedelta(hours=2, minutes=30)
#: When the saved file is restarted: every saved fire time still ahead.
RESTART = LATER - timedelta(minutes=59)


async def _noop() -> None:
    return None


class RecordingStore(SQLiteJobStore):
    """Records the rows written and the rows read again one by one."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, warn=False)
        self.written: set[str] = set()
        self.read_again: list[object] = []

    def save_now(self, changes: Mapping[str, SavedJob | None]) -> None:
        self.written.update(changes)
        super().save_now(changes)

    def load_some_now(self, job_ids: Iterable[object]) -> dict[str, SavedJob]:
        ids = list(job_ids)
        self.read_again.extend(ids)
        return super().load_some_now(ids)


def _add(scheduler: EventScheduler, *, changed: bool = False, paused: bool = False) -> None:
    add = scheduler.add_job
    for n in range(20):
        add(_noop, "interval", hours=1, id=f"plain-{n}")  # deferred start: set from the row
    add(_noop, "interval", hours=1, start_date=EPOCH, id="started")
    add(_noop, "interval", hours=1, start_date=EPOCH, jitter=30, id="jittered")
    add(_noop, "cron", minute="15", id="cron")
    add(_noop, "interval", hours=3 if changed else 1, start_date=EPOCH, id="changed")
    add(_noop, "interval", hours=1, start_date=EPOCH, id="paused", paused=paused)


def _scheduler(store: SQLiteJobStore, clock: VirtualClock) -> EventScheduler:
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=store, clock=clock)
    return scheduler


async def _saved_file(path: Path) -> dict[str, SavedJob]:
    """A file whose jobs have run (last fire times, outcomes): saved a second before
    EPOCH, then each run once (all overdue) an hour and a half later."""
    first = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(EPOCH - timedelta(seconds=1)))
    _add(first)
    async with first:
        await first.jobs.flush_state()
    second = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(LATER - timedelta(hours=1)))
    _add(second)
    completed = anyio.Event()

    async def count(event: Event) -> None:
        if second.jobs.statistics().runs_completed == 25:
            completed.set()

    second.on(EventType.JOB_COMPLETED, count)
    async with second:
        with anyio.fail_after(10):
            await completed.wait()
        await second.jobs.flush_state()
    return read_state_file_version(path)[0]


async def test_the_plain_rows_are_resumed_as_saved_and_written_nowhere(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    saved = await _saved_file(path)
    assert saved["started"].last_outcome == "completed"
    store = RecordingStore(path)
    restarted = _scheduler(store, VirtualClock(RESTART))
    _add(restarted, changed=True, paused=True)
    async with restarted:
        await restarted.jobs.flush_state()
        jobs = {job.id: job for job in restarted.get_jobs()}
        entries = restarted.jobs._entries
        for job_id in ("started", "cron", "plain-3", "jittered"):
            assert jobs[job_id].last_fire_time == saved[job_id].last_fire_time
            assert entries[job_id].next_fire == saved[job_id].next_fire_time
            assert entries[job_id].last_outcome == saved[job_id].last_outcome
        # The deferred interval starts at its saved fire time, as the one-by-one take-up.
        plain = entries["plain-3"]
        assert plain.trigger.start_date == saved["plain-3"].next_fire_time
        assert jobs["plain-3"].next_fire_time == saved["plain-3"].next_fire_time
        assert jobs["jittered"].next_fire_time >= saved["jittered"].next_fire_time  # type: ignore[operator]
        # Another definition starts afresh; paused in the code is written as paused.
        assert jobs["changed"].next_fire_time != saved["changed"].next_fire_time
        assert jobs["paused"].paused
    assert store.written == {"changed", "paused"}
    assert sorted(store.read_again) == ["changed", "paused"]  # type: ignore[type-var]


async def test_jobs_added_in_another_order_than_their_rows_resume_the_same(
    tmp_path: Path,
) -> None:
    """The rows usually come in the order the jobs are added in, and are then matched
    to them without a look-up by id (see _resume): in any other order, by id."""
    path = tmp_path / "jobs.sqlite"
    saved = await _saved_file(path)
    calls: list[tuple[Any, Any]] = []

    class Recorder:
        def add_job(self, *args: Any, **kwargs: Any) -> None:
            calls.append((args, kwargs))

    _add(Recorder())  # type: ignore[arg-type]
    store = RecordingStore(path)
    restarted = _scheduler(store, VirtualClock(RESTART))
    for args, kwargs in reversed(calls):
        restarted.add_job(*args, **kwargs)
    async with restarted:
        await restarted.jobs.flush_state()
        entries = restarted.jobs._entries
        for job_id, state in saved.items():
            assert entries[job_id].next_fire == state.next_fire_time, job_id
            assert entries[job_id].last_fire == state.last_fire_time, job_id
    assert store.written == set()
    assert store.read_again == []


async def test_the_store_is_asked_about_the_fingerprints_the_jobs_have_at_start(
    tmp_path: Path,
) -> None:
    """They are noted as jobs are added (no pass over them at start), and noted anew
    when the default timezone rebuilds the triggers given by name."""
    asked: list[list[str]] = []

    class AskedStore(SQLiteJobStore):
        def load_columns_now(self, fingerprints: list[str]) -> _sqliterows.SavedColumns:
            asked.append(list(fingerprints))
            return super().load_columns_now(fingerprints)

    scheduler = _scheduler(AskedStore(tmp_path / "jobs.sqlite", warn=False), VirtualClock(RESTART))
    _add(scheduler)
    scheduler.configure_jobs(timezone="Europe/Berlin")
    async with scheduler:
        entries = scheduler.jobs._entries
        assert asked == [list(dict.fromkeys(job.fingerprint for job in entries.values()))]
        assert "Europe/Berlin" in entries["plain-0"].fingerprint


async def test_no_saved_job_object_is_made_for_a_plain_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up's cost per saved job: one pass over raw values, no object each."""
    path = tmp_path / "jobs.sqlite"
    await _saved_file(path)
    made: list[Any] = []
    original = _sqliterows.SavedJob

    def counting(*args: Any, **kwargs: Any) -> SavedJob:
        made.append(args[0] if args else kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(_sqliterows, "SavedJob", counting)
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    _add(restarted)
    async with restarted:
        assert len(restarted.get_jobs()) == 25
    assert made == []


async def test_a_saved_row_of_a_job_added_later_is_taken_up_then(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    saved = await _saved_file(path)
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    restarted.add_job(_noop, "cron", minute="15", id="cron")
    async with restarted:
        restarted.add_job(_noop, "interval", hours=1, start_date=EPOCH, id="started")
        job = restarted.get_job("started")
        assert job.last_fire_time == saved["started"].last_fire_time
        assert job.next_fire_time == saved["started"].next_fire_time


async def test_a_job_replaced_before_start_resumes_its_saved_row(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    saved = await _saved_file(path)
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    restarted.add_job(_noop, "cron", minute="15", id="cron")
    restarted.add_job(_noop, "cron", minute="15", id="cron", replace_existing=True)
    async with restarted:
        assert restarted.get_job("cron").next_fire_time == saved["cron"].next_fire_time
        assert "cron" not in restarted.jobs._saved


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("next_fire_time", "2026-13-01T00:00:00+00:00", "not an ISO 8601"),
        ("next_fire_time", "2026-01-01T00:00:00", "no timezone"),
        ("last_fire_time", "2026-01-01T00:00:00", "no timezone"),
        ("last_fire_time", 5, "not an ISO 8601"),  # kept as the text "5"
        ("next_fire_time", "0001-01-01T00:00:00+05:00", "out of range"),
        ("last_fire_time", "9999-12-31T23:00:00-05:00", "out of range"),
        ("paused", 7, "paused 7"),
        ("last_outcome", "exploded", "last outcome 'exploded'"),
        ("fingerprint", b"\x80", "no fingerprint"),
        ("running", "[1]", "is not a string"),
    ],
)
async def test_a_malformed_row_is_refused_at_start_by_name(
    tmp_path: Path, column: str, value: object, why: str
) -> None:
    path = tmp_path / "jobs.sqlite"
    await _saved_file(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE jobs SET {column} = ? WHERE job_id = 'plain-7'", (value,))
    conn.close()
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    _add(restarted)
    expected = pytest.RaisesExc(JobStateError, match=rf"'plain-7'.*{why}")
    with pytest.RaisesGroup(expected, allow_unwrapped=True):
        async with restarted:
            pass


def _at(text: str) -> Any:
    return datetime.fromisoformat(text)


AWARE = ["2026-03-01T10:00:00+00:00", "2026-03-01T12:00:00+02:00", "2026-03-02T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("odd", "row_usable"),
    [
        (None, True),
        ("2026-03-01T11:00:00", False),  # no offset, among times that have one
        ("0001-01-01T08:00:00+05:00", False),  # year 1: UTC would be year 0
        ("9999-12-31T20:00:00-05:00", False),  # year 9999: UTC would be year 10000
        ("0002-01-01T00:00:00+00:00", True),  # near the edge: checked row by row, taken
        ("9998-12-31T00:00:00+00:00", True),
    ],
)
@pytest.mark.parametrize("column", ["next", "last"])
def test_the_bulk_check_of_the_times_takes_only_what_each_row_would(
    odd: str | None, row_usable: bool, column: str
) -> None:
    """The bulk check looks at a column's earliest and latest time only (see _usable):
    whenever it takes a column, each row's own check takes each row; when it does not,
    the rows go one by one, and those each row's check takes are still taken."""
    texts = AWARE + ([] if odd is None else [odd]) + AWARE
    times = [_at(text) for text in texts]
    nexts, lasts = (
        (times, [None] * len(times)) if column == "next" else ([_at(AWARE[0])] * len(times), times)
    )
    outcomes = [None] * len(times)
    rows = list(map(_resume._row_usable, nexts, lasts, outcomes))
    assert all(rows) is row_usable
    if _resume._usable(nexts, lasts, outcomes):
        assert all(rows)
    assert _resume._usable(nexts, lasts, outcomes) is (odd is None)


def test_outcomes_come_as_their_codes_and_anything_else_stays_to_be_refused() -> None:
    codes = [0, None, 4, 1]
    assert _resume._outcomes(codes) == ["completed", None, "interrupted", "failed"]
    odd = _resume._outcomes([0, "exploded", 9, True])
    assert odd == ["completed", "exploded", 9, True]
    assert not _resume._usable([_at(AWARE[0])] * 4, [None] * 4, odd)


async def test_a_job_replaced_before_start_by_the_same_definition_is_scheduled() -> None:
    """It used to be carried over with the schedule it did not have yet (no fire time),
    and so removed at start as exhausted."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(clock=VirtualClock(RESTART))
    scheduler.add_job(_noop, "cron", minute="15", id="cron")
    scheduler.add_job(_noop, "cron", minute="15", id="cron", replace_existing=True)
    async with scheduler:
        assert scheduler.get_job("cron").next_fire_time == EPOCH + timedelta(hours=2, minutes=15)


async def test_a_version_1_file_is_migrated_by_a_start(tmp_path: Path) -> None:
    """The bulk read opens the file as the checked one does: version 1 migrated."""
    path = tmp_path / "jobs.sqlite"
    shutil.copyfile(Path(__file__).parent / "data" / "state_v1.sqlite", path)
    scheduler = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    scheduler.add_job(_noop, "interval", hours=1, id="hourly")
    async with scheduler:
        assert scheduler.get_job("hourly").next_fire_time is not None
    listed, version = read_state_file_version(path)
    assert version == _sqliterows.FORMAT_VERSION
    assert set(listed) == {"hourly", "berlin", "claimed", "done"}


@pytest.mark.parametrize("enabled", [True, False], ids=["collector-on", "collector-off"])
async def test_the_bulk_take_up_runs_with_the_collector_off_and_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """Off during the bulk take-up (see _resume: its young collections traversed the
    columns and the heap whole), and as it was before once the scheduler runs."""
    path = tmp_path / "jobs.sqlite"
    saved = await _saved_file(path)
    seen: list[bool] = []
    original = _resume._resume

    def spying(*args: Any) -> tuple[int, list[object]]:
        seen.append(gc.isenabled())
        return original(*args)

    monkeypatch.setattr(_resume, "_resume", spying)
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    _add(restarted)
    if not enabled:
        gc.disable()
    try:
        async with restarted:
            assert gc.isenabled() is enabled
            entries = restarted.jobs._entries
            for job_id, state in saved.items():
                assert entries[job_id].next_fire == state.next_fire_time, job_id
    finally:
        gc.enable()
    assert seen == [False]


def test_a_failed_bulk_take_up_turns_the_collector_back_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing(*args: Any) -> tuple[int, list[object]]:
        assert not gc.isenabled()
        raise RuntimeError("take-up failed")

    monkeypatch.setattr(_resume, "_resume", failing)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="take-up failed"):
        _resume.resume_plain({}, _sqliterows.SavedColumns(), [], 0.0, Timeline(), StartNotes())
    assert gc.isenabled()


# -- what a start logs about its saved jobs -----------------------------------------------


async def test_a_start_names_the_first_jobs_due_while_stopped_then_counts_the_rest(
    tmp_path: Path, job_log: list[str]
) -> None:
    """A day later every saved fire time is past: 25 jobs, the first 10 named."""
    path = tmp_path / "jobs.sqlite"
    await _saved_file(path)
    job_log.clear()
    restarted = _scheduler(
        SQLiteJobStore(path, warn=False), VirtualClock(LATER + timedelta(days=1))
    )
    _add(restarted)
    async with restarted:
        await restarted.jobs.flush_state()
    named = [line for line in job_log if "while the scheduler was not running" in line]
    assert len(named) == MAX_NAMED + 1
    assert named[-1] == (
        f"{25 - MAX_NAMED} more jobs were due while the scheduler was not running "
        f"(the first {MAX_NAMED} are named above)"
    )
    assert all(line.startswith("Job ") for line in named[:-1])


async def test_a_start_names_the_first_jobs_whose_trigger_changed_then_counts_the_rest(
    tmp_path: Path, job_log: list[str]
) -> None:
    path = tmp_path / "jobs.sqlite"
    await _saved_file(path)
    job_log.clear()
    restarted = _scheduler(SQLiteJobStore(path, warn=False), VirtualClock(RESTART))
    for n in range(20):
        restarted.add_job(_noop, "interval", hours=2, id=f"plain-{n}")
    async with restarted:
        changed = [line for line in job_log if "changed since" in line]
        assert len(changed) == MAX_NAMED + 1
        assert changed[-1].startswith(f"{20 - MAX_NAMED} more jobs' triggers changed")
        # Once started, a job added with a changed definition is named, whatever came before.
        restarted.add_job(_noop, "cron", minute="45", id="cron")
        assert job_log[-2].startswith("Job cron: its trigger changed since the state was saved")
