"""A crash during runs (issue 15, item 1): each fire time runs at most once, and a run a
crash cut short is reported at the next start as ``interrupted``, never silently lost.

Real processes on a real SQLite file, killed with SIGKILL while their runs are going.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

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
    """Run the child until ``times`` lines start with ``until``; then SIGKILL it, or let it end."""
    lines: list[str] = []
    buffer = ""
    async with await anyio.open_process(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        try:
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    buffer += chunk.decode()
                    *complete, buffer = buffer.split("\n")
                    lines.extend(complete)
                    if sum(line.startswith(until) for line in lines) >= times:
                        break
                if kill:
                    process.send_signal(signal.SIGKILL)
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    assert code == (-signal.SIGKILL if kill else 0), lines
    return lines


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


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
    events = _events(lines)
    assert [e for e in events if e["type"] == "job_started"] == []  # never twice
    missed = [e["data"] for e in events if e["type"] == "job_missed"]
    assert sorted(m["job_id"] for m in missed) == sorted(f"job{n}" for n in range(count))
    for m in missed:
        assert (m["reason"], m["fire_times"]) == ("interrupted", [run_date])
