"""Job scheduler timing: fire-time lateness beside a bare sleep_until loop, and idle CPU.

For many jobs at once (CPU and lateness of 1,000 and 10,000 interval jobs, APScheduler 3
beside eventsched) use ``python -m eventsched bench --workloads jobs --jobs N``.

Each backend runs in its own subprocess; within one run the bare loop and the
scheduler are measured back to back, alternating for ``--reps`` rounds, so that drift
on a shared machine hits both alike.

    uv run python benchmarks/bench_jobs.py                      # 200 runs x 10 ms, 10 s idle
    uv run python benchmarks/bench_jobs.py --runs 500 --reps 3 --idle 5

Rows:
  bare sleep_until   ``await anyio.sleep_until(t0 + k * interval)``; lateness on the loop clock
  eventsched job     an interval job every ``interval`` through EventScheduler (default
                     settings, SystemClock); lateness = wall time at the first line of the
                     job minus its fire time (so it includes JOB_STARTED and the task spawn)
  idle CPU           process CPU time over ``--idle`` seconds with 100 jobs, none due
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]


async def _bare(runs: int, interval: float) -> list[float]:
    import anyio

    lateness = []
    t0 = anyio.current_time() + interval
    for k in range(runs):
        deadline = t0 + k * interval
        await anyio.sleep_until(deadline)
        lateness.append(anyio.current_time() - deadline)
    return lateness


async def _scheduled(runs: int, interval: float) -> list[float]:
    # The same measurement as the bench command's timers workload.
    from eventsched._bench._timers import job_lateness

    return await job_lateness(runs, interval)


async def _idle_cpu(seconds: float, jobs: int) -> float:
    import anyio

    from eventsched import EventScheduler

    async def job() -> None:
        pass

    scheduler = EventScheduler()
    for n in range(jobs):
        scheduler.add_job(job, "interval", hours=1, id=f"idle-{n}")
    async with scheduler:
        await anyio.sleep(0.2)  # let start-up settle
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await anyio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / wall


def _child(backend: str, runs: int, interval: float, reps: int, idle: float) -> dict[str, Any]:
    import anyio

    async def main() -> dict[str, Any]:
        bare: list[float] = []
        sched: list[float] = []
        for _ in range(reps):
            bare += await _bare(runs, interval)
            sched += await _scheduled(runs, interval)
        cpu = await _idle_cpu(idle, 100) if idle > 0 else None
        return {"bare": _percentiles(bare), "jobs": _percentiles(sched), "idle_cpu": cpu}

    return anyio.run(main, backend=backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampling")
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = _child(args.child, args.runs, args.interval, args.reps, args.idle)
        print(json.dumps(result))
        return
    print(
        f"{args.runs} runs x {args.interval * 1000:g} ms, {args.reps} rep(s); "
        f"idle: 100 jobs none due, {args.idle:g} s"
    )
    print(
        f"{'backend':<8} {'bare p50/p99 ms':>16} {'job p50/p99 ms':>16} {'ratio p50/p99':>14} "
        f"{'idle CPU':>9}"
    )
    for backend in args.backends.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                backend,
                "--runs",
                str(args.runs),
                "--interval",
                str(args.interval),
                "--reps",
                str(args.reps),
                "--idle",
                str(args.idle),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        (b50, b99), (j50, j99) = r["bare"], r["jobs"]
        cpu = "n/a" if r["idle_cpu"] is None else f"{r['idle_cpu'] * 100:.3f}%"
        print(
            f"{backend:<8} {b50 * 1e3:>7.3f}/{b99 * 1e3:<8.3f} {j50 * 1e3:>7.3f}/{j99 * 1e3:<8.3f} "
            f"{j50 / b50:>6.2f}/{j99 / b99:<7.2f} {cpu:>9}"
        )


if __name__ == "__main__":
    main()
