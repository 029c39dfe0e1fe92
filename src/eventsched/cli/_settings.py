"""The application's settings: one pydantic-settings model for flags, environment and ``.env``.

Precedence, highest first: command-line flags, environment variables, the ``.env`` file,
then the defaults, some of which depend on ``APP_ENV`` (see :class:`Settings`).
Environment variable names carry no prefix: ``APP_ENV`` and ``LOG_LEVEL`` are the
original demo's, and the others follow them (``BACKEND``, ``QUEUE_SIZE``, ...).
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, CliImplicitFlag, SettingsConfigDict

# The limits of the settings are the library's own: EventScheduler refuses the same
# values, so a setting the command line accepts never fails later in the constructor.
from .._scheduler import MAX_GRACE_PERIOD, MAX_QUEUE_SIZE, MAX_WORKERS

__all__ = [
    "DEFAULT_ENV_FILE",
    "MAX_DEMO_MESSAGE",
    "MAX_GRACE_PERIOD",
    "MAX_QUEUE_SIZE",
    "MAX_WORKERS",
    "MIN_HTTP_TOKEN",
    "SECRET_SETTINGS",
    "Settings",
    "env_name",
]

#: Read when no ``--env-file`` (or ``ENV_FILE``) names another; a missing one is fine.
DEFAULT_ENV_FILE: Final = ".env"

#: Longest greeting, in characters.
MAX_DEMO_MESSAGE: Final = 1000
#: Shortest HTTP token: a guessable one would defeat the point of asking for it.
MIN_HTTP_TOKEN: Final = 16
#: Settings whose values are never shown, not even in an error line.
SECRET_SETTINGS: Final = frozenset({"http_token", "state_url"})

AppEnv = Literal["local", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
Backend = Literal["asyncio", "trio"]
Overflow = Literal["drop_newest", "drop_oldest", "block", "reject"]


def env_name(field: str) -> str:
    """The environment variable (and ``.env`` key) of a setting."""
    return field.upper()


def _help(text: str, field: str) -> str:
    return f"{text} [env: {env_name(field)}]"


class Settings(BaseSettings):
    """Run the eventsched demo: scheduled jobs, handlers, a bounded queue, graceful shutdown.

    Every setting can be given as a flag, an environment variable or a line in the
    .env file; flags beat the environment, which beats .env, which beats the defaults.
    """

    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
        cli_kebab_case=True,
        cli_prog_name="eventsched",
        cli_exit_on_error=False,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_use_class_docs_for_groups=False,
    )

    app_env: AppEnv = Field(
        "local",
        description=_help("where this runs; chooses defaults (production: JSON logs)", "app_env"),
    )
    log_level: LogLevel = Field(
        "INFO", description=_help("least severe level logged (any case)", "log_level")
    )
    log_format: LogFormat = Field(
        "text",
        description=_help(
            "text: one readable line per record; json: one JSON object per line "
            "(default json when APP_ENV=production)",
            "log_format",
        ),
    )
    backend: Backend = Field("asyncio", description=_help("event loop to run on", "backend"))
    queue_size: int = Field(
        1000,
        gt=0,
        le=MAX_QUEUE_SIZE,
        description=_help(f"capacity of the event queue, 1 to {MAX_QUEUE_SIZE}", "queue_size"),
    )
    overflow: Overflow = Field(
        "drop_newest",
        description=_help("what an emit does when the queue is full", "overflow"),
    )
    workers: int = Field(
        1,
        ge=1,
        le=MAX_WORKERS,
        description=_help(f"handler tasks consuming the queue, 1 to {MAX_WORKERS}", "workers"),
    )
    grace_period: float = Field(
        5.0,
        ge=0,
        le=MAX_GRACE_PERIOD,
        allow_inf_nan=False,
        description=_help(
            f"seconds the queue may drain at shutdown, 0 to {MAX_GRACE_PERIOD:g}", "grace_period"
        ),
    )
    state_file: Path | None = Field(
        None,
        description=_help(
            "file keeping the jobs' schedules across restarts (None: in memory)", "state_file"
        ),
    )
    state_url: str | None = Field(
        None,
        description=_help(
            "postgresql://user@host:port/database?schema=name: a job store that several "
            "processes share, each fire time run once (needs the postgres extra; not with "
            "STATE_FILE) (None: no)",
            "state_url",
        ),
    )
    duration: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=_help(
            "stop by itself after this many seconds, more than 0 (None or empty: run until "
            "stopped)",
            "duration",
        ),
    )
    demo_message: str = Field(
        "Hello World",
        max_length=MAX_DEMO_MESSAGE,
        description=_help(
            f"text the demo's greeting event carries, at most {MAX_DEMO_MESSAGE} characters",
            "demo_message",
        ),
    )
    http_address: str | None = Field(
        None,
        # `--http HOST:PORT` is the short spelling the operators' docs use.
        validation_alias=AliasChoices("http", "http_address"),
        description=_help(
            "serve metrics, probes, a JSON API and a live page on HOST:PORT (e.g. "
            "127.0.0.1:8000; port 0: any free port); beyond loopback needs HTTP_TOKEN "
            "(None: no HTTP service)",
            "http_address",
        ),
    )
    http_token: SecretStr | None = Field(
        None,
        description=_help(
            f"secret of at least {MIN_HTTP_TOKEN} characters that pausing, resuming and "
            "running jobs over HTTP require (None: changes are off); prefer the environment to the "
            "flag, which other users can see in the process list",
            "http_token",
        ),
    )
    tracing: CliImplicitFlag[bool] = Field(
        False,
        description=_help(
            "a span per handled event and per job run, through the OpenTelemetry tracer "
            "provider the application or opentelemetry-instrument set up (needs the otel "
            "extra)",
            "tracing",
        ),
    )
    timezone: str = Field(
        "UTC",
        description=_help(
            "IANA time zone (e.g. Europe/Berlin) of the jobs whose triggers name none: the "
            "demo's, and eventsched run's unless the application configured its own",
            "timezone",
        ),
    )
    env_file: Path = Field(
        Path(DEFAULT_ENV_FILE),
        description=_help("settings file to read; an explicitly named one must exist", "env_file"),
    )

    @field_validator("state_file", mode="before")
    @classmethod
    def _named_file(cls, value: Any) -> Any:
        # An empty value would become Path("."), the current directory.
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a file; leave it out to keep schedules in memory")
        return value

    @field_validator("timezone", mode="before")
    @classmethod
    def _known_zone(cls, value: Any) -> Any:
        # Checked here, so that a typo stops the program before anything starts; the
        # zone database is the system's, or the tzdata package's.
        if not isinstance(value, str):
            return value
        name = value.strip()
        try:
            zoneinfo.ZoneInfo(name)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ValueError(
                "must be an IANA time zone name such as UTC or Europe/Berlin"
            ) from None
        return name

    @field_validator("duration", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `DURATION=` (in .env or the environment) unsets a duration set elsewhere,
        # as an empty value does for the shell: run until stopped.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("http_address", "http_token", "state_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # `HTTP_ADDRESS=` unsets it, as `DURATION=` does.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("http_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_HTTP_TOKEN:
            raise ValueError(f"must be at least {MIN_HTTP_TOKEN} characters")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        # "info" works as "INFO"; anything else is reported as given.
        if isinstance(value, str) and value.strip().upper() in get_args(LogLevel):
            return value.strip().upper()
        return value

    @model_validator(mode="before")
    @classmethod
    def _app_env_defaults(cls, data: Any) -> Any:
        # Sees only the values given explicitly (by any source): fill the defaults
        # that APP_ENV chooses, leaving explicit values alone.
        production = isinstance(data, dict) and data.get("app_env") == "production"
        if production and data.get("log_format") is None:
            data = {**data, "log_format": "json"}
        return data
