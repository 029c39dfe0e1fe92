"""``eventsched``: start the chosen command, and end the process cleanly.

``main`` is the console script and what ``python -m eventsched`` calls. ``--help`` and
``--version`` answer without importing pydantic-settings (see ``_helpgen.py``); every
other run parses the settings (``_config.py``), sets up the log sinks (``_logging.py``)
and runs a subcommand (``bench``, ``lesson``, ``run``) or the demo (``_demo.py``), the
latter two through ``_launch.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from .._exit import EXIT_CONFIG, EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from .. import EventScheduler
    from ._settings import Settings

__all__ = ["main", "run"]

PROG = "eventsched"


def main(
    argv: Sequence[str] | None = None,
    *,
    customize: Callable[[EventScheduler], None] | None = None,
) -> int:
    """Run ``eventsched`` with ``argv`` (default: the process's); return the exit code.

    ``customize`` is called with the demo's scheduler before it starts (extra handlers
    for experiments and tests). If sync handlers or jobs abandoned at shutdown still run
    in worker threads, the process ends here with the exit code rather than wait for them.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--help"], ["-h"]):
        from ._help import HELP  # the text pydantic-settings renders, cached

        sys.stdout.write(HELP)
        return EXIT_OK
    if args == ["--version"]:
        from .. import __version__

        print(f"{PROG} {__version__}", flush=True)
        return EXIT_OK
    code = run(args, customize=customize)
    _exit_without_abandoned_threads(code)
    return code


def run(
    argv: Sequence[str],
    *,
    customize: Callable[[EventScheduler], None] | None = None,
) -> int:
    """Parse ``argv`` with the environment and ``.env``, then run the chosen command."""
    from ._config import ConfigError, load_settings

    try:
        settings = load_settings(argv)
    except ConfigError as error:
        print(error, file=sys.stderr, flush=True)
        return EXIT_CONFIG

    from loguru import logger
    from pydantic_settings import get_subcommand

    from ._config import Subcommand
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


def _run_demo(settings: Settings, customize: Callable[[EventScheduler], None] | None) -> int:
    from ._demo import build_scheduler
    from ._launch import import_ahead, launch

    import_ahead(settings)
    scheduler = build_scheduler(settings)
    if customize is not None:
        customize(scheduler)
    return launch(settings, scheduler)


def _exit_without_abandoned_threads(code: int) -> None:
    """End the process now if sync handlers or jobs abandoned at shutdown still run.

    The interpreter would wait for them at exit (anyio's worker threads on asyncio are
    not daemon threads), however long they take: the shutdown that the grace period
    and the watchdog bound would go on unbounded after the summary. Their events are
    already counted (timed out or aborted).
    """
    from .._invoke import running_threads

    left = running_threads()
    if left:
        from loguru import logger

        logger.warning(
            "{} sync handler or job call(s) abandoned at shutdown still run in worker "
            "threads: exiting without waiting for them",
            left,
        )
        logger.complete()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
