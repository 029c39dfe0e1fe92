"""``eventsched run MODULE:ATTRIBUTE``: run your own scheduler exactly as the demo runs.

The same settings apply (backend, logging, duration, state file, ``--http``), and the
same signals, watchdog, summary and exit codes (see ``_launch.py``).

The rule for the settings the scheduler object already fixes: **the application's
constructor wins.** ``QUEUE_SIZE``, ``OVERFLOW``, ``WORKERS`` and ``GRACE_PERIOD`` are
arguments of ``EventScheduler(...)``, which the user's module has already called;
giving one of them to ``run`` (flag, environment or ``.env``) is an error (one line,
exit 2) rather than silently ignored, since an operator who sets ``GRACE_PERIOD=30``
expects it to hold. ``DEMO_MESSAGE`` belongs to the demo alone and is refused the same
way. ``STATE_FILE`` is applied (``configure_jobs``) when the application set none, and
refused when it set a different one. ``TIMEZONE``, when given, is the same: applied as
the default of the jobs that name no zone (``configure_jobs(timezone=)``, which reaches
jobs added before it too), and refused when the application configured another.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, Field
from pydantic_settings import CliPositionalArg

if TYPE_CHECKING:
    from .. import EventScheduler
    from ._settings import Settings

__all__ = ["APP_FIXED", "RunCommand"]

EXIT_USAGE = 2

#: Settings the application's ``EventScheduler(...)`` call fixes, with the argument.
APP_FIXED: Final = ("queue_size", "overflow", "workers", "grace_period")

#: Where the frames that are not the user's live: this package, and the import system.
_PACKAGE_DIR: Final = str(Path(__file__).resolve().parent.parent)


class RunCommand(BaseModel):
    """Run your own EventScheduler as the demo runs: eventsched run myapp.tasks:scheduler."""

    target: CliPositionalArg[str] = Field(
        description="MODULE:ATTRIBUTE naming an EventScheduler, or a function taking no "
        "arguments that returns one"
    )

    def run(self, settings: Settings) -> int:
        """Load the target, apply the rule above, then run it; return the exit code."""
        from ._config import PROG
        from ._target import TargetError, TargetFailed, load_scheduler

        problem = _given_but_fixed(settings)
        if problem is not None:
            print(f"{PROG} run: {problem}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        from ._launch import import_ahead, launch

        import_ahead(settings)
        try:
            scheduler = load_scheduler(self.target)
        except TargetError as error:
            print(f"{PROG} {error}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        except TargetFailed as error:
            # The user's bug: their traceback, then the line saying what failed.
            if error.__cause__ is not None:
                _print_users_traceback(error.__cause__)
            print(f"{PROG} run: {error}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        problem = _apply_state_file(settings, scheduler) or _apply_timezone(settings, scheduler)
        if problem is not None:
            print(f"{PROG} run: {problem}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        return launch(settings, scheduler)


def _flag(field: str) -> str:
    from ._settings import env_name

    return f"{env_name(field)} (--{field.replace('_', '-')})"


def _given_but_fixed(settings: Settings) -> str | None:
    given = settings.model_fields_set
    fixed = [field for field in APP_FIXED if field in given]
    if fixed:
        names = ", ".join(_flag(field) for field in fixed)
        them = "them" if len(fixed) > 1 else "it"
        return (
            f"{names}: fixed by the application's EventScheduler(...) call; leave "
            f"{them} out and set {them} where your module builds the scheduler"
        )
    if "demo_message" in given:
        return f"{_flag('demo_message')}: applies to the demo only; leave it out"
    return None


def _apply_state_file(settings: Settings, scheduler: EventScheduler) -> str | None:
    """Give the scheduler ``STATE_FILE`` unless it has its own; a conflict is the message."""
    if settings.state_file is None:
        return None
    own = scheduler.jobs.state_file
    if own is None:
        scheduler.configure_jobs(state_file=settings.state_file)
        return None
    if Path(own).resolve() == settings.state_file.resolve():
        return None
    from ._config import shown

    return (
        f"{_flag('state_file')} = {shown(str(settings.state_file))}: the application "
        f"already keeps its jobs in {shown(own)} (configure_jobs); leave it out"
    )


def _apply_timezone(settings: Settings, scheduler: EventScheduler) -> str | None:
    """Give the scheduler ``TIMEZONE`` if given, unless it configured another itself."""
    if "timezone" not in settings.model_fields_set:
        return None  # the default, UTC, is the library's own default too
    from .._jobs._triggers import to_timezone

    wanted = to_timezone(settings.timezone)
    own = scheduler.jobs.timezone
    if not scheduler.jobs.timezone_configured:
        scheduler.configure_jobs(timezone=wanted)
        return None
    if str(own) == str(wanted):
        return None
    from ._config import shown

    return (
        f"{_flag('timezone')} = {shown(settings.timezone)}: the application already set "
        f"the jobs' timezone to {shown(str(own))} (configure_jobs); leave it out"
    )


def _not_users(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or "importlib" in filename


def _print_users_traceback(error: BaseException) -> None:
    """Print ``error``'s traceback from the user's first frame (loading it is ours)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None and _not_users(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(error.with_traceback(tb), file=sys.stderr)
    sys.stderr.flush()
