"""Claims recorded by a time (state file version 3, ``claimed_before``): a pass writes
no row per claim, a crash still runs no fire time twice and reports every claim it may
have cut short, and a clean close leaves exact rows and no such time (see _claims).

Real time on both backends (``unit`` is 50 ms): the SQLite file is written by worker
threads, which a virtual clock would jump past (the close's bound, for one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from anyio.abc import TaskGroup
from jobtools import EPOCH, Recorder, StubEmitter, new_scheduler

from eventsched import EventType, JobStateError, SavedJob, SQLiteJobStore
from eventsched._jobs._claims import covered
from eventsched._jobs._entry import Entry
from eventsched._jobs._runs import Runs
from eventsched._jobs._sqliterows import CLAIMED_BEFORE, FORMAT_VERSION
from eventsched._jobs._sync import StoreSync
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio

JOBS = 4


class CountingStore(SQLiteJobStore):
    """The state file, counting the rows it writes and those that carry a claim."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, warn=False)
        self.rows = 0
        self.claim_rows = 0

    async def save(self, changes: Mapping[str, SavedJob | None]) -> frozenset[str]:
        self.rows += len(changes)
        self.claim_rows += sum(1 for s in changes.values() if s is not None and s.running)
        return await super().save(changes)


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    return meta


def _rows(path: Path) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT job_id, next_fire_time, running FROM jobs").fetchall()
    conn.close()
    return {job_id: (following, running) for job_id, following, running in rows}


def _times(events: list[Any], key: str = "fire_time") -> list[datetime]:
    if key == "fire_time":
        return [datetime.fromisoformat(e.data[key]) for e in events]
    return [datetime.fromisoformat(at) for e in events for at in e.data[key]]


async def _process(
    path: Path, clock: VirtualClock, unit: float, runs_each: int
) -> tuple[Recorder, CountingStore, VirtualClock]:
    """A scheduler on the state file with JOBS jobs every ``unit``, stopped (by its
    ``async with``) once each has started ``runs_each`` runs."""
    store = CountingStore(path)
    scheduler = new_scheduler(clock)
    scheduler.configure_jobs(store=store)
    recorder = Recorder(scheduler)

    async def job() -> None:
        return None

    for n in range(JOBS):
        scheduler.add_job(job, "interval", seconds=unit, id=f"tick{n}", start_date=EPOCH)
    ids = [f"tick{n}" for n in range(JOBS)]
    async with scheduler:
        await recorder.wait_for(
            lambda: all(len(recorder.of(EventType.JOB_STARTED, i)) >= runs_each for i in ids),
            limit=200 * unit,
        )
    return recorder, store, clock


async def test_claims_write_no_row_each_and_a_crash_runs_nothing_twice(
    tmp_path: Path, unit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jobs.sqlite"

    async def crash(self: StoreSync) -> None:  # the process ends: nothing more saved
        await self.store.close()

    with monkeypatch.context() as patch:
        patch.setattr(StoreSync, "close", crash)
        first, store, clock = await _process(path, VirtualClock(EPOCH), unit, 20)
    started = {i: _times(first.of(EventType.JOB_STARTED, f"tick{i}")) for i in range(JOBS)}
    runs = sum(map(len, started.values()))
    # A row per pass that claimed the job was the old way (~runs / 3 here: a pass claims
    # a job's next 0.2 s). Now only a first claim made before the start's new row was in
    # writes one, and the writer's round that the start asked for (one more round, on a
    # machine so slow that this test's second outlasts SAVE_DELAY).
    assert runs >= JOBS * 20
    assert store.claim_rows <= 3 * JOBS, (store.claim_rows, runs)
    assert CLAIMED_BEFORE in _meta(path)  # the crash left it

    second, store, _ = await _process(path, VirtualClock(clock.now()), unit, 3)
    for i in range(JOBS):
        job_id = f"tick{i}"
        again = _times(second.of(EventType.JOB_STARTED, job_id))
        missed = second.of(EventType.JOB_MISSED, job_id)
        interrupted = _times([e for e in missed if e.data["reason"] == "interrupted"], "fire_times")
        others = _times([e for e in missed if e.data["reason"] != "interrupted"], "fire_times")
        # At most once: nothing started or reported cut short runs again.
        assert not set(again) & (set(started[i]) | set(interrupted)), job_id
        # Reported cut short: only fire times the first process claimed (it started
        # them, or claimed them ahead, within its lead after the last it started).
        last = max(started[i])
        assert all(at in started[i] or at > last for at in interrupted), job_id
        assert max(interrupted, default=last) <= last + timedelta(seconds=2 * unit + 0.25)
        # Every fire time accounted for, none lost between the two processes: those
        # not seen are reported interrupted beyond the ones the events list.
        seen = set(started[i]) | set(interrupted) | set(others) | set(again)
        step = timedelta(seconds=unit)
        expected = {EPOCH + k * step for k in range(round((max(again) - EPOCH) / step) + 1)}
        assert seen <= expected, job_id
        unlisted = sum(e.data["count"] for e in missed) - len(interrupted) - len(others)
        assert len(expected - seen) <= unlisted, job_id
        assert all(at > max(interrupted) for at in expected - seen), job_id
    # The second closed cleanly: exact rows, no time left.
    assert CLAIMED_BEFORE not in _meta(path)
    for i in range(JOBS):
        following, running = _rows(path)[f"tick{i}"]
        assert running is None
        assert datetime.fromisoformat(following) > max(
            _times(second.of(EventType.JOB_STARTED, f"tick{i}"))
        )


_NEXT = EPOCH + timedelta(seconds=2)


def _entry(
    job_id: str, *, jitter: float | None = None, following: datetime | None = _NEXT
) -> Entry:
    return cast(
        Entry,
        SimpleNamespace(
            id=job_id, jitter=jitter, fingerprint="f", paused=False, next_fire=following
        ),
    )


def test_only_claims_before_the_time_of_jobs_with_their_row_go_by_it() -> None:
    at = EPOCH
    before = at + timedelta(seconds=1)
    soon = before + timedelta(seconds=5)
    rows = dict.fromkeys(("a", "b", "c", "d", "e", "h", "i"), ("f", False))
    rows["f"] = ("other", False)  # the row of another definition
    a, b, d, f, g = (_entry(x) for x in "abdfg")
    c = _entry("c", jitter=0.5)  # its fire times are not its trigger's
    h = _entry("h", following=soon + timedelta(seconds=1))  # fires again after SAVE_DELAY
    i = _entry("i", following=None)  # fires no more (a date)
    starts = [(a, at), (b, at), (b, before), (c, at), (d, at), (f, at), (g, at), (h, at), (i, at)]
    # b: one claim at the time itself; g: no row yet; e: not claimed.
    assert covered(starts, before, soon, rows) == ["a", "d"]
    assert covered([(a, at), (d, at)], before, soon, rows) == ["a", "d"]
    assert covered([], before, soon, rows) == []


def _written(path: Path) -> None:
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    store.save_now({"j": SavedJob("f", None, EPOCH)})
    store.close_now()


def test_a_version_2_file_becomes_version_3_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    _written(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
    conn.close()
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    assert store.load_now() == {"j": SavedJob("f", None, EPOCH)}
    assert store.claimed_before is None
    store.close_now()
    assert _meta(path)["version"] == str(FORMAT_VERSION) == "3"


def test_the_time_is_written_with_a_save_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    _written(path)
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    store.claimed_before = EPOCH + timedelta(seconds=3)
    store.save_now({})
    store.close_now()
    assert _meta(path)[CLAIMED_BEFORE] == (EPOCH + timedelta(seconds=3)).isoformat()
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    store.load_now()
    assert store.claimed_before == EPOCH + timedelta(seconds=3)
    store.claimed_before = None
    store.save_now({})
    store.close_now()
    assert CLAIMED_BEFORE not in _meta(path)


@pytest.mark.parametrize("value", ["soon", "2026-01-01T00:00:00", "9" * 300])
def test_a_malformed_time_refuses_the_file_in_one_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "jobs.sqlite"
    _written(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO meta VALUES (?, ?)", (CLAIMED_BEFORE, value))
    conn.close()
    store = SQLiteJobStore(path, warn=False)
    store.lock_now()
    with pytest.raises(JobStateError) as caught:
        store.load_now()
    store.close_now()
    message = str(caught.value)
    assert "\n" not in message
    assert CLAIMED_BEFORE in message
    assert len(message) < 200


async def test_a_start_takes_a_stale_row_as_claimed_up_to_the_time(
    tmp_path: Path, unit: float
) -> None:
    """A file as a crash leaves it: a row whose next fire time is three fire times before
    ``claimed_before``. Those three are reported interrupted, none runs, and the schedule
    goes on from the time."""
    path = tmp_path / "jobs.sqlite"
    step = timedelta(seconds=4 * unit)  # (room for a start under load: 0.2 s)

    async def job() -> None:
        return None

    first = new_scheduler(VirtualClock(EPOCH))
    first.configure_jobs(state_file=str(path))
    first.add_job(job, "interval", seconds=4 * unit, id="tick", start_date=EPOCH + step)
    async with first:  # its row: next fire time EPOCH + step; closed before then
        await first.jobs.flush_state()
    assert _rows(path)["tick"] == ((EPOCH + step).isoformat(), None)
    with sqlite3.connect(path) as conn:  # then claims up to 3.5 steps, and a crash
        conn.execute(
            "INSERT INTO meta VALUES (?, ?)", (CLAIMED_BEFORE, (EPOCH + 3.5 * step).isoformat())
        )
    conn.close()

    restarted = new_scheduler(VirtualClock(EPOCH + 3.6 * step))
    restarted.configure_jobs(state_file=str(path))
    recorder = Recorder(restarted)
    restarted.add_job(job, "interval", seconds=4 * unit, id="tick", start_date=EPOCH + step)
    async with restarted:
        started = await recorder.wait_count(EventType.JOB_STARTED, 2, limit=80 * unit)
    missed = recorder.of(EventType.JOB_MISSED, "tick")
    interrupted = [e for e in missed if e.data["reason"] == "interrupted"]
    assert [list(e.data["fire_times"]) for e in interrupted] == [
        [(EPOCH + k * step).isoformat() for k in (1, 2, 3)]
    ]
    # The schedule goes on from the time: 4 steps on, each fire time run (or, on a
    # machine slow enough to start late, reported: never lost).
    ran = _times(started)
    others = _times([e for e in missed if e not in interrupted], "fire_times")
    assert min(ran + others) == EPOCH + 4 * step
    assert sorted(ran + others) == [EPOCH + k * step for k in range(4, 4 + len(ran + others))]


def test_runs_are_released_ahead_only_while_few_wait_in_lanes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The releaser hands every held run up to ``until`` to a lane, and those up to
    ``ahead`` only while fewer than ``most`` wait there: unbounded, at 20,000 runs a
    second more waited than lanes are kept idle, and lanes churned (p99 6-7x)."""
    runs = Runs(StubEmitter(), VirtualClock, lambda: True, lambda job, at: None)
    handed: list[datetime] = []
    monkeypatch.setattr(runs, "_submit", lambda group, job, at: handed.append(at))
    job = _entry("j")
    step = timedelta(milliseconds=1)
    for k in range(100):
        runs.held.push(job, EPOCH + k * step)
    runs.waiting = 100 + 30  # the 100 held, and 30 already waiting in lanes
    group = cast(TaskGroup, None)
    runs.release(group, EPOCH + 9 * step, EPOCH + 99 * step, 50)
    # The first 10 whatever the bound; then, with 30 + 10 waiting in lanes, 10 more.
    assert handed == [EPOCH + k * step for k in range(len(handed))]
    assert len(handed) == 10 + (50 - (130 - 90))
    assert len(runs.held) == 100 - len(handed)
