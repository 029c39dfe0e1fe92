"""A program that runs the runtime alone, for the signal tests (not a test module).

    python tests/programs/runtime.py --backend trio --mode slow-drain --grace 30

It prints READY on stdout once the scheduler runs and its signal watcher listens; the
library's log goes to stderr. Modes choose what the handler does with each event.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import anyio
from loguru import logger

from eventsched import Event, EventScheduler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument(
        "--mode",
        choices=["idle", "slow-drain", "busy", "hang-await", "hang-shielded", "hang-blocking"],
        default="idle",
    )
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--queue", type=int, default=1000)
    parser.add_argument("--log-delay", type=float, default=0.0)
    args = parser.parse_args()

    logger.remove()
    if args.log_delay:
        # A slow log destination (a busy disk, a remote collector): each line takes time.
        def slow_stderr(message: str) -> None:
            time.sleep(args.log_delay)
            sys.stderr.write(message)
            sys.stderr.flush()

        logger.add(slow_stderr, format="{level} | {message}", level="INFO")
    else:
        logger.add(sys.stderr, format="{level} | {message}", level="INFO")
    logger.enable("eventsched")

    scheduler = EventScheduler(
        grace_period=args.grace, watchdog_margin=args.margin, queue_size=args.queue
    )

    async def handler(event: Event) -> None:
        if args.mode == "slow-drain":
            await anyio.sleep(0.2)
        elif args.mode == "busy":  # ~100 us of work that holds the loop, as real work does
            until = time.perf_counter() + 100e-6
            while time.perf_counter() < until:
                pass
            busy[0] += 1
            if not busy[0] % 10:  # a sign of life: written whole, and by no Python lock
                os.write(2, b"TICK\n")
        elif args.mode == "hang-await":
            await anyio.sleep_forever()
        elif args.mode == "hang-shielded":
            with anyio.CancelScope(shield=True):
                await anyio.sleep_forever()
        elif args.mode == "hang-blocking":
            time.sleep(3600)  # blocks the event loop itself  # noqa: ASYNC251

    busy = [0]
    scheduler.on("work", handler)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(scheduler.run)
            for i in range(args.events):
                scheduler.emit_nowait("work", {"i": i})
            print("READY", flush=True)

    anyio.run(run, backend=args.backend)
    print("EXITED", flush=True)


if __name__ == "__main__":
    main()
