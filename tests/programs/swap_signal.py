"""``run()`` with its first SIGINT landing as the signal receiver is set up (not a test module).

    python tests/programs/swap_signal.py --backend trio

anyio's signal receiver is wrapped so that the process sends itself SIGINT right after
the receiver has taken the handlers, before ``run()`` puts its guard in front of it:
when a signal sent on a job's first output arrives (the shutdown lesson's child prints
"ready" from a job about half a millisecond before). A handler of
``SHUTDOWN_REQUESTED`` prints DRAINING and hangs (grace period 30 s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import anyio

from eventsched import Event, EventScheduler, EventType

real_receiver = anyio.open_signal_receiver


@contextlib.contextmanager
def signalled_receiver(*signals: signal.Signals) -> Iterator[Any]:
    with real_receiver(*signals) as receiver:
        os.kill(os.getpid(), signal.SIGINT)
        yield receiver


async def main() -> None:
    scheduler = EventScheduler(grace_period=30)

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def hang(event: Event) -> None:
        print("DRAINING", flush=True)
        await anyio.sleep_forever()  # past any test's bound: only a forced exit ends it

    await scheduler.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["asyncio", "trio"], required=True)
    backend = parser.parse_args().backend
    anyio.open_signal_receiver = signalled_receiver  # type: ignore[assignment]
    anyio.run(main, backend=backend)
