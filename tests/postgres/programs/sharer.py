"""One of several processes sharing a PostgreSQL job store (tests/postgres/test_processes.py).

``sharer.py STATE_URL BACKEND SECONDS OUTPUT [RUN_SECONDS [announce] [lease=S]
[max_instances=N]]``: 20 interval jobs every 50 ms, each run 30 ms long (or
RUN_SECONDS), for SECONDS (``stdin``: until a line or the end of stdin); every run
that ends and every fire time reported missed is written to OUTPUT as ``run JOB
FIRE_TIME`` or ``missed JOB REASON FIRE_TIME DETECTED_AT``, one line each (a report
that lists only its first fire times adds ``unlisted JOB REASON AFTER LAST``), and each
run's wall-clock start and end as ``span JOB START END`` (POSIX seconds). With
``announce``, the start of each run is also printed on stdout (``start JOB``), so that
a test can act while one is running. ``lease=S``: the store's lease (seconds before a
silent process is dead). ``max_instances=N``: the jobs' limit (default 100: no limit
in practice).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import TextIO

import anyio

from eventsched import Event, EventScheduler, EventType, PostgresJobStore

JOBS = 20
INTERVAL = 0.05


async def main(
    url: str,
    seconds: float | None,
    lines: TextIO,
    length: float,
    announce: bool,
    lease: float,
    limit: int,
) -> None:
    scheduler = EventScheduler(queue_size=10_000, workers=4, grace_period=10)
    scheduler.configure_jobs(store=PostgresJobStore(url, lease=lease))

    async def ran(event: Event) -> None:
        lines.write(f"run {event.data['job_id']} {event.data['fire_time']}\n")

    async def missed(event: Event) -> None:
        data = event.data
        for at in data["fire_times"]:
            lines.write(f"missed {data['job_id']} {data['reason']} {at} {data['detected_at']}\n")
        if data["count"] > len(data["fire_times"]):  # the event lists the first ten
            first, last = data["fire_times"][-1], data["last_fire_time"]
            lines.write(f"unlisted {data['job_id']} {data['reason']} {first} {last}\n")

    def work(job_id: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            start = time.time()
            await anyio.sleep(length)
            lines.write(f"span {job_id} {start} {time.time()}\n")

        return run

    async def started(event: Event) -> None:
        print(f"start {event.data['job_id']}", flush=True)

    if announce:
        scheduler.on(EventType.JOB_STARTED, started)
    scheduler.on(EventType.JOB_COMPLETED, ran)
    scheduler.on(EventType.JOB_MISSED, missed)
    for n in range(JOBS):
        # Every fire time runs, however late (a loaded machine): gaps would be ours.
        scheduler.add_job(
            work(f"job{n:02}"),
            "interval",
            seconds=INTERVAL,
            id=f"job{n:02}",
            coalesce=False,
            misfire_grace_time=None,
            max_instances=limit,
        )
    async with scheduler:
        print("started", flush=True)
        if seconds is None:  # as long as the test wants: until it says so
            await anyio.to_thread.run_sync(sys.stdin.readline)
        else:
            await anyio.sleep(seconds)  # the length of the run
        scheduler.stop()


if __name__ == "__main__":
    url, backend, seconds, output = sys.argv[1:5]
    length = float(sys.argv[5]) if len(sys.argv) > 5 else 0.03
    options = sys.argv[6:]
    announce = "announce" in options
    lease = next((float(o[6:]) for o in options if o.startswith("lease=")), 5.0)
    limit = next((int(o[14:]) for o in options if o.startswith("max_instances=")), 100)
    with open(output, "a", buffering=1) as lines:  # a line each, flushed as written
        until = None if seconds == "stdin" else float(seconds)
        anyio.run(main, url, until, lines, length, announce, lease, limit, backend=backend)
