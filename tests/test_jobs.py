"""Scheduled jobs: triggers, misfire policy, tracing, lifecycle and virtual time.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from apscheduler.triggers.date import DateTrigger

import eventsched
import eventsched.testing
from conftest import VIRTUAL_TIME
from eventsched import (
    ConflictingIdError,
    Event,
    EventScheduler,
    EventType,
    JobLookupError,
    JobScheduler,
    MissReason,
    SchedulerState,
)
from eventsched._jobs import summarize_result
from eventsched.testing import DEFAULT_EPOCH, VirtualClock, assert_accounted

EPOCH = DEFAULT_EPOCH
virtual_time = pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)
pytestmark = pytest.mark.anyio


def is_virtual(anyio_backend: tuple[str, dict[str, Any]]) -> bool:
    return "clock" in anyio_backend[1]


@pytest.fixture
def unit(anyio_backend: tuple[str, dict[str, Any]]) -> float:
    return 1.0 if is_virtual(anyio_backend) else 0.05


class Recorder:
    """Every event a scheduler handles, with a bounded wait for a condition on them."""

    def __init__(self, scheduler: EventScheduler) -> None:
        self.events: list[Event] = []
        self._changed: anyio.Event | None = None
        scheduler.on("*", self._record)

    async def _record(self, event: Event) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    def of(self, event_type: str, job_id: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.type == event_type and (job_id is None or e.data.get("job_id") == job_id)
        ]

    async def wait_for(self, condition: Callable[[], bool], limit: float) -> None:
        with anyio.fail_after(limit):
            while True:
                changed = self._changed = anyio.Event()
                if condition():
                    return
                await changed.wait()

    async def wait_count(
        self, event_type: str, count: int, limit: float, job_id: str | None = None
    ) -> list[Event]:
        await self.wait_for(lambda: len(self.of(event_type, job_id)) >= count, limit)
        return self.of(event_type, job_id)


def fire_times(events: list[Event]) -> list[datetime]:
    return [datetime.fromisoformat(e.data["fire_time"]) for e in events]


def new_scheduler(clock: VirtualClock | None = None, **options: Any) -> EventScheduler:
    scheduler = EventScheduler(**options)
    scheduler.configure_jobs(clock=clock or VirtualClock())
    return scheduler


def close_to(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) < 1e-5


# -- triggers -------------------------------------------------------------------------


@virtual_time
async def test_interval_job_fires_once_per_interval(
    anyio_backend: tuple[str, dict[str, Any]], unit: float
) -> None:
    """An interval job fires one interval after start, then every interval, in order."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    ran_at: list[datetime] = []

    async def tick() -> int:
        ran_at.append(clock.now())
        return len(ran_at)

    scheduler.add_job(tick, "interval", seconds=unit, id="tick")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 5, limit=40 * unit)
    expected = [EPOCH + timedelta(seconds=k * unit) for k in range(1, 6)]
    assert all(map(close_to, fire_times(done[:5]), expected))
    assert [e.data["result"] for e in done[:5]] == ["1", "2", "3", "4", "5"]
    for at, due in zip(ran_at, expected, strict=False):
        lateness = (at - due).total_seconds()
        assert lateness >= -1e-3
        if is_virtual(anyio_backend):
            assert lateness < 1e-5
    for started, completed in zip(recorder.of(EventType.JOB_STARTED), done, strict=False):
        assert started.correlation_id == completed.correlation_id
        assert recorder.events.index(started) < recorder.events.index(completed)


@pytest.mark.parametrize(
    "anyio_backend", [p for p in VIRTUAL_TIME if p.id == "trio-virtual"], indirect=True
)
async def test_crontab_every_minute_over_a_simulated_day_runs_1440_times() -> None:
    """A crontab job every minute over a virtual day runs exactly 1440 times, fast."""
    real_start = time.perf_counter()
    scheduler = new_scheduler()
    scheduler.add_job(_async_noop, "cron", crontab="* * * * *", id="minutely")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(24 * 3600 - 30)
    elapsed = time.perf_counter() - real_start
    times = fire_times(recorder.of(EventType.JOB_COMPLETED, "minutely"))
    assert times == [EPOCH + timedelta(minutes=m) for m in range(1440)]
    assert scheduler.job_statistics().runs_completed == 1440
    assert scheduler.statistics().unaccounted == 0
    assert elapsed < 3.0, f"a simulated day took {elapsed:.2f}s of real time"


async def _async_noop() -> None:
    pass


@virtual_time
async def test_cron_job_fires_on_whole_seconds(unit: float) -> None:
    """A cron job with second='*' fires exactly on each whole second."""
    scheduler = new_scheduler(VirtualClock(EPOCH - timedelta(seconds=0.05)))
    scheduler.add_job(_async_noop, "cron", second="*", id="each_second")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=5)
    assert fire_times(done[:2]) == [EPOCH, EPOCH + timedelta(seconds=1)]


@virtual_time
async def test_date_job_runs_once_then_leaves_the_schedule(unit: float) -> None:
    """A date job runs once at its run date and is then no longer scheduled."""
    scheduler = new_scheduler()
    run_date = EPOCH + timedelta(seconds=3 * unit)
    scheduler.add_job(_async_noop, "date", run_date=run_date, id="once")
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
        assert scheduler.get_jobs() == []
        await anyio.sleep(3 * unit)  # time passes: nothing more may happen
    assert fire_times(done) == [run_date]
    assert len(recorder.of(EventType.JOB_STARTED)) == 1


@virtual_time
async def test_job_added_while_running_wakes_the_scheduler(unit: float) -> None:
    """A job added while the scheduler sleeps until a far fire time runs on time."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(_async_noop, "interval", hours=5, id="far")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(unit)
        run_date = clock.now() + timedelta(seconds=2 * unit)
        scheduler.add_job(_async_noop, "date", run_date=run_date, id="soon")
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
    assert done[0].data["job_id"] == "soon"
    assert fire_times(done) == [run_date]


# -- misfire, coalesce, max_instances ---------------------------------------------------


@virtual_time
async def test_run_date_past_grace_is_reported_missed_or_coalesced(unit: float) -> None:
    """A late fire time beyond grace is JOB_MISSED (misfire), or runs once with coalesce."""
    scheduler = new_scheduler()
    past = EPOCH - timedelta(seconds=10)
    scheduler.add_job(
        _async_noop, DateTrigger(past), id="strict", coalesce=False, misfire_grace_time=1
    )
    scheduler.add_job(_async_noop, DateTrigger(past), id="lenient", coalesce=True)
    recorder = Recorder(scheduler)
    async with scheduler:
        missed = await recorder.wait_count(EventType.JOB_MISSED, 1, 30 * unit, "strict")
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, 30 * unit, "lenient")
    assert missed[0].data["reason"] == MissReason.MISFIRE
    assert missed[0].data["count"] == 1
    assert list(missed[0].data["fire_times"]) == [past.isoformat()]
    assert missed[0].data["misfire_grace_time"] == 1
    assert recorder.of(EventType.JOB_STARTED, "strict") == []
    assert recorder.of(EventType.JOB_MISSED, "lenient") == []
    stats = scheduler.job_statistics()
    assert stats.missed == {"misfire": 1, "coalesced": 0, "max_instances": 0}
    assert stats.runs_completed == 1


@virtual_time
@pytest.mark.parametrize("coalesce", [False, True], ids=["misfire", "coalesce"])
async def test_wall_clock_jump_reports_every_missed_fire_time(unit: float, coalesce: bool) -> None:
    """After the wall clock jumps 10 intervals, the missed fire times are all reported."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(
        _async_noop,
        "interval",
        seconds=unit,
        id="tick",
        coalesce=coalesce,
        misfire_grace_time=unit / 2,
    )
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=30 * unit)
        clock.advance(10 * unit)  # as if the machine had slept
        missed = await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit)
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
    expected = [EPOCH + timedelta(seconds=k * unit) for k in range(2, 12)]
    report = missed[0].data
    assert report["reason"] == (MissReason.COALESCED if coalesce else MissReason.MISFIRE)
    assert report["count"] == 10
    assert all(map(close_to, map(datetime.fromisoformat, report["fire_times"]), expected))
    # Either way the latest fire time (12 intervals in, on time) runs exactly once.
    assert close_to(fire_times(done)[1], EPOCH + timedelta(seconds=12 * unit))
    reason = "coalesced" if coalesce else "misfire"
    assert scheduler.job_statistics().missed[reason] == 10


@virtual_time
async def test_max_instances_skips_are_reported(unit: float) -> None:
    """A fire time while max_instances runs are going is skipped as JOB_MISSED."""
    scheduler = new_scheduler()
    release = anyio.Event()

    async def slow() -> None:
        await release.wait()

    scheduler.add_job(slow, "interval", seconds=unit, id="slow", max_instances=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        missed = await recorder.wait_count(EventType.JOB_MISSED, 2, limit=30 * unit)
        assert scheduler.get_job("slow").running == 1
        release.set()
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
    first = missed[0].data
    assert first["reason"] == MissReason.MAX_INSTANCES
    assert (first["running"], first["max_instances"], first["count"]) == (1, 1, 1)
    started = fire_times(recorder.of(EventType.JOB_STARTED))
    skipped = [datetime.fromisoformat(e.data["fire_times"][0]) for e in missed[:2]]
    assert set(started).isdisjoint(skipped)
    assert scheduler.job_statistics().missed["max_instances"] >= 2


# -- failures and timeouts ----------------------------------------------------------------


@virtual_time
async def test_failing_job_keeps_its_schedule_and_is_counted(unit: float) -> None:
    """A job that raises is reported as JOB_FAILED each time and keeps firing."""
    scheduler = new_scheduler()

    async def broken() -> None:
        raise ValueError("bad {0} input\nsecond line")

    scheduler.add_job(broken, "interval", seconds=unit, id="broken")
    recorder = Recorder(scheduler)
    async with scheduler:
        failed = await recorder.wait_count(EventType.JOB_FAILED, 3, limit=30 * unit)
        assert scheduler.get_job("broken").failures >= 3
    data = failed[0].data
    assert (data["reason"], data["error_type"]) == ("exception", "ValueError")
    assert data["error"] == "bad {0} input\\nsecond line"
    assert len(set(fire_times(failed))) == len(failed)
    stats = scheduler.job_statistics()
    assert stats.runs_failed == len(recorder.of(EventType.JOB_FAILED))
    assert stats.runs_completed == 0


@virtual_time
async def test_timed_out_job_is_cancelled_and_reported_as_timeout(unit: float) -> None:
    """A run past its timeout is cancelled and reported as JOB_FAILED, reason timeout."""
    scheduler = new_scheduler()
    cancelled = []

    async def hangs() -> None:
        try:
            await anyio.sleep(100 * unit)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    scheduler.add_job(hangs, "date", id="hangs", timeout=unit / 2)
    recorder = Recorder(scheduler)
    async with scheduler:
        failed = await recorder.wait_count(EventType.JOB_FAILED, 1, limit=30 * unit)
    data = failed[0].data
    assert (data["reason"], data["error_type"], data["timeout"]) == (
        "timeout",
        "TimeoutError",
        unit / 2,
    )
    assert unit / 2 <= data["duration"] < 50 * unit
    assert cancelled == [True]
    stats = scheduler.job_statistics()
    assert (stats.runs_failed, stats.runs_timed_out, stats.runs_aborted) == (1, 1, 0)


# -- tracing ----------------------------------------------------------------------------------


@virtual_time
async def test_correlation_id_is_on_every_event_a_run_causes(unit: float) -> None:
    """Each run has its own correlation id, carried by its events and handlers' events."""
    scheduler = new_scheduler()

    async def place_order() -> str:
        await scheduler.emit("order_placed", {"n": 1})
        return "placed"

    @scheduler.on("order_placed")
    async def ship(event: Event) -> None:
        await scheduler.emit("order_shipped", {"n": event.data["n"]})

    scheduler.add_job(place_order, "interval", seconds=unit, id="orders")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count("order_shipped", 2, limit=30 * unit)
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
    started = recorder.of(EventType.JOB_STARTED)[:2]
    assert started[0].correlation_id != started[1].correlation_id
    for run in started:
        chain = [e for e in recorder.events if e.correlation_id == run.correlation_id]
        assert [e.type for e in chain] == [
            EventType.JOB_STARTED,
            "order_placed",
            EventType.JOB_COMPLETED,
            "order_shipped",
        ] or sorted(map(str, (e.type for e in chain))) == sorted(
            ["job_started", "order_placed", "job_completed", "order_shipped"]
        )
        placed = next(e for e in chain if e.type == "order_placed")
        shipped = next(e for e in chain if e.type == "order_shipped")
        assert placed.causation_id == run.id
        assert shipped.causation_id == placed.id


async def test_sync_job_runs_in_a_worker_thread_with_the_runs_correlation() -> None:
    """A sync job runs in a worker thread; what it emits carries its run's correlation."""
    import threading

    scheduler = new_scheduler()
    threads: list[int] = []

    def work(x: int, *, y: int) -> dict[str, int]:
        threads.append(threading.get_ident())
        scheduler.emit_nowait("from_thread", {"sum": x + y})
        return {"sum": x + y}

    scheduler.add_job(work, "date", id="work", args=(1,), kwargs={"y": 2})
    recorder = Recorder(scheduler)
    async with scheduler:
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=10)
        await recorder.wait_count("from_thread", 1, limit=10)
    assert threads != [threading.get_ident()]
    emitted = recorder.of("from_thread")[0]
    assert emitted.correlation_id == done[0].correlation_id
    assert emitted.data["sum"] == 3
    assert done[0].data["result"] == "<dict of 1 item(s)>"


# -- changing the schedule while running ------------------------------------------------------


@virtual_time
async def test_pause_resume_and_remove_while_running(unit: float) -> None:
    """A paused job does not fire, a resumed one fires again, a removed one never more."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock)
    scheduler.add_job(_async_noop, "interval", seconds=unit, id="tick")
    recorder = Recorder(scheduler)

    def runs() -> int:
        return len(recorder.of(EventType.JOB_STARTED))

    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 2, limit=30 * unit)
        paused = scheduler.pause_job("tick")
        assert (paused.paused, paused.next_fire_time) == (True, None)
        before, paused_at = runs(), clock.now()
        await anyio.sleep(5 * unit)  # the behaviour under test: nothing fires meanwhile
        assert runs() == before
        resumed = scheduler.resume_job("tick")
        assert resumed.next_fire_time is not None
        assert resumed.next_fire_time > paused_at
        await recorder.wait_count(EventType.JOB_STARTED, before + 1, limit=30 * unit)
        assert fire_times(recorder.of(EventType.JOB_STARTED))[-1] > paused_at
        scheduler.remove_job("tick")
        assert scheduler.get_jobs() == []
        after = runs()
        await anyio.sleep(5 * unit)
        assert runs() == after
        with pytest.raises(JobLookupError, match="'tick'"):
            scheduler.remove_job("tick")
    assert recorder.of(EventType.JOB_MISSED) == []


# -- shutdown -----------------------------------------------------------------------------------


@virtual_time
async def test_shutdown_lets_runs_finish_within_grace_then_aborts_the_rest(unit: float) -> None:
    """At shutdown no new runs start; runs finish within the grace period or are aborted."""
    clock = VirtualClock()
    scheduler = new_scheduler(clock, grace_period=4 * unit)

    async def quick() -> str:
        await anyio.sleep(unit)
        return "done"

    async def slow() -> None:
        await anyio.sleep(1000 * unit)

    scheduler.add_job(quick, "date", id="quick")
    scheduler.add_job(slow, "date", id="slow")
    scheduler.add_job(_async_noop, "interval", seconds=unit / 2, id="tick")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_STARTED, 2, limit=30 * unit)
        stopping_at = clock.now()
    assert [e.data["result"] for e in recorder.of(EventType.JOB_COMPLETED, "quick")] == ["'done'"]
    assert all(at <= stopping_at for at in fire_times(recorder.of(EventType.JOB_STARTED)))
    stats = scheduler.job_statistics()
    assert stats.runs_aborted == 1
    assert stats.running == 0
    assert stats.runs_started == stats.runs_completed + stats.runs_failed + stats.runs_aborted
    assert scheduler.statistics().unaccounted == 0
    assert recorder.of(EventType.JOB_COMPLETED, "slow") == []


# -- API --------------------------------------------------------------------------------------


async def test_duplicate_id_is_an_error_unless_replace_existing() -> None:
    """Adding a second job with the same id raises, unless replace_existing=True."""
    scheduler = EventScheduler()
    scheduler.add_job(_async_noop, "interval", seconds=10, id="demo_job")
    async with scheduler:
        with pytest.raises(ConflictingIdError, match="'demo_job'"):
            scheduler.add_job(_async_noop, "interval", seconds=20, id="demo_job")
        scheduler.add_job(_async_noop, "interval", seconds=20, id="demo_job", replace_existing=True)
        (job,) = scheduler.get_jobs()
        assert (job.id, job.trigger) == ("demo_job", "interval[0:00:20]")
        assert job.next_fire_time is not None


class StubEmitter:
    """Stands in for an EventScheduler where no event loop is needed."""

    max_event_bytes = 65536

    async def emit(self, event: Event) -> bool:
        raise AssertionError("not running")


def test_decorator_schedules_the_function_and_returns_it() -> None:
    """@scheduler.job(...) schedules the function under its qualified name, unchanged."""
    scheduler = JobScheduler(StubEmitter())

    @scheduler.job("cron", crontab="*/5 * * * *", timezone="Europe/Paris")
    async def report() -> None:
        pass

    (job,) = scheduler.get_jobs()
    assert job.id.endswith("test_decorator_schedules_the_function_and_returns_it.<locals>.report")
    assert "Europe/Paris" not in job.trigger  # the fields, the zone is in the fingerprint
    assert job.next_fire_time is None  # not started yet
    assert callable(report)


@pytest.mark.parametrize(
    ("trigger", "options", "error", "match"),
    [
        ("hourly", {}, ValueError, "'hourly' is not one of"),
        ("interval", {"minute": 5}, TypeError, r"unknown option\(s\) \['minute'\]"),
        ("cron", {"crontab": "* * * * *", "hour": 1}, ValueError, "cannot be combined"),
        ("cron", {"crontab": "* * *"}, ValueError, "Wrong number of fields"),
        (DateTrigger(EPOCH), {"seconds": 1}, TypeError, "trigger instance"),
        ("interval", {"seconds": 1, "max_instances": 0}, ValueError, "max_instances=0"),
        ("interval", {"seconds": 1, "timeout": -1}, ValueError, "timeout=-1"),
        ("interval", {"seconds": 1, "timezone": "Mars/Olympus"}, ValueError, "Mars/Olympus"),
        # APScheduler would make these one second, or spin on a negative one.
        ("interval", {"seconds": -1}, ValueError, "must be positive"),
        ("interval", {"seconds": 0}, ValueError, "must be positive"),
        ("interval", {"seconds": 1e-9}, ValueError, "must be positive"),
        ("interval", {"minutes": 1, "seconds": -60}, ValueError, "must be positive"),
        ("interval", {}, ValueError, "must be positive"),
        ("interval", {"seconds": float("inf")}, ValueError, r"\{'seconds': inf\}"),
        ("interval", {"seconds": "10"}, TypeError, r"seconds='10' must be a number"),
        ("cron", {"crontab": 5}, TypeError, "crontab=5 must be a string"),
    ],
)
def test_bad_job_arguments_are_clear_errors(
    trigger: Any, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Unknown triggers, options or values raise at add_job, naming what is wrong."""
    with pytest.raises(error, match=match) as raised:
        JobScheduler(StubEmitter()).add_job(_async_noop, trigger, id="x", **options)
    assert "1970" not in str(raised.value)  # the internal placeholder start_date


def test_the_job_decorator_without_parentheses_is_an_error() -> None:
    """``@scheduler.job`` with no trigger would schedule nothing and replace the function."""
    scheduler = EventScheduler()
    with pytest.raises(TypeError, match=r"@job needs a trigger.*no parentheses"):

        @scheduler.job  # type: ignore[arg-type]
        async def report() -> None:
            pass

    assert scheduler.get_jobs() == []


def test_summaries_of_return_values_are_short_and_safe() -> None:
    """Return values are summarised without calling custom __repr__, and cut short."""

    class Secret:
        def __repr__(self) -> str:
            raise AssertionError("must not be called")

    assert summarize_result(None) == "None"
    assert summarize_result(42) == "42"
    assert summarize_result("a\nb") == "'a\\nb'"
    assert len(summarize_result("x" * 1000)) == 100
    assert summarize_result([1, 2, 3]) == "<list of 3 item(s)>"
    assert summarize_result(Secret()).endswith(".<locals>.Secret>")


def test_virtual_clock_needs_an_aware_epoch() -> None:
    """A naive epoch is refused: trigger times are always timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2030, 1, 1))


def test_job_names_are_exported() -> None:
    """The job API is public from eventsched and eventsched.testing."""
    for name in ("JobScheduler", "Job", "JobStatistics", "MissReason", "JobStateError", "Clock"):
        assert name in eventsched.__all__
        assert hasattr(eventsched, name)
    for name in eventsched.testing.__all__:
        assert hasattr(eventsched.testing, name)


async def test_a_job_never_starts_before_its_fire_time_in_real_time() -> None:
    """On the real clocks (loop and wall), every run starts at or after its fire time."""
    scheduler = EventScheduler()
    starts: list[tuple[float, datetime]] = []
    done = anyio.Event()

    async def record() -> None:
        event = eventsched.current_event()
        assert event is not None
        starts.append((time.time(), datetime.fromisoformat(event.data["fire_time"])))
        if len(starts) == 5:
            done.set()

    scheduler.add_job(record, "interval", seconds=0.02, id="punctual")
    with anyio.fail_after(10):
        async with scheduler:
            await done.wait()
    for started, fire_time in starts:
        # Microsecond datetimes against float seconds: allow one microsecond.
        assert started >= fire_time.timestamp() - 1e-6, (started, fire_time)


async def test_a_huge_int_result_is_summarised_and_the_scheduler_goes_on() -> None:
    """A result past int's decimal limit is described by its size; the run completes."""
    scheduler = new_scheduler()

    async def huge() -> int:
        return 10**5000

    async def small() -> int:
        return 7

    scheduler.add_job(huge, "date", id="huge")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=10, job_id="huge")
        scheduler.add_job(small, "date", id="small")
        done = await recorder.wait_count(EventType.JOB_COMPLETED, 1, limit=10, job_id="small")
    assert recorder.of(EventType.JOB_COMPLETED, "huge")[0].data["result"] == "<int of 16610 bits>"
    assert done[0].data["result"] == "7"


def test_summaries_never_run_a_subclass_method() -> None:
    """IntEnum and str subclasses are shown by their base class's repr."""
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Loud(str):
        def __getitem__(self, index: object) -> str:
            raise AssertionError("must not be called")

    assert summarize_result(Level.HIGH) == "3"
    assert summarize_result(Loud("hi")) == "'hi'"
    assert summarize_result(True) == "True"


@virtual_time
async def test_a_stray_cancelled_error_in_a_job_is_a_failure(
    anyio_backend_name: str, unit: float
) -> None:
    """A job that sees a CancelledError nothing cancelled it for failed; it was not aborted."""
    scheduler = new_scheduler()

    async def awaits_a_cancelled_future() -> None:
        if anyio_backend_name == "asyncio":
            future = asyncio.get_running_loop().create_future()
            future.cancel()
            await future
        raise asyncio.CancelledError  # trio: the same error, raised by the job itself

    scheduler.add_job(awaits_a_cancelled_future, "interval", seconds=unit, id="stray")
    recorder = Recorder(scheduler)
    async with scheduler:
        failed = await recorder.wait_count(EventType.JOB_FAILED, 2, limit=30 * unit)
        assert scheduler.state is SchedulerState.RUNNING
    assert {e.data["error_type"] for e in failed} == {"StrayCancellationError"}
    stats = scheduler.job_statistics()
    assert stats.runs_failed == len(recorder.of(EventType.JOB_FAILED))
    assert stats.runs_aborted == 0
    assert_accounted(scheduler.statistics())


@virtual_time
async def test_replacing_a_job_keeps_its_runs_in_progress_against_max_instances(
    unit: float,
) -> None:
    """A job replaced while its run is in progress: the new one does not start a second."""
    scheduler = new_scheduler()
    running: list[int] = []
    most = 0
    release = anyio.Event()

    async def slow() -> None:
        nonlocal most
        running.append(1)
        most = max(most, len(running))
        try:
            await release.wait()
        finally:
            running.pop()

    scheduler.add_job(slow, "interval", seconds=unit, id="slow", max_instances=1)
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_STARTED, 1, limit=30 * unit)
        scheduler.add_job(
            slow, "interval", seconds=unit, id="slow", max_instances=1, replace_existing=True
        )
        await recorder.wait_count(EventType.JOB_MISSED, 1, limit=30 * unit)
        assert scheduler.get_job("slow").running == 1
        release.set()
    assert most == 1
    missed = recorder.of(EventType.JOB_MISSED)
    assert missed[0].data["reason"] == MissReason.MAX_INSTANCES
