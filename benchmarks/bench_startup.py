"""Time ``python -m eventsched --help`` (the budget is 0.6 s): best and median of N runs.

Usage: ``uv run python benchmarks/bench_startup.py [runs]``. Also times the full
settings path (``--backend trio --help``, which builds the pydantic-settings parser)
for comparison. Shared machines are noisy: the best run is the figure that holds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def measure(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "eventsched", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=30,
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for args in (["--help"], ["--backend", "trio", "--help"]):
        times = measure(args, runs)
        print(
            f"python -m eventsched {' '.join(args):<22} best {min(times):.3f} s, "
            f"median {statistics.median(times):.3f} s ({runs} runs)"
        )


if __name__ == "__main__":
    main()
