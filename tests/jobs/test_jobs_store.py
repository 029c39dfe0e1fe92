"""Persistent job state: schedules survive a restart, including ``kill -9``.

These run in real time on both backends: the state file is written from a worker
thread, which a trio mock clock would jump over. The clocks are ``VirtualClock``s on
the real loop, so that "three and a half hours later" needs no waiting.
"""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import stat
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from jobtools import EPOCH, json_events, run_child

from eventsched import Event, EventScheduler, EventType, JobStateError, MissReason
from eventsched.testing import VirtualClock

LATER = EPOCH + timedelta(hours=3, minutes=30)
pytestmark = pytest.mark.anyio


async def _noop() -> str:
    return "ok"


def hourly(state_file: Path, clock: VirtualClock, *, coalesce: bool) -> EventScheduler:
    """The same job definition in every "process": hourly from EPOCH, id 'tick'."""
    scheduler = EventScheduler()
    scheduler.configure_jobs(state_file=state_file, clock=clock)
    scheduler.add_job(_noop, "interval", hours=1, start_date=EPOCH, id="tick", coalesce=coalesce)
    return scheduler


async def run_until(scheduler: EventScheduler, event_type: str, limit: float = 10) -> list[Event]:
    """Run the scheduler until an event of ``event_type`` is handled; return all events."""
    seen: list[Event] = []
    arrived = anyio.Event()

    @scheduler.on("*")
    async def record(event: Event) -> None:
        seen.append(event)
        if event.type == event_type:
            arrived.set()

    async with scheduler:
        with anyio.fail_after(limit):
            await arrived.wait()
    return seen


def hours(*n: int) -> list[str]:
    return [(EPOCH + timedelta(hours=h)).isoformat() for h in n]


@pytest.mark.parametrize("coalesce", [False, True], ids=["misfire", "coalesce"])
async def test_restart_picks_up_the_saved_schedule(tmp_path: Path, coalesce: bool) -> None:
    """After a restart the runs missed meanwhile are reported, or coalesced into one."""
    state_file = tmp_path / "jobs.sqlite"
    first = await run_until(
        hourly(state_file, VirtualClock(EPOCH), coalesce=coalesce), EventType.JOB_COMPLETED
    )
    assert [e.data["fire_time"] for e in first if e.type == EventType.JOB_COMPLETED] == hours(0)

    restarted = hourly(state_file, VirtualClock(LATER), coalesce=coalesce)
    events = await run_until(restarted, EventType.JOB_MISSED)
    (missed,) = [e.data for e in events if e.type == EventType.JOB_MISSED]
    if coalesce:
        assert missed["reason"] == MissReason.COALESCED
        assert list(missed["fire_times"]) == hours(1, 2)
        started = [e.data["fire_time"] for e in events if e.type == EventType.JOB_STARTED]
        assert started == hours(3)
    else:
        assert missed["reason"] == MissReason.MISFIRE
        assert list(missed["fire_times"]) == hours(1, 2, 3)
        assert [e for e in events if e.type == EventType.JOB_STARTED] == []
    (job,) = restarted.get_jobs()
    assert job.next_fire_time == EPOCH + timedelta(hours=4)
    assert job.last_fire_time == EPOCH + timedelta(hours=3)


async def test_changed_trigger_starts_afresh(tmp_path: Path) -> None:
    """A job whose trigger changed does not inherit the saved fire times."""
    state_file = tmp_path / "jobs.sqlite"
    await run_until(
        hourly(state_file, VirtualClock(EPOCH), coalesce=False), EventType.JOB_COMPLETED
    )
    scheduler = EventScheduler()
    scheduler.configure_jobs(state_file=state_file, clock=VirtualClock(LATER))
    scheduler.add_job(_noop, "interval", hours=2, start_date=EPOCH, id="tick")
    async with scheduler:
        (job,) = scheduler.get_jobs()
    assert job.next_fire_time == EPOCH + timedelta(hours=4)
    assert scheduler.job_statistics().missed_total == 0


async def test_a_changed_end_date_starts_afresh(tmp_path: Path) -> None:
    """start and end dates are part of the schedule: a job whose end_date ran out and
    is then lifted runs again, instead of keeping the finished schedule it saved."""
    state_file = tmp_path / "jobs.sqlite"
    ended = EventScheduler()
    ended.configure_jobs(state_file=state_file, clock=VirtualClock(EPOCH))
    ended.add_job(
        _noop,
        "interval",
        hours=1,
        start_date=EPOCH,
        end_date=EPOCH + timedelta(minutes=30),
        id="tick",
    )
    await run_until(ended, EventType.JOB_COMPLETED)
    restarted = EventScheduler()
    restarted.configure_jobs(state_file=state_file, clock=VirtualClock(LATER))
    restarted.add_job(_noop, "interval", hours=1, start_date=EPOCH, id="tick")
    async with restarted:
        (job,) = restarted.get_jobs()
    assert job.next_fire_time == EPOCH + timedelta(hours=4)


async def test_a_saved_time_out_of_range_is_a_clear_error(tmp_path: Path) -> None:
    """A fire time that cannot be moved to UTC is refused as a bad state file."""
    state_file = tmp_path / "jobs.sqlite"
    await run_until(hourly(state_file, VirtualClock(EPOCH), coalesce=True), EventType.JOB_COMPLETED)
    with sqlite3.connect(state_file) as conn:
        conn.execute(
            "UPDATE jobs SET next_fire_time = '0001-01-01T00:00:00+05:00' WHERE job_id = 'tick'"
        )
    conn.close()
    scheduler = hourly(state_file, VirtualClock(LATER), coalesce=True)
    expected = pytest.RaisesExc(JobStateError, match="out of range")
    with pytest.RaisesGroup(expected, allow_unwrapped=True):
        async with scheduler:
            pass


async def test_state_file_is_created_private(tmp_path: Path) -> None:
    """The state file is created with mode 0600 and holds text, not pickles."""
    state_file = tmp_path / "jobs.sqlite"
    await run_until(hourly(state_file, VirtualClock(EPOCH), coalesce=True), EventType.JOB_COMPLETED)
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    with sqlite3.connect(state_file) as conn:
        (following, last) = conn.execute(
            "SELECT next_fire_time, last_fire_time FROM jobs WHERE job_id = 'tick'"
        ).fetchone()
    conn.close()
    assert following == hours(1)[0]
    assert last == hours(0)[0]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    conn.close()


def _pickled_state(path: Path, marker: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("format", "eventsched-job-state"), ("version", "1")]
        )
        conn.execute("INSERT INTO jobs VALUES ('tick', ?)", (pickle.dumps(_Exploit(marker)),))
    conn.close()


@pytest.mark.parametrize("kind", ["garbage", "pickle_file", "foreign_sqlite", "pickled_row"])
async def test_corrupt_or_foreign_state_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A state file that is not ours raises JobStateError naming it; nothing runs."""
    # A relative path, as a user gives it: a long temporary directory would be cut
    # in the message (as it should be) and no longer match in full.
    monkeypatch.chdir(tmp_path)
    state_file = tmp_path / "jobs.sqlite"
    given = Path(state_file.name)
    marker = tmp_path / "exploited"
    if kind == "garbage":
        state_file.write_bytes(b"\x00\xffnot a database at all" * 100)
    elif kind == "pickle_file":
        state_file.write_bytes(pickle.dumps(_Exploit(marker)))
    elif kind == "foreign_sqlite":
        _foreign_sqlite(state_file)
    else:
        _pickled_state(state_file, marker)
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    scheduler = EventScheduler()
    scheduler.configure_jobs(state_file=given, clock=VirtualClock(EPOCH))
    scheduler.add_job(job, "date", id="tick")
    # The core's start-up wraps a service's failure in an ExceptionGroup: accept both.
    expected = pytest.RaisesExc(JobStateError, match=repr(str(given)))
    with pytest.RaisesGroup(expected, allow_unwrapped=True):
        async with scheduler:
            pass
    assert ran == []
    assert not marker.exists()


# -- kill -9 ----------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timedelta
    import anyio
    from eventsched import EventScheduler, EventType
    from eventsched.testing import VirtualClock

    state_file, phase, coalesce, backend, epoch = sys.argv[1:6]
    coalesce = coalesce == "1"
    EPOCH = datetime.fromisoformat(epoch)

    def tick():  # a sync job, in a worker thread
        return "tick"

    async def main():
        now = EPOCH if phase == "first" else EPOCH + timedelta(hours=3, minutes=30)
        s = EventScheduler()
        s.configure_jobs(state_file=state_file, clock=VirtualClock(now))
        s.add_job(tick, "interval", hours=1, start_date=EPOCH, id="tick", coalesce=coalesce)
        done = anyio.Event()
        until = EventType.JOB_COMPLETED if coalesce else EventType.JOB_MISSED

        @s.on("*")
        async def show(event):
            if str(event.type).startswith("job_"):
                print(json.dumps({"type": str(event.type), "data": event.data}), flush=True)
            if phase == "first" and event.type == EventType.JOB_COMPLETED:
                await s.jobs.flush_state()
                print("FLUSHED", flush=True)
            elif phase == "restart" and event.type == until:
                done.set()

        async with s:
            with anyio.fail_after(30):
                if phase == "first":
                    await anyio.sleep_forever()  # until killed
                await done.wait()
        print("NEXT", s.jobs.statistics().missed_total, flush=True)

    anyio.run(main, backend=backend)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("coalesce", [False, True], ids=["misfire", "coalesce"])
async def test_schedule_survives_kill_9(
    tmp_path: Path, anyio_backend: tuple[str, dict[str, Any]], coalesce: bool
) -> None:
    """A process killed with SIGKILL, restarted later, reports or coalesces missed runs."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    state_file = tmp_path / "jobs.sqlite"
    args = [str(state_file), "first", "1" if coalesce else "0", anyio_backend[0], EPOCH.isoformat()]

    lines, code = await run_child([str(script), *args], until="FLUSHED", kill=True)
    assert code == -signal.SIGKILL
    completed = [e for e in json_events(lines) if e["type"] == "job_completed"]
    assert [e["data"]["fire_time"] for e in completed] == hours(0)

    args[1] = "restart"
    lines, code = await run_child([str(script), *args], until="NEXT", kill=False)
    assert code == 0, lines
    events = json_events(lines)
    (missed,) = [e["data"] for e in events if e["type"] == "job_missed"]
    started = [e["data"]["fire_time"] for e in events if e["type"] == "job_started"]
    if coalesce:
        assert (missed["reason"], missed["fire_times"]) == ("coalesced", hours(1, 2))
        assert started == hours(3)
    else:
        assert (missed["reason"], missed["fire_times"]) == ("misfire", hours(1, 2, 3))
        assert started == []
    assert datetime.fromisoformat(missed["detected_at"]) >= EPOCH + timedelta(hours=3.5)


def test_saved_job_built_through_its_slots_is_a_plain_saved_job() -> None:
    """The scheduler's cheaper constructor (``saved_job``) makes the same object as
    ``SavedJob(...)``: equal, same hash and repr, still frozen, every field set."""
    import dataclasses
    from datetime import UTC, datetime

    from eventsched import SavedJob
    from eventsched._jobs._store import saved_job

    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    fields = ("interval[0:00:01]", at, at.replace(hour=10), (at,), True, "failed")
    fast, plain = saved_job(*fields), SavedJob(*fields)
    assert type(fast) is SavedJob
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert repr(fast) == repr(plain)
    assert dataclasses.astuple(fast) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.paused = False  # type: ignore[misc]
