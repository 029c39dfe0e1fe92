"""``EventScheduler.run()`` with a handler or job raising a BaseException (not a test module).

    python tests/programs/user_exit.py --backend asyncio --where job --kind exit

``--kind``: ``exit`` (SystemExit(3)), ``interrupt`` (KeyboardInterrupt), ``generator``
(GeneratorExit) or ``own`` (a BaseException subclass of the program's). A job fires
at start; with ``--where handler`` it emits the event whose handler raises. Once the
failure is handled the program calls ``stop()``, which is all that ends the scheduler
unless the exception itself does. ``run()`` is awaited directly, so that what it
raises is what the program raises.
"""

from __future__ import annotations

import argparse
import sys

import anyio
from loguru import logger

from eventsched import Event, EventScheduler, EventType


class OwnBaseException(BaseException):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--where", choices=["handler", "job"], default="job")
    parser.add_argument("--kind", choices=["exit", "interrupt", "generator", "own"], default="exit")
    args = parser.parse_args()

    logger.remove()
    logger.add(sys.stderr, format="{level} | {message}", level="INFO")
    logger.enable("eventsched")

    scheduler = EventScheduler(grace_period=5.0)

    def fail() -> None:
        error: BaseException = {
            "exit": SystemExit(3),
            "interrupt": KeyboardInterrupt(),
            "generator": GeneratorExit(),
            "own": OwnBaseException("mine"),
        }[args.kind]
        raise error

    async def failing_job() -> None:
        fail()

    async def emitting_job() -> None:
        await scheduler.emit("fail", {})
        await scheduler.emit("done", {})

    async def failing_handler(event: Event) -> None:
        fail()

    async def then_stop(event: Event) -> None:
        scheduler.stop(reason="the program saw the failure")

    if args.where == "job":
        scheduler.add_job(failing_job, "date", id="failing")
        scheduler.on(EventType.JOB_FAILED, then_stop)
    else:
        scheduler.add_job(emitting_job, "date", id="emitting")
        scheduler.on("fail", failing_handler)
        scheduler.on("done", then_stop)

    async def run() -> None:
        await scheduler.run()

    anyio.run(run, backend=args.backend)
    print("RETURNED", flush=True)


if __name__ == "__main__":
    main()
