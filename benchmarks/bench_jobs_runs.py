"""CPU per job run, with and without a state file, beside APScheduler 3: fresh processes.

The ``jobs`` workload of ``eventsched bench`` compares CPU shares; this one also counts
the runs (so fire times lost to coalescing show) and adds the rows with an SQLite state
file. Each row is a fresh process; the rows are interleaved, round after round, so drift
on a shared machine hits them alike. The jobs and the measured window are the bench's
own (``eventsched._bench._manyjobs``).

    uv run python benchmarks/bench_jobs_runs.py                 # 10,000 jobs, 4 s, 3 rounds
    uv run python benchmarks/bench_jobs_runs.py --jobs 3000 --seconds 3 --rounds 2

Columns: CPU share of one core over the window, runs in the window (the fire times in it
are jobs x seconds / interval), CPU microseconds per run, start lateness p99.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

ROWS = ("aps", "asyncio", "asyncio+state", "trio", "trio+state")


def _child(row: str, jobs: int, seconds: float) -> dict[str, Any]:
    import anyio

    from eventsched._bench._manyjobs import _add_jobs, _Window

    async def main() -> dict[str, Any]:
        window = _Window(jobs, 1.0, seconds)
        if row == "aps":
            import asyncio
            import logging
            from datetime import UTC

            from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            aps = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
            _add_jobs(aps.add_job, window, jobs, 1.0)
            aps.start()
            try:
                share = await window.measure()
            finally:
                aps.shutdown(wait=False)
        else:
            from eventsched import EventScheduler

            scheduler = EventScheduler()
            _add_jobs(scheduler.add_job, window, jobs, 1.0)
            with tempfile.TemporaryDirectory() as directory:
                if row.endswith("+state"):
                    scheduler.configure_jobs(state_file=os.path.join(directory, "jobs.sqlite"))
                async with scheduler:
                    share = await window.measure()
        late = sorted(window.lateness)
        return {
            "share": share,
            "runs": len(late),
            "p99": late[int(len(late) * 0.99)] if late else None,
        }

    backend = "trio" if row.startswith("trio") else "asyncio"
    return anyio.run(main, backend=backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument(
        "--base-src",
        help="the src directory of another tree (a worktree of the commit before a change): "
        "each row runs with it too, interleaved, and the state-file ratios of both print",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.jobs, args.seconds)))
        return
    print(
        f"{args.jobs} interval jobs at 1 s, {args.seconds:g} s window "
        f"({args.jobs * args.seconds:,.0f} fire times), {time.strftime('%H:%M:%S')}"
    )
    trees = {"this": None} if args.base_src is None else {"this": None, "base": args.base_src}
    ratios: dict[str, list[str]] = {}
    shares: dict[tuple[str, str], float] = {}
    for round_ in range(1, args.rounds + 1):
        for row in args.rows.split(","):
            for tree, src in trees.items():
                r = _run_child(row, args, src)
                shares[tree, row] = r["share"]
                per_run = r["share"] * args.seconds / r["runs"] * 1e6 if r["runs"] else float("nan")
                p99 = "-" if r["p99"] is None else f"{r['p99'] * 1e3:.1f} ms"
                print(
                    f"round {round_} {tree} {row:<14} CPU {r['share']:.3f}  runs {r['runs']:>7,}  "
                    f"{per_run:6.1f} us/run  p99 {p99}",
                    flush=True,
                )
        for tree in trees:
            for backend in ("asyncio", "trio"):
                with_state = shares.get((tree, f"{backend}+state"))
                without = shares.get((tree, backend))
                if with_state and without:
                    ratios.setdefault(f"{tree} {backend}", []).append(f"{with_state / without:.2f}")
    for name, found in ratios.items():
        print(f"state file over without, {name}: {', '.join(found)}")


def _run_child(row: str, args: argparse.Namespace, src: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            row,
            "--jobs",
            str(args.jobs),
            "--seconds",
            str(args.seconds),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
