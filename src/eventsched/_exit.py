"""Exit codes of ``python -m eventsched``, in one place.

Every entry point (the command line, ``bench``, ``lesson``, the forced exits of the
signal guard and the watchdog) ends the process with one of these.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGQUIT",
    "EXIT_SIGTERM",
    "EXIT_WATCHDOG",
]

#: Graceful shutdown (every accepted event accounted for); a lesson whose claims held.
EXIT_OK: Final = 0
#: Something failed while running: an unexpected error, a lesson claim that did not
#: hold, a benchmark that could not finish.
EXIT_ERROR: Final = 1
#: Bad configuration or usage: nothing was started.
EXIT_CONFIG: Final = 2
#: The shutdown watchdog fired: something did not stop within grace + margin.
#: 124 is what ``timeout(1)`` uses for "it ran out of time".
EXIT_WATCHDOG: Final = 124
#: Forced by a SIGINT during shutdown (128 + 2), as shells report it: the code is
#: the forcing signal's own, whatever began the shutdown.
EXIT_SIGINT: Final = 130
#: Forced by a SIGTERM during shutdown (128 + 15).
EXIT_SIGTERM: Final = 143
#: Forced by a SIGHUP during shutdown (128 + 1).
EXIT_SIGHUP: Final = 129
#: Forced by SIGQUIT (128 + 3): Ctrl+\ means "quit now", with the summary.
EXIT_SIGQUIT: Final = 131
