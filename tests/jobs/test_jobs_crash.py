"""A crash during runs (issue 15, item 1): each fire time runs at most once, and a run a
crash cut short is reported at the next start as ``interrupted``, never silently lost.

Real processes on a real SQLite file, killed with SIGKILL while their runs are going.
"""

from __future__ import annotations

import signal
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jobtools import json_events, run_child

pytestmark = pytest.mark.anyio

CHILD = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime
    import anyio
    from eventsched import EventScheduler, EventType

    state_file, phase, backend, run_date, count = sys.argv[1:6]
    count = int(count)

    async def job():
        print("RUNNING", flush=True)
        await anyio.sleep_forever()  # until killed

    async def main():
        s = EventScheduler()
        s.configure_jobs(state_file=state_file)
        for n in range(count):
            s.add_job(job, "date", run_date=datetime.fromisoformat(run_date), id=f"job{n}")
        reported = 0
        done = anyio.Event()

        @s.on("*")
        async def show(event):
            nonlocal reported
            if str(event.type).startswith("job_"):
                print(json.dumps({"type": str(event.type), "data": event.data}), flush=True)
            if event.type == EventType.JOB_MISSED:
                reported += event.data["count"]
                if reported == count:
                    done.set()

        async with s:
            with anyio.fail_after(30):
                await done.wait()
            s.stop()
        print("NEXT", flush=True)

    anyio.run(main, backend=backend)
    """
)


async def _run_child(args: list[str], *, until: str, times: int, kill: bool) -> list[str]:
    lines, code = await run_child(args, until=until, times=times, kill=kill)
    assert code == (-signal.SIGKILL if kill else 0), lines
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 20])
async def test_runs_killed_mid_way_are_reported_interrupted_and_not_run_again(
    tmp_path: Path, anyio_backend: tuple[str, dict[str, Any]], count: int
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    state_file = tmp_path / "jobs.sqlite"
    run_date = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    args = [str(script), str(state_file), "first", anyio_backend[0], run_date, str(count)]

    # Killed once every job's code is running (the handlers may not have seen them yet).
    await _run_child(args, until="RUNNING", times=count, kill=True)

    args[2] = "restart"
    lines = await _run_child(args, until="NEXT", times=1, kill=False)
    events = json_events(lines)
    assert [e for e in events if e["type"] == "job_started"] == []  # never twice
    missed = [e["data"] for e in events if e["type"] == "job_missed"]
    assert sorted(m["job_id"] for m in missed) == sorted(f"job{n}" for n in range(count))
    for m in missed:
        assert (m["reason"], m["fire_times"]) == ("interrupted", [run_date])
