"""Instructions and page faults of a start-up with saved jobs (issue 16, jobs at scale).

``bench_jobs_startup.py`` times start-ups in fresh processes; on this machine the same
code's wall time moves by half from one process to the next. This counts what does not
move: the instructions executed from entering the scheduler to the end of its first
``flush_state()``, both threads (callgrind's counters dumped at both ends with
``callgrind_control``, so the ``add_job`` calls before and the exit after are not
counted), and the page faults of the same window in a run without valgrind
(``ru_minflt``: a new 4 KiB page costs ~3 us on this machine).

For each tree: a state file written by that tree (N hourly jobs started, saved,
stopped; ``--spread`` as in bench_jobs_startup.py), then one start-up counted.
``PYTHONHASHSEED=0`` keeps hashing the same in every run. Needs valgrind; a start-up
of 10,000 jobs takes ~20 s under it. Figures are in docs/benchmarks.md.

    git worktree add /tmp/base <commit>
    uv run python benchmarks/count_startup.py --jobs 10000 --src /tmp/base/src src
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_jobs_startup import _spread

_CHILD = r"""
import os, resource, subprocess, sys, time

import anyio

from eventsched import EventScheduler

path, jobs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def mark(n):
    # Dump (and zero) callgrind's counters: the window is what the second dump holds.
    if mode != "count":
        return
    command = ["callgrind_control", "-d", f"w{n}", str(os.getpid())]
    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not os.path.exists(f"{sys.argv[4]}.{n}"):
        if time.monotonic() > deadline:
            raise SystemExit("callgrind wrote no dump")
        time.sleep(0.001)


async def job():
    return None


async def main():
    scheduler = EventScheduler()
    scheduler.configure_jobs(state_file=path)
    for n in range(jobs):
        scheduler.add_job(job, "interval", hours=1, id=f"job-{n}")
    mark(1)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    async with scheduler:
        await scheduler.jobs.flush_state()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        mark(2)
    print(faults)


anyio.run(main)
"""


def _run(src: str, child: str, *args: str, valgrind: list[str] | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=src, PYTHONHASHSEED="0")
    command = [*(valgrind or []), sys.executable, child, *args]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _count(src: str, child: str, jobs: int, spread: bool) -> tuple[int, int]:
    """The window's instructions and page faults for the tree ``src``."""
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "jobs.sqlite")
        _run(src, child, path, str(jobs), "write")  # written (and stopped) by this tree
        if spread:
            _spread(path)
            _run(src, child, path, str(jobs), "write")  # the start after the spread
        faults = int(_run(src, child, path, str(jobs), "faults"))
        out = str(Path(directory) / "callgrind.out")
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        _run(src, child, path, str(jobs), "count", out, valgrind=valgrind)
        found = re.search(r"^(?:summary|totals): (\d+)", Path(f"{out}.2").read_text(), re.M)
        if found is None:
            raise SystemExit(f"no total in {out}.2")
        return int(found.group(1)), faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", nargs="+", required=True, help="src directories to count")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--spread", action="store_true", help="as bench_jobs_startup.py's")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as child:
        child.write(_CHILD)
    try:
        for src in args.src:
            instructions, faults = _count(src, child.name, args.jobs, args.spread)
            print(
                f"{src}  {instructions:>13,} instructions  {faults:>7,} page faults  "
                f"({args.jobs:,} jobs{', spread' if args.spread else ''})"
            )
    finally:
        os.unlink(child.name)


if __name__ == "__main__":
    main()
