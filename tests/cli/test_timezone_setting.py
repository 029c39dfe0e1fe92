"""TIMEZONE: checked like every setting, the default of the demo's and `run`'s jobs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from eventsched import EventScheduler
from eventsched.cli._config import ConfigError, load_settings
from eventsched.cli._demo import build_scheduler
from eventsched.cli._run import _apply_timezone


async def _noop() -> None:
    pass


def test_default_is_utc_and_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings([]).timezone == "UTC"
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")
    assert load_settings([]).timezone == "Europe/Berlin"
    assert load_settings(["--timezone", "America/New_York"]).timezone == "America/New_York"


@pytest.mark.parametrize("value", ["Mars/Base", "", "../../etc/passwd", "Europe/"])
def test_a_bad_zone_is_one_line_naming_setting_value_and_what_is_allowed(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(["--timezone", value])
    message = str(info.value)
    assert f"TIMEZONE (--timezone) = {value!r}" in message
    assert "IANA time zone name such as UTC or Europe/Berlin" in message
    assert "\n" not in message


def test_the_demo_jobs_use_it() -> None:
    settings = load_settings(["--timezone", "Asia/Tokyo"])
    scheduler = build_scheduler(settings)
    assert scheduler.jobs.timezone == ZoneInfo("Asia/Tokyo")
    assert "Asia/Tokyo" in scheduler.jobs._entries["minutely"].fingerprint


def test_run_applies_it_to_the_apps_jobs_unless_the_app_chose_another() -> None:
    given = load_settings(["--timezone", "Europe/Berlin"])
    app = EventScheduler()
    app.add_job(_noop, "cron", hour=3, id="nightly")  # added before TIMEZONE applies
    assert _apply_timezone(given, app) is None
    assert app.jobs.timezone == ZoneInfo("Europe/Berlin")
    assert "Europe/Berlin" in app.jobs._entries["nightly"].fingerprint

    untouched = EventScheduler()
    untouched.configure_jobs(timezone="Asia/Tokyo")
    assert _apply_timezone(load_settings([]), untouched) is None  # not given: the app's
    problem = _apply_timezone(given, untouched)
    assert problem is not None
    assert "TIMEZONE (--timezone) = 'Europe/Berlin'" in problem
    assert "'Asia/Tokyo'" in problem
    assert untouched.jobs.timezone == ZoneInfo("Asia/Tokyo")
    same = load_settings(["--timezone", "Asia/Tokyo"])
    assert _apply_timezone(same, untouched) is None
