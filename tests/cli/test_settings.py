"""The settings model and its loader, in process (the subprocess tests are in test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventsched.cli._config import ConfigError, load_settings
from eventsched.cli._settings import (
    MAX_DEMO_MESSAGE,
    MAX_GRACE_PERIOD,
    MAX_QUEUE_SIZE,
    MAX_WORKERS,
    Settings,
    env_name,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty directory with no eventsched variable set."""
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    """Without flags, environment or .env, the documented defaults apply."""
    settings = load_settings([])
    assert (settings.app_env, settings.log_level, settings.log_format) == ("local", "INFO", "text")
    assert (settings.backend, settings.queue_size, settings.overflow) == (
        "asyncio",
        1000,
        "drop_newest",
    )
    assert settings.duration is None
    assert settings.state_file is None


def test_precedence_flags_env_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A flag beats the environment, which beats .env, which beats the default."""
    (tmp_path / ".env").write_text("QUEUE_SIZE=11\nWORKERS=3\nGRACE_PERIOD=7\n")
    monkeypatch.setenv("WORKERS", "2")
    monkeypatch.setenv("GRACE_PERIOD", "8")
    settings = load_settings(["--grace-period", "9"])
    assert (settings.queue_size, settings.workers, settings.grace_period) == (11, 2, 9.0)


def test_production_chooses_json_but_explicit_text_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """APP_ENV=production defaults to JSON logs; an explicit LOG_FORMAT overrides it."""
    monkeypatch.setenv("APP_ENV", "production")
    assert load_settings([]).log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert load_settings([]).log_format == "text"
    assert load_settings(["--log-format", "json"]).log_format == "json"


def test_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_LEVEL=debug is accepted as DEBUG."""
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings([]).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--duration", "inf"], "DURATION (--duration) = 'inf'"),
        (["--grace-period", "-1"], "GRACE_PERIOD (--grace-period) = '-1'"),
        (["--workers", "0"], "WORKERS (--workers) = '0'"),
        (["--queue-size", "1", "--workers", "x"], "WORKERS (--workers) = 'x'"),
    ],
)
def test_bad_values_name_setting_and_value(args: list[str], expected: str) -> None:
    """Each invalid value becomes one line naming the setting and the value given."""
    with pytest.raises(ConfigError) as info:
        load_settings(args)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_env_file_from_environment_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENV_FILE naming a missing file is an error, like --env-file."""
    monkeypatch.setenv("ENV_FILE", "nowhere.env")
    with pytest.raises(ConfigError, match=r"ENV_FILE='nowhere\.env': no such file"):
        load_settings([])


def test_empty_duration_unsets_one_set_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``DURATION=`` (empty) means no duration, even over one in .env: run until stopped."""
    (tmp_path / ".env").write_text("DURATION=5\n")
    assert load_settings([]).duration == 5.0
    monkeypatch.setenv("DURATION", "")
    assert load_settings([]).duration is None
    monkeypatch.setenv("DURATION", "  ")
    assert load_settings([]).duration is None


def test_env_file_name_too_long_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings file name the system refuses is reported, cut, rather than a traceback."""
    monkeypatch.setenv("ENV_FILE", "e" * 5000)
    with pytest.raises(ConfigError, match="cannot be read") as info:
        load_settings([])
    assert "ENV_FILE='eee" in str(info.value)
    assert len(str(info.value)) < 500


def test_env_file_from_environment_naming_a_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A directory given as the settings file is called a directory, not a missing file."""
    monkeypatch.setenv("ENV_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory") as info:
        load_settings([])
    assert "no such file" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("QUEUE_SIZE", "9" * 100_000), ("BACKEND", "b" * 100_000), ("DEMO_MESSAGE", "m" * 100_000)],
)
def test_long_bad_values_are_cut(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A 100 KB bad value is cut to its first 100 characters; the line still says what is wrong."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings([])
    message = str(info.value)
    assert f"bad setting {variable} " in message
    assert f"'{value[:99]}... (100002 characters)" in message
    assert len(message) < 500, len(message)


def test_unknown_long_flag_is_cut() -> None:
    """An unknown flag is named, but not echoed whole when it is huge."""
    with pytest.raises(ConfigError, match="unknown flag --zzz") as info:
        load_settings(["--" + "z" * 100_000])
    assert "(100000 characters)" in str(info.value)
    assert len(str(info.value)) < 2000


@pytest.mark.parametrize(
    ("flag", "highest", "too_high", "allowed"),
    [
        ("--queue-size", str(MAX_QUEUE_SIZE), str(MAX_QUEUE_SIZE + 1), "less than or equal"),
        ("--workers", str(MAX_WORKERS), str(MAX_WORKERS + 1), "less than or equal"),
        ("--grace-period", f"{MAX_GRACE_PERIOD:g}", "3600.5", "less than or equal"),
        ("--demo-message", "m" * MAX_DEMO_MESSAGE, "m" * (MAX_DEMO_MESSAGE + 1), "at most 1000"),
    ],
)
def test_limits(flag: str, highest: str, too_high: str, allowed: str) -> None:
    """Each limit is accepted, and one past it is refused naming the setting and the limit."""
    load_settings([flag, highest])
    with pytest.raises(ConfigError, match=allowed) as info:
        load_settings([flag, too_high])
    assert f"({flag}) = " in str(info.value)


def test_limits_are_the_librarys() -> None:
    """The command line's limits are the ones EventScheduler enforces (one limit each)."""
    from eventsched import _scheduler

    names = ("MAX_QUEUE_SIZE", "MAX_WORKERS", "MAX_GRACE_PERIOD")
    assert [getattr(_scheduler, name) for name in names] == [
        MAX_QUEUE_SIZE,
        MAX_WORKERS,
        MAX_GRACE_PERIOD,
    ]
