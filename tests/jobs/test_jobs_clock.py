"""Wall time: the injectable clock, and a simulated day in virtual time.

Time-based tests run on asyncio in real time (short intervals, generous bounds,
asserting counts and order) and on trio in virtual time (exact). ``unit`` is one
interval: 1 s of virtual time on trio, 50 ms of real time on asyncio.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import anyio
import pytest
from jobtools import EPOCH, Recorder, _async_noop, fire_times, new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import (
    EventType,
)
from eventsched._jobs._parking import loop_clock, on_trio
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)
async def test_crontab_every_minute_over_a_simulated_day_runs_1440_times() -> None:
    """A crontab job every minute over a virtual day runs exactly 1440 times, in virtual
    time (the bound on real time only tells a virtual day from a real one: no speed is
    asserted, which a loaded machine would break)."""
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
    assert elapsed < 120, f"a simulated day took {elapsed:.2f}s of real time"


def test_virtual_clock_needs_an_aware_epoch() -> None:
    """A naive epoch is refused: trigger times are always timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2030, 1, 1))


async def test_the_loop_clock_reads_what_anyio_current_time_reads() -> None:
    """Runs time their attempts with the loop's clock read directly (loop_clock), not
    through anyio's lookup of the backend: the same clock, on both backends."""
    read = loop_clock(on_trio())
    before = anyio.current_time()
    mine = read()
    after = anyio.current_time()
    assert before <= mine <= after
