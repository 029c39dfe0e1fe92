"""The command line's settings: parse them, report bad ones as one line.

Only parsing and reporting live here (``_main.py`` starts the chosen command). A bad
setting (from a flag, the environment or the ``.env`` file) becomes one line on stderr
naming the setting, the value (cut if long) and what is allowed, and exit code 2,
before anything is started.

Commands: with no subcommand, the demo runs. A subcommand is a pydantic model with a
``run(self, settings) -> int`` method, declared as a ``CliSubCommand[...]`` field of
:class:`Cli` (``bench``, ``lesson``, ``run``, ``jobs``); its own flags follow its name, the
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
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, cast, get_args

from pydantic import BaseModel, Field
from pydantic_settings import CliPositionalArg, CliSettingsSource, CliSubCommand

from .._bench._command import Bench  # `eventsched bench`
from ..lessons._command import LessonCommand  # `eventsched lesson`
from ._jobs import JobsCommand  # `eventsched jobs`
from ._main import PROG
from ._run import RunCommand  # `eventsched run`
from ._settings import DEFAULT_ENV_FILE, SECRET_SETTINGS, Settings, env_name

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "PROG",
    "SUBCOMMANDS",
    "Cli",
    "ConfigError",
    "Subcommand",
    "bad_setting",
    "cli_source",
    "cut",
    "load_settings",
    "shown",
]

#: Characters of a bad value an error line shows; the rest is cut (a 100 KB value
#: would otherwise fill the terminal and hide the line's point).
SHOWN_CHARS: Final = 100


class ConfigError(Exception):
    """A setting is invalid; the message is the one line shown to the user."""


def cut(text: str) -> str:
    """``text`` for an error line, cut to :data:`SHOWN_CHARS` characters."""
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def shown(value: object) -> str:
    """``repr(value)`` for an error line, cut to :data:`SHOWN_CHARS` characters."""
    return cut(repr(value))


def bad_setting(field: str, value: object, problem: str) -> str:
    """The one line for a bad setting: its name, its flag, the value (cut) and the problem."""
    flag = "--" + field.replace("_", "-")
    return f"{PROG}: bad setting {env_name(field)} ({flag}) = {shown(value)}: {problem}"


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
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        problem = "no such file"
    except OSError as error:  # a name too long, a directory we may not enter, ...
        problem = f"cannot be read ({error.strerror or type(error).__name__})"
    else:
        if stat.S_ISREG(mode):
            return path
        problem = "is a directory" if stat.S_ISDIR(mode) else "not a regular file"
    raise ConfigError(
        f"{PROG}: bad setting {origin}={shown(explicit)}: {problem}; "
        "name an existing settings file, or leave it out"
    )


def _describe(error: dict[str, Any], env_file: Path | None) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    if field == "http":  # the short alias of --http-address
        field = "http_address"
    if field in SECRET_SETTINGS:  # never echoed, not even when it is wrong
        error = {**error, "input": "**********"}
    if len(loc) > 1 and field in Cli.model_fields:  # a subcommand's flag: name both
        flag = f"{field} --" + str(loc[-1]).replace("_", "-")
        message = str(error.get("msg", "invalid"))
        return f"bad flag {flag} = {shown(error.get('input'))}: {message[:1].lower()}{message[1:]}"
    if error.get("type") == "extra_forbidden":
        allowed = ", ".join(env_name(name) for name in Settings.model_fields)
        where = f" in {env_file}" if env_file is not None else ""
        return f"unknown setting {cut(env_name(field))}{where}; allowed are: {allowed}"
    flag = "--" + field.replace("_", "-")
    message = str(error.get("msg", "invalid"))
    message = message[:1].lower() + message[1:]
    return f"bad setting {env_name(field)} ({flag}) = {shown(error.get('input'))}: {message}"


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
    run: CliSubCommand[RunCommand] = Field(
        description="run your own scheduler as the demo runs: eventsched run MODULE:ATTRIBUTE"
    )
    jobs: CliSubCommand[JobsCommand] = Field(
        description="list the jobs in a state file or a PostgreSQL schema, read-only: "
        "eventsched jobs --state-file F | --state-url URL"
    )


def load_settings(argv: Sequence[str], cli_model: type[Settings] | None = None) -> Settings:
    """Build the settings from ``argv``, the environment and the ``.env`` file.

    :raises ConfigError: a setting is invalid, with the one-line message to show
    :raises SystemExit: ``--help`` was asked for (after printing it)
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    model: type[Settings] = Cli if cli_model is None else cli_model
    env_file = _env_file(argv, os.environ)
    try:
        if model is Cli:
            _refuse_unknown_flags(argv)
        if env_file is not None:
            _refuse_keys_that_cannot_be_in(env_file)
        source = cli_source(model)
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


#: The subcommands' models, by name.
SUBCOMMANDS: Final[dict[str, type[BaseModel]]] = {
    "bench": Bench,
    "lesson": LessonCommand,
    "run": RunCommand,
    "jobs": JobsCommand,
}


def _add_argument(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
    # After a subcommand, "(default: None)" says nothing: the flag's description says
    # what applies when it is left out ("the shared --backend", "[5; quick: 1]").
    text = kwargs.get("help")
    if isinstance(text, str) and parser.prog != PROG:
        kwargs["help"] = text.removesuffix(" (default: None)")
    return parser.add_argument(*args, **kwargs)


def cli_source(model: type[Settings] | None = None) -> CliSettingsSource[argparse.ArgumentParser]:
    """The pydantic-settings command-line source for ``model`` (default :class:`Cli`)."""
    from .. import __version__

    source: CliSettingsSource[argparse.ArgumentParser] = CliSettingsSource(
        Cli if model is None else model, add_argument_method=_add_argument
    )
    source.root_parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {__version__}",
        help="print the version and exit",
    )
    return source


#: Flags that were renamed, with their new names: the nearest spelling would not find
#: them (``--latency-runs`` is nearer to ``--latency-events``).
_RENAMED = {"latency-runs": "latency-processes"}


#: The marker pydantic-settings puts on a positional field, taken from its public alias
#: rather than imported by its private name.
_POSITIONAL = get_args(CliPositionalArg[str])[1]
# (cast: mypy does not see CliSubCommand as generic, though it is at run time)
_SUBCOMMAND = get_args(cast("Any", CliSubCommand)[int])[1]


def _flags(model: type[BaseModel]) -> list[str]:
    """The long flags a model's fields take on the command line, without ``--``."""
    flags = []
    for name, field in model.model_fields.items():
        if _POSITIONAL in field.metadata or _SUBCOMMAND in field.metadata:
            continue  # given bare, as `lesson NAME` or `bench report`
        flag = (field.alias or name).replace("_", "-")
        flags.append(flag)
        if field.annotation is bool:  # CliImplicitFlag[bool]: --x and --no-x
            flags.append(f"no-{flag}")
    return sorted(flags)


def _refuse_unknown_flags(argv: Sequence[str]) -> None:
    # argparse would take the value of a misspelt flag for the subcommand and report
    # "invalid choice: '5'", never naming the flag; after a subcommand it says only
    # "unrecognized arguments". Flags after a subcommand are its own.
    # --http: the short alias of --http-address.
    names = [*Settings.model_fields, "http"]
    shared = sorted(name.replace("_", "-") for name in names)
    command, flags = PROG, [*shared, "version"]
    subcommands = SUBCOMMANDS
    for token in argv:
        if token == "--":
            return
        if command == PROG and token in subcommands:
            command, flags = f"{PROG} {token}", _flags(subcommands[token])
            continue
        if token.startswith("--"):
            name = token[2:].partition("=")[0]
            if name not in flags and name != "help":
                if command != PROG and name in shared:
                    raise ConfigError(
                        f"{PROG}: --{name} is a shared setting: give it before the "
                        f"subcommand ({PROG} --{name} ... {command.removeprefix(PROG + ' ')} "
                        "...), or as an environment variable"
                    )
                import difflib

                renamed = _RENAMED.get(name)
                close = (
                    [renamed] if renamed in flags else difflib.get_close_matches(name, flags, n=1)
                )
                hint = f"did you mean --{close[0]}? " if close else ""
                allowed = ", ".join(f"--{flag}" for flag in flags) or "none"
                raise ConfigError(
                    f"{PROG}: unknown flag --{cut(name)}; {hint}allowed are: {allowed}"
                    f" (see {command} --help)"
                )


#: Names a settings file may not set, with where they belong. Valid settings to the
#: model, so it would accept them there and then ignore them: the file is chosen before
#: it is read, and subcommands are chosen on the command line.
_NOT_IN_ENV_FILE = {
    "ENV_FILE": "name the settings file with --env-file or the ENV_FILE environment variable",
    "BENCH": "subcommands are chosen on the command line (eventsched bench)",
    "LESSON": "subcommands are chosen on the command line (eventsched lesson)",
    "RUN": "subcommands are chosen on the command line (eventsched run)",
    "JOBS": "subcommands are chosen on the command line (eventsched jobs)",
}


def _refuse_keys_that_cannot_be_in(env_file: Path) -> None:
    from dotenv import dotenv_values  # what pydantic-settings reads the file with

    for key in dotenv_values(env_file, encoding="utf-8"):
        where = _NOT_IN_ENV_FILE.get(key.upper())
        if where is not None:
            raise ConfigError(f"{PROG}: setting {cut(key)} cannot be given in {env_file}: {where}")
