"""Sync-handler throughput, this tree against another, as same-run ratios.

One trivial sync handler (``--timeout``: with a per-call timeout), ``block`` policy
(every event handled), one handler task;
events/s from the first emit to the last event handled. Each measurement is a fresh
process; the two trees alternate, repetition by repetition, on each backend, and the
ratio quoted is the median of the paired ratios (this tree / the other). Figures are
in docs/benchmarks.md.

    git worktree add /tmp/base main
    uv run python benchmarks/bench_sync_handlers.py --base /tmp/base/src --reps 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import sys, time, anyio
from eventsched import EventScheduler

backend, n = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if sys.argv[3] != "none" else None

async def main():
    scheduler = EventScheduler(queue_size=1000, overflow="block")
    scheduler.on("tick", lambda event: None, timeout=timeout)
    async with scheduler:
        start = time.perf_counter()
        for i in range(n):
            await scheduler.emit("tick", {"i": i})
        while scheduler.statistics().handled < n:
            await anyio.sleep(0.001)
        elapsed = time.perf_counter() - start
    print(n / elapsed)

anyio.run(main, backend=backend)
"""


def _rate(src: str, backend: str, events: int, timeout: str) -> float:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, backend, str(events), timeout],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="src directory of the tree to compare with")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--timeout", default="none", help="the handler's timeout (s), or none")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    report = {}
    for backend in ("asyncio", "trio"):
        pairs = []
        for _ in range(args.reps):
            base = _rate(args.base, backend, args.events, args.timeout)
            new = _rate(here, backend, args.events, args.timeout)
            pairs.append((new, base))
        report[backend] = {
            "this_tree_median": statistics.median(new for new, _ in pairs),
            "base_median": statistics.median(base for _, base in pairs),
            "ratio_median": statistics.median(new / base for new, base in pairs),
            "ratios": [round(new / base, 2) for new, base in pairs],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
