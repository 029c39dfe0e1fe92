"""Instructions per ``add_job`` call, by callgrind (issue 16, jobs at scale).

An application with 50,000 jobs makes 50,000 ``add_job`` calls before its scheduler
starts. For each tree this runs a child that adds N hourly interval jobs (as
bench_jobs_startup.py does, before start) under ``valgrind --tool=callgrind``, with
``--small`` and ``--large`` jobs, and prints ``(count(large) - count(small)) /
(large - small)``: the instructions one more ``add_job`` costs, start-up and exit taken
out. ``PYTHONHASHSEED=0`` keeps string hashing the same in every run. Timings on a
shared machine move by 2x between processes; instruction counts do not.

Needs valgrind. Figures are in docs/benchmarks.md.

    uv run python benchmarks/count_add_job.py --src /tmp/base/src src
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _callgrind import instructions

_CHILD = r"""
import sys

from eventsched import EventScheduler


async def job():
    return None


scheduler = EventScheduler()
for n in range(int(sys.argv[1])):
    scheduler.add_job(job, "interval", hours=1, id=f"job-{n}")
"""


def _count(src: str, jobs: int, script: str) -> int:
    return instructions(src, script, str(jobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", nargs="+", required=True, help="src directories to count")
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=4_000)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as child:
        child.write(_CHILD)
    try:
        for src in args.src:
            small = _count(src, args.small, child.name)
            large = _count(src, args.large, child.name)
            per_job = (large - small) / (args.large - args.small)
            print(f"{src}  {per_job:10,.0f} instructions/add_job")
    finally:
        os.unlink(child.name)


if __name__ == "__main__":
    main()
