"""Time zones and daylight-saving time: the exact runs of cron and interval jobs across
both changes of Europe/Berlin, in virtual time on asyncio and trio.

2031: clocks go from 02:00 CET to 03:00 CEST on 30 March (01:00 UTC), and from 03:00
CEST back to 02:00 CET on 26 October (01:00 UTC). docs/jobs.md states the same runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
import pytest
from jobtools import Recorder, _async_noop, new_scheduler
from virtualloop import BOTH_VIRTUAL

from eventsched import EventType
from eventsched.testing import VirtualClock

pytestmark = pytest.mark.anyio
both_virtual = pytest.mark.parametrize("anyio_backend", BOTH_VIRTUAL, indirect=True)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hourly(first: str, last: str) -> list[datetime]:
    start, end = utc(first), utc(last)
    return [start + timedelta(hours=h) for h in range(int((end - start) / timedelta(hours=1)) + 1)]


async def _run_across(start: str, hours: float) -> dict[str, list[datetime]]:
    """Run the three jobs (scheduler default Europe/Berlin) from ``start`` (UTC) for ``hours``;
    the UTC fire time of each run, by job."""
    scheduler = new_scheduler(VirtualClock(utc(start)))
    scheduler.configure_jobs(timezone="Europe/Berlin")
    scheduler.add_job(_async_noop, "cron", hour=2, minute=30, id="daily")
    scheduler.add_job(_async_noop, "cron", minute=30, id="hourly")
    # Every elapsed hour from 23:30 Berlin time the evening before.
    first = datetime.fromisoformat(start).replace(hour=23, minute=30, tzinfo=BERLIN)
    scheduler.add_job(_async_noop, "interval", hours=1, start_date=first, id="interval")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(hours * 3600)
    assert scheduler.job_statistics().missed_total == 0
    return {
        job: [
            datetime.fromisoformat(e.data["fire_time"]).astimezone(UTC)
            for e in recorder.of(EventType.JOB_STARTED, job)
        ]
        for job in ("daily", "hourly", "interval")
    }


@both_virtual
async def test_spring_forward_runs_the_missing_0230_once_at_0330_cest() -> None:
    """30 March: 02:30 does not exist. The daily job runs at 03:30 CEST (01:30 UTC), one
    hour after 01:30 CET as if the hour had not been skipped; the hourly job has no
    02:30 but runs every elapsed hour (no gap, no double); the interval job too."""
    runs = await _run_across("2031-03-29T12:00:00", 42)
    assert runs["daily"] == [utc("2031-03-30T01:30:00"), utc("2031-03-31T00:30:00")]
    assert runs["hourly"] == hourly("2031-03-29T12:30:00", "2031-03-31T05:30:00")
    assert runs["interval"] == hourly("2031-03-29T22:30:00", "2031-03-31T05:30:00")
    # Around the change, in Berlin time: 00:30, 01:30 CET, then 03:30, 04:30 CEST.
    local = [at.astimezone(BERLIN).strftime("%H:%M%z") for at in runs["hourly"][11:15]]
    assert local == ["00:30+0100", "01:30+0100", "03:30+0200", "04:30+0200"]


@both_virtual
async def test_fall_back_runs_0230_twice_once_in_each_offset() -> None:
    """26 October: 02:00-03:00 happens twice. The daily 02:30 job runs at 02:30 CEST
    (00:30 UTC) and again at 02:30 CET (01:30 UTC), as APScheduler 3's trigger says;
    the hourly job runs every elapsed hour, 02:30 twice; the interval job too."""
    runs = await _run_across("2031-10-25T12:00:00", 42)
    assert runs["daily"] == [
        utc("2031-10-26T00:30:00"),
        utc("2031-10-26T01:30:00"),
        utc("2031-10-27T01:30:00"),
    ]
    assert runs["hourly"] == hourly("2031-10-25T12:30:00", "2031-10-27T05:30:00")
    assert runs["interval"] == hourly("2031-10-25T21:30:00", "2031-10-27T05:30:00")
    local = [at.astimezone(BERLIN).strftime("%H:%M%z") for at in runs["hourly"][11:15]]
    assert local == ["01:30+0200", "02:30+0200", "02:30+0100", "03:30+0100"]


def test_preview_states_the_same_dst_runs() -> None:
    """next_fire_times gives the same fire times before start, without running anything."""
    scheduler = new_scheduler()
    scheduler.configure_jobs(clock=_Fixed(utc("2031-10-25T12:00:00")), timezone="Europe/Berlin")
    scheduler.add_job(_async_noop, "cron", hour=2, minute=30, id="daily")
    times = [at.astimezone(UTC) for at in scheduler.next_fire_times("daily", 3)]
    assert times == [
        utc("2031-10-26T00:30:00"),
        utc("2031-10-26T01:30:00"),
        utc("2031-10-27T01:30:00"),
    ]


def test_the_missing_0230_is_written_with_the_winter_offset() -> None:
    """As docs/jobs.md says: 02:30+01:00, the instant 01:30 UTC (03:30 CEST)."""
    scheduler = new_scheduler()
    scheduler.configure_jobs(clock=_Fixed(utc("2031-03-29T12:00:00")), timezone="Europe/Berlin")
    scheduler.add_job(_async_noop, "cron", hour=2, minute=30, id="daily")
    first = scheduler.next_fire_times("daily", 1)[0]
    assert first.isoformat() == "2031-03-30T02:30:00+01:00"
    assert first.astimezone(UTC) == utc("2031-03-30T01:30:00")
    # astimezone() to its own zone keeps it as it is: through UTC for the wall time.
    assert first.astimezone(UTC).astimezone(BERLIN).strftime("%H:%M%z") == "03:30+0200"


def test_default_timezone_reaches_jobs_added_before_it_but_not_their_own() -> None:
    """configure_jobs(timezone=) after add_job: jobs without timezone= follow it."""
    scheduler = new_scheduler()
    scheduler.add_job(_async_noop, "cron", hour=9, minute=0, id="default")
    scheduler.add_job(_async_noop, "cron", hour=9, minute=0, id="own", timezone="Asia/Tokyo")
    scheduler.configure_jobs(clock=_Fixed(utc("2031-01-06T00:00:00")), timezone="Europe/Berlin")
    assert scheduler.next_fire_times("default", 1) == [utc("2031-01-06T08:00:00")]
    assert scheduler.next_fire_times("own", 1) == [utc("2031-01-06T00:00:00")]
    assert scheduler.jobs.timezone == BERLIN
    assert scheduler.jobs.timezone_configured


class _Fixed:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now
