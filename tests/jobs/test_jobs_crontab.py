"""crontab= strings mean crontab(5): day-of-week 0 and 7 are Sunday (issue 15, item 12).

The keyword field ``day_of_week=`` keeps APScheduler's numbering (0 is Monday).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from jobtools import Recorder, _async_noop, fire_times, new_scheduler

from conftest import VIRTUAL_TIME
from eventsched import EventType, JobScheduler
from eventsched._jobs._triggers import crontab_day_of_week
from eventsched.testing import DEFAULT_EPOCH

MONDAY = DEFAULT_EPOCH  # 2030-01-07
assert MONDAY.strftime("%A") == "Monday"
WEEK = timedelta(days=7)


def week_of(trigger: Any) -> list[str]:
    """The weekday and time of each fire time in the week from MONDAY."""
    seen: list[str] = []
    at: datetime | None = trigger.get_next_fire_time(None, MONDAY)
    while at is not None and at < MONDAY + WEEK:
        seen.append(at.strftime("%a %H:%M"))
        at = trigger.get_next_fire_time(at, at)
    return seen


def job_trigger(**options: Any) -> Any:
    scheduler = JobScheduler(_Silent())
    scheduler.add_job(_async_noop, "cron", id="j", **options)
    return scheduler._entries["j"].trigger


class _Silent:
    max_event_bytes = 1 << 16

    async def emit(self, event: object) -> bool:
        return True


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]


@pytest.mark.parametrize(
    ("crontab", "expected"),
    [
        ("30 9 * * 1-5", [f"{day} 09:30" for day in WEEKDAYS]),
        ("0 12 * * 0", ["Sun 12:00"]),
        ("0 12 * * 7", ["Sun 12:00"]),
        ("0 12 * * 6,0", ["Sat 12:00", "Sun 12:00"]),
        ("0 12 * * 5-7", ["Fri 12:00", "Sat 12:00", "Sun 12:00"]),
        ("0 12 * * */2", ["Tue 12:00", "Thu 12:00", "Sat 12:00", "Sun 12:00"]),
        ("0 12 * * mon-fri", [f"{day} 12:00" for day in WEEKDAYS]),
        ("0 12 * * SUN", ["Sun 12:00"]),
        ("0 12 * * *", [f"{day} 12:00" for day in [*WEEKDAYS, "Sat", "Sun"]]),
        # Both day fields restricted: either matches (the 9th is the Wednesday).
        ("0 12 9 * 1", ["Mon 12:00", "Wed 12:00"]),
        ("0 12 9 * *", ["Wed 12:00"]),
        ("0 12 */2 * 1", ["Mon 12:00"]),  # day field starts with *: both must match
    ],
)
def test_a_crontab_day_of_week_means_what_crontab_5_says(crontab: str, expected: list[str]) -> None:
    assert week_of(job_trigger(crontab=crontab)) == expected


def test_the_day_of_week_keyword_keeps_apschedulers_numbering() -> None:
    """``day_of_week=0`` is Monday, as APScheduler documents (and the guide repeats)."""
    assert week_of(job_trigger(hour=12, minute=0, day_of_week="0")) == ["Mon 12:00"]
    assert week_of(job_trigger(hour=12, minute=0, day_of_week="6")) == ["Sun 12:00"]


@pytest.mark.parametrize(
    ("field", "match"),
    [("8", "not 0-7"), ("3-1", "backwards"), ("funday", "not 0-7"), ("*/0", "1 or more")],
)
def test_a_bad_crontab_day_of_week_is_a_clear_error(field: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        crontab_day_of_week(field)
    with pytest.raises(ValueError, match="invalid cron trigger"):
        job_trigger(crontab=f"0 12 * * {field}")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [p for p in VIRTUAL_TIME if p.id == "trio-virtual"], indirect=True
)
async def test_a_week_of_weekday_and_sunday_jobs_in_virtual_time() -> None:
    """Run a week: the weekday job fires Monday to Friday, the Sunday job on Sunday."""
    scheduler = new_scheduler()
    scheduler.add_job(_async_noop, "cron", crontab="30 9 * * 1-5", id="weekdays")
    scheduler.add_job(_async_noop, "cron", crontab="0 12 * * 0", id="sunday")
    scheduler.add_job(_async_noop, "cron", crontab="0 12 * * 7", id="sunday7")
    recorder = Recorder(scheduler)
    async with scheduler:
        await anyio.sleep(WEEK.total_seconds())

    def days(job_id: str) -> list[str]:
        times = fire_times(recorder.of(EventType.JOB_COMPLETED, job_id))
        return [at.strftime("%a %H:%M") for at in times]

    assert days("weekdays") == [f"{day} 09:30" for day in WEEKDAYS]
    assert days("sunday") == days("sunday7") == ["Sun 12:00"]
