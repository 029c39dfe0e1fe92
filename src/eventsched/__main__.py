"""``python -m eventsched``: run the demo application until Ctrl+C or SIGTERM."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the demo on the backend named by ``--backend`` or ``BACKEND`` (asyncio)."""
    import anyio
    from loguru import logger

    from eventsched import Event, EventScheduler, EventType

    args = sys.argv[1:] if argv is None else argv
    backend = os.environ.get("BACKEND", "asyncio")
    if "--backend" in args:
        backend = args[args.index("--backend") + 1]
    logger.remove()
    logger.add(
        sys.stderr,
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} | {level} | {message}",
        level=os.environ.get("LOG_LEVEL", "INFO"),
    )
    logger.enable("eventsched")
    scheduler = EventScheduler(grace_period=2.0)

    @scheduler.on(EventType.JOB_COMPLETED)
    async def completed(event: Event) -> None:
        logger.info("Job {} completed", event.data.get("job_id"))

    async def tick() -> None:
        while True:
            await anyio.sleep(2)
            await scheduler.emit(EventType.JOB_COMPLETED, {"job_id": "tick"})

    async def app() -> None:
        logger.info("Starting the scheduler application...")
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            await scheduler.run()
            tg.cancel_scope.cancel()

    anyio.run(app, backend=backend)
    logger.complete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
