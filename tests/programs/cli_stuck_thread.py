"""``python -m eventsched`` with a sync handler that never returns (not a test module).

    python tests/programs/cli_stuck_thread.py --backend asyncio --grace-period 0.5

The handler of SHUTDOWN_REQUESTED sleeps for a minute in its worker thread: shutdown
abandons it when the grace period ends. The command line must then end the process
rather than wait at interpreter exit for that thread (anyio's threads on asyncio are
not daemon threads).
"""

from __future__ import annotations

import sys
import time

from eventsched import Event, EventScheduler, EventType
from eventsched.cli import main


def customize(scheduler: EventScheduler) -> None:
    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    def stuck(event: Event) -> None:
        time.sleep(60)


sys.argv[0] = "eventsched"
sys.exit(main(customize=customize))
