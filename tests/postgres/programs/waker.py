"""Two processes and one paused job: one resumes it, the other fires it (test_processes.py).

``waker.py STATE_URL BACKEND ROLE``: prints ``ready`` once imported, then reads RUN_DATE
(ISO) from its input (so that the test sets the fire time after both start-ups, which
take seconds on a loaded machine): a date job ``j`` at RUN_DATE, added paused. ROLE
``hold``: prints ``started``, then waits (at most 30 s) for the job to run and prints
``ran FIRE_TIME STARTED_AT``; its store never polls within that time, so only a NOTIFY
can wake it. ROLE ``resume``: resumes the job, saves, stops at once, and prints
``resumed``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import anyio

from eventsched import Event, EventScheduler, EventType, PostgresJobStore


async def noop() -> None:
    await anyio.lowlevel.checkpoint()


async def main(url: str, role: str, run_date: datetime) -> None:
    scheduler = EventScheduler()
    scheduler.configure_jobs(store=PostgresJobStore(url, poll_interval=600))
    scheduler.add_job(noop, "date", run_date=run_date, id="j", paused=True)
    ran = anyio.Event()

    async def started(event: Event) -> None:
        print(f"ran {event.data['fire_time']} {datetime.now(UTC).isoformat()}", flush=True)
        ran.set()

    scheduler.on(EventType.JOB_STARTED, started)
    async with scheduler:
        if role == "resume":
            scheduler.resume_job("j")
            await scheduler.jobs.flush_state()
            scheduler.stop()
            print("resumed", flush=True)
            return
        print("started", flush=True)
        with anyio.move_on_after(30):
            await ran.wait()
        scheduler.stop()


if __name__ == "__main__":
    url, backend, role = sys.argv[1:4]
    print("ready", flush=True)
    when = sys.stdin.readline().strip()
    anyio.run(main, url, role, datetime.fromisoformat(when), backend=backend)
