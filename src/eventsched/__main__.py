"""``python -m eventsched``: see ``_cli.py`` for the command line, ``_demo.py`` for the demo."""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Entry point of ``python -m eventsched`` and of the ``eventsched`` script."""
    if sys.argv[1:] in (["--help"], ["-h"]):
        # Fast path: the text pydantic-settings renders, cached (see _help.py).
        from ._help import HELP

        sys.stdout.write(HELP)
        return 0
    from ._cli import main as cli_main

    code = cli_main()
    _exit_without_abandoned_threads(code)
    return code


def _exit_without_abandoned_threads(code: int) -> None:
    """End the process now if sync handlers or jobs abandoned at shutdown still run.

    The interpreter would wait for them at exit (anyio's worker threads on asyncio are
    not daemon threads), however long they take: the shutdown that the grace period
    and the watchdog bound would go on unbounded after the summary. Their events are
    already counted (timed out or aborted).
    """
    from ._invoke import running_threads

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


if __name__ == "__main__":
    sys.exit(main())
