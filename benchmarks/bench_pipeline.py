"""Throughput of emit -> stream -> dispatch -> trivial async handler, beside references.

A shortcut for ``python -m eventsched bench --workloads throughput`` (see
docs/benchmarks.md): each backend in its own subprocess, repetitions interleaved, rows
for the ceiling (bare send_nowait/receive_nowait), Event.create alone, the idiomatic
anyio pipeline, the original demo's asyncio.Queue pipeline, and eventsched with 1 and 4
handler tasks. Extra arguments go to the command:

    uv run python benchmarks/bench_pipeline.py --reps 7 --events 200000
"""

from __future__ import annotations

import subprocess
import sys

if __name__ == "__main__":
    command = [sys.executable, "-m", "eventsched", "bench", "--workloads", "throughput"]
    sys.exit(subprocess.call([*command, *sys.argv[1:]]))
