"""The command line: parse the settings, report bad ones, start the chosen command.

Only parsing and reporting live here. A bad setting (from a flag, the environment or
the ``.env`` file) becomes one line on stderr naming the setting, the value and what is
allowed, and exit code 2, before anything is started.

Commands: with no subcommand, the demo runs. A subcommand is a pydantic model with a
``run(self, settings) -> int`` method, declared as a ``CliSubCommand[...]`` field of
:class:`Cli` (``bench`` and ``lesson``); its own flags follow its name, the
shared settings come before it: ``eventsched --backend trio bench ...``.

Why pydantic-settings' own CLI support: flags, environment and ``.env`` then fill one
model with one validation and one set of error messages, and ``--help`` is generated
from the same fields. Two things are done by hand around it: ``--env-file`` is read
before the model is built (the ``.env`` source must know its path), and parse errors
are caught (``cli_exit_on_error=False``) to be reported as one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, get_args

from pydantic import BaseModel, Field
from pydantic_settings import CliPositionalArg, CliSubCommand

from ._bench._command import Bench  # `eventsched bench`
from ._exit import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, EXIT_SIGINT
from ._settings import DEFAULT_ENV_FILE, Settings, env_name
from .lessons._command import LessonCommand  # `eventsched lesson`

if TYPE_CHECKING:
    from pydantic import ValidationError

    from ._scheduler import EventScheduler

__all__ = ["Cli", "ConfigError", "Subcommand", "load_settings", "main"]

PROG = "eventsched"
#: Width the cached ``--help`` text is wrapped to.
HELP_COLUMNS = 80


class ConfigError(Exception):
    """A setting is invalid; the message is the one line shown to the user."""


class Subcommand(Protocol):
    """What a subcommand model provides (see the module docstring)."""

    def run(self, settings: Settings) -> int:
        """Do the command's work with the shared settings; return the exit code."""
        ...


def _env_file(argv: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> Path | None:
    """The ``.env`` file to read: ``--env-file``, else ``ENV_FILE``, else ``./.env`` if any."""
    scan = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    scan.add_argument("--env-file")
    try:
        known, _ = scan.parse_known_args(list(argv))
    except argparse.ArgumentError as error:
        raise ConfigError(f"{PROG}: --env-file: {error.message}") from None
    explicit = known.env_file
    origin = "--env-file"
    if explicit is None:
        explicit = environ.get("ENV_FILE") or environ.get("env_file")
        origin = "ENV_FILE"
    if explicit is None:
        default = Path(DEFAULT_ENV_FILE)
        return default if default.is_file() else None
    path = Path(explicit)
    if not path.is_file():
        raise ConfigError(
            f"{PROG}: bad setting {origin}={explicit!r}: no such file; "
            "name an existing settings file, or leave it out"
        )
    return path


def _describe(error: dict[str, Any], env_file: Path | None) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    if len(loc) > 1 and field in Cli.model_fields:  # a subcommand's flag: name both
        flag = f"{field} --" + str(loc[-1]).replace("_", "-")
        message = str(error.get("msg", "invalid"))
        return f"bad flag {flag} = {error.get('input')!r}: {message[:1].lower()}{message[1:]}"
    if error.get("type") == "extra_forbidden":
        allowed = ", ".join(env_name(name) for name in Settings.model_fields)
        where = f" in {env_file}" if env_file is not None else ""
        return f"unknown setting {env_name(field)}{where}; allowed are: {allowed}"
    flag = "--" + field.replace("_", "-")
    message = str(error.get("msg", "invalid"))
    message = message[:1].lower() + message[1:]
    return f"bad setting {env_name(field)} ({flag}) = {error.get('input')!r}: {message}"


def _one_line(error: ValidationError, env_file: Path | None) -> str:
    parts = [_describe(dict(e), env_file) for e in error.errors(include_url=False)]
    return f"{PROG}: " + "; ".join(parts)


class Cli(Settings):
    __doc__ = Settings.__doc__

    # Subcommands: the models live with their code (_bench/, lessons/).
    bench: CliSubCommand[Bench] = Field(description="compare the backends: eventsched bench --help")
    lesson: CliSubCommand[LessonCommand] = Field(
        description="learn concurrency: list the lessons, or run one: eventsched lesson NAME"
    )


def load_settings(argv: Sequence[str], cli_model: type[Settings] | None = None) -> Settings:
    """Build the settings from ``argv``, the environment and the ``.env`` file.

    :raises ConfigError: a setting is invalid, with the one-line message to show
    :raises SystemExit: ``--help`` was asked for (after printing it)
    """
    from pydantic import ValidationError
    from pydantic_settings import CliSettingsSource, SettingsError

    model: type[Settings] = Cli if cli_model is None else cli_model
    env_file = _env_file(argv, os.environ)
    try:
        if model is Cli:
            _refuse_unknown_flags(argv)
        if env_file is not None:
            _refuse_keys_that_cannot_be_in(env_file)
        source: CliSettingsSource[Settings] = CliSettingsSource(model)
        # The underscore arguments are BaseSettings' documented per-call options;
        # mypy sees only the fields (the pydantic plugin is not enabled here).
        return model(
            _env_file=env_file,  # type: ignore[call-arg]
            _cli_settings_source=source(args=list(argv)),
        )
    except ValidationError as error:
        raise ConfigError(_one_line(error, env_file)) from None
    except SettingsError as error:
        raise ConfigError(f"{PROG}: {error} (see {PROG} --help)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{PROG}: cannot read settings file {env_file}: {error}") from None


#: Flags that were renamed, with their new names: the nearest spelling would not find
#: them (``--latency-runs`` is nearer to ``--latency-events``).
_RENAMED = {"latency-runs": "latency-processes"}


#: The marker pydantic-settings puts on a positional field, taken from its public alias
#: rather than imported by its private name.
_POSITIONAL = get_args(CliPositionalArg[str])[1]


def _flags(model: type[BaseModel]) -> list[str]:
    """The long flags a model's fields take on the command line, without ``--``."""
    flags = []
    for name, field in model.model_fields.items():
        if _POSITIONAL in field.metadata:
            continue  # given bare, as `lesson NAME`
        flag = (field.alias or name).replace("_", "-")
        flags.append(flag)
        if field.annotation is bool:  # CliImplicitFlag[bool]: --x and --no-x
            flags.append(f"no-{flag}")
    return sorted(flags)


def _refuse_unknown_flags(argv: Sequence[str]) -> None:
    # argparse would take the value of a misspelt flag for the subcommand and report
    # "invalid choice: '5'", never naming the flag; after a subcommand it says only
    # "unrecognized arguments". Flags after a subcommand are its own.
    command, flags = PROG, sorted(name.replace("_", "-") for name in Settings.model_fields)
    subcommands: dict[str, type[BaseModel]] = {"bench": Bench, "lesson": LessonCommand}
    for token in argv:
        if token == "--":
            return
        if command == PROG and token in subcommands:
            command, flags = f"{PROG} {token}", _flags(subcommands[token])
            continue
        if token.startswith("--"):
            name = token[2:].partition("=")[0]
            if name not in flags and name != "help":
                import difflib

                renamed = _RENAMED.get(name)
                close = (
                    [renamed] if renamed in flags else difflib.get_close_matches(name, flags, n=1)
                )
                hint = f"did you mean --{close[0]}? " if close else ""
                raise ConfigError(
                    f"{PROG}: unknown flag --{name}; {hint}allowed are: "
                    + ", ".join(f"--{flag}" for flag in flags)
                    + f" (see {command} --help)"
                )


#: Names a settings file may not set, with where they belong. Valid settings to the
#: model, so it would accept them there and then ignore them: the file is chosen before
#: it is read, and subcommands are chosen on the command line.
_NOT_IN_ENV_FILE = {
    "ENV_FILE": "name the settings file with --env-file or the ENV_FILE environment variable",
    "BENCH": "subcommands are chosen on the command line (eventsched bench)",
    "LESSON": "subcommands are chosen on the command line (eventsched lesson)",
}


def _refuse_keys_that_cannot_be_in(env_file: Path) -> None:
    from dotenv import dotenv_values  # what pydantic-settings reads the file with

    for key in dotenv_values(env_file, encoding="utf-8"):
        where = _NOT_IN_ENV_FILE.get(key.upper())
        if where is not None:
            raise ConfigError(f"{PROG}: setting {key} cannot be given in {env_file}: {where}")


def render_help(columns: int = HELP_COLUMNS) -> str:
    """The ``--help`` text, as pydantic-settings renders it for :class:`Cli`."""
    from pydantic_settings import CliSettingsSource

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)  # argparse wraps to the terminal's width
    try:
        return CliSettingsSource(Cli).root_parser.format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def write_help() -> Path:
    """Regenerate ``_help.py`` (the text of the ``--help`` fast path); return its path."""
    path = Path(__file__).with_name("_help.py")
    lines = "".join(f"    {line!r}\n" for line in render_help().splitlines(keepends=True))
    path.write_text(
        '"""Generated by ``eventsched._cli.write_help()``; tests check it matches ``Cli``.\n\n'
        "``python -m eventsched --help`` prints this without importing pydantic-settings,\n"
        "whose import alone (it builds its models at import) takes 0.3-0.5 s here.\n"
        '"""\n\n'
        f"HELP = (\n{lines})\n",
        encoding="utf-8",
    )
    return path


def _first_leaf(group: BaseExceptionGroup[Any]) -> Any:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _run_demo(settings: Settings, customize: Callable[[EventScheduler], None] | None) -> int:
    import anyio

    from ._demo import run_demo
    from ._jobstate import JobStateError, JobStateStore

    def bad_state_file(error: JobStateError) -> int:
        # One line on stderr, whatever LOG_LEVEL says, like every other bad setting.
        print(
            f"{PROG}: bad setting STATE_FILE (--state-file) = "
            f"{str(settings.state_file)!r}: {error}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_CONFIG

    if settings.state_file is not None:
        # Judged before anything starts, rather than after a start-up and a summary.
        probe = JobStateStore(settings.state_file)
        try:
            probe.open(warn=False)
        except JobStateError as error:
            return bad_state_file(error)
        finally:
            probe.close()
    bad_state: JobStateError | None = None
    try:
        stats = anyio.run(run_demo, settings, customize, backend=settings.backend)
    except* JobStateError as group:
        bad_state = _first_leaf(group)
    except* (SystemExit, KeyboardInterrupt) as group:
        # A handler or job raised it and the scheduler stopped gracefully (see
        # UserBaseExceptionError): end as it asked, not as an exception group, and
        # KeyboardInterrupt as Ctrl+C does, with no traceback.
        leaf = _first_leaf(group)
        raise (SystemExit(EXIT_SIGINT) if isinstance(leaf, KeyboardInterrupt) else leaf) from None
    if bad_state is not None:
        # The file changed between the check above and the run.
        return bad_state_file(bad_state)
    return EXIT_OK if stats.unaccounted == 0 else EXIT_ERROR


def main(
    argv: Sequence[str] | None = None,
    *,
    customize: Callable[[EventScheduler], None] | None = None,
) -> int:
    """Run ``eventsched`` with ``argv`` (default: the process's); return the exit code.

    ``customize`` is called with the demo's scheduler before it starts (extra handlers
    for experiments and tests).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        settings = load_settings(args)
    except ConfigError as error:
        print(error, file=sys.stderr, flush=True)
        return EXIT_CONFIG

    from loguru import logger
    from pydantic_settings import get_subcommand

    from ._logging import configure_logging

    configure_logging(level=settings.log_level, log_format=settings.log_format)
    try:
        command = get_subcommand(settings, is_required=False)
        if command is not None:
            return cast("Subcommand", command).run(settings)
        return _run_demo(settings, customize)
    except Exception:
        logger.exception("eventsched stopped on an unexpected error")
        return EXIT_ERROR
    finally:
        logger.complete()
