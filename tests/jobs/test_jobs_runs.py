"""Runs: outcomes, timeouts, tracing, worker threads and result summaries.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

import asyncio
import re

import anyio
import pytest
from jobtools import Recorder, fire_times, new_scheduler, virtual_time

from eventsched import (
    Event,
    EventType,
    SchedulerState,
)
from eventsched._jobs import format_duration, summarize_result
from eventsched.testing import assert_accounted

pytestmark = pytest.mark.anyio


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


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


@virtual_time
async def test_an_exception_whose_str_raises_is_a_counted_failure(
    unit: float, job_log: list[str]
) -> None:
    """Issue 15, item 9: the run is failed and counted; the scheduler keeps firing."""
    scheduler = new_scheduler()

    async def broken() -> None:
        raise _Unprintable

    scheduler.add_job(broken, "interval", seconds=unit, id="broken")
    recorder = Recorder(scheduler)
    async with scheduler:
        failed = await recorder.wait_count(EventType.JOB_FAILED, 2, limit=30 * unit)
    assert failed[0].data["error_type"] == "_Unprintable"
    assert failed[0].data["error"] == "<str() raised RuntimeError>"
    assert scheduler.job_statistics().runs_failed == len(recorder.of(EventType.JOB_FAILED))
    assert scheduler.statistics().unaccounted == 0
    assert any("failed after" in line and "_Unprintable" in line for line in job_log)


def test_durations_have_one_format() -> None:
    """Issue 15, item 11: milliseconds below a second, seconds above, three decimals."""
    assert format_duration(0.000087) == "0.087 ms"
    assert format_duration(0.25) == "250.000 ms"
    assert format_duration(1.5) == "1.500 s"


@virtual_time
async def test_a_failure_log_line_gives_its_duration_in_that_format(
    unit: float, job_log: list[str]
) -> None:
    scheduler = new_scheduler()

    async def broken() -> None:
        raise ValueError("no")

    scheduler.add_job(broken, "interval", seconds=unit, id="broken")
    recorder = Recorder(scheduler)
    async with scheduler:
        await recorder.wait_count(EventType.JOB_FAILED, 1, limit=30 * unit)
    (line,) = [line for line in job_log if "failed after" in line][:1]
    assert re.search(r"failed after \d+\.\d{3} (ms|s) ", line), line
