"""Start-up with many saved jobs: an SQLite state file, fresh processes, two source trees.

A first process (per tree) writes the state file: N hourly interval jobs, started, saved,
stopped. Then each measured process adds the same N jobs, enters the scheduler and
awaits ``flush_state()``: the CPU time (``time.process_time``, worker threads included)
and wall time of that, the CPU time of loading the file alone (the store's ``load``),
the garbage collector's time and collections within it (``gc.callbacks``), the page
faults within it (each new 4 KiB of memory; ~3 us each on a virtual machine), and the
rows saved (none should be: nothing changed). The trees alternate, round after
round, so drift on a shared machine hits them alike; a round's ratio is taken within it.

    git worktree add /tmp/sq-base <commit>      # the tree to compare against
    uv run python benchmarks/bench_jobs_startup.py --base /tmp/sq-base/src
    uv run python benchmarks/bench_jobs_startup.py --jobs 50000 --rounds 5 --base ...

Without ``--base`` only this tree is measured. ``--changed``: the worst case, every
job's definition changed since the file was written (hourly jobs saved, two-hourly
ones added: every row read again, checked, and rewritten); each round starts from a
copy of the file as first written.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent / "src"


def _child(path: str, jobs: int, hours: int) -> dict[str, Any]:
    import anyio

    import eventsched
    from eventsched import EventScheduler, SQLiteJobStore

    saved_rows = 0
    load_cpu = 0.0
    original_save = SQLiteJobStore.save
    original_load = SQLiteJobStore.load

    async def counting_save(self: Any, changes: Any) -> Any:
        nonlocal saved_rows
        saved_rows += len(changes)
        return await original_save(self, changes)

    async def timed_load(self: Any) -> Any:
        nonlocal load_cpu
        start = time.process_time()
        try:
            return await original_load(self)
        finally:
            load_cpu = time.process_time() - start

    SQLiteJobStore.save = counting_save  # type: ignore[method-assign]
    SQLiteJobStore.load = timed_load  # type: ignore[method-assign]
    original_columns = getattr(SQLiteJobStore, "load_columns", None)
    if original_columns is not None:  # the bulk read at start (this tree, not older ones)

        async def timed_columns(self: Any, *args: Any) -> Any:
            nonlocal load_cpu
            start = time.process_time()
            try:
                return await original_columns(self, *args)
            finally:
                load_cpu = time.process_time() - start

        SQLiteJobStore.load_columns = timed_columns  # type: ignore[attr-defined]

    async def job() -> None:
        return None

    # The garbage collector's time within the measured window (its callbacks).
    collections = {"ms": 0.0, "count": 0, "start": 0.0, "on": False}

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections["start"] = time.perf_counter()
        elif collections["on"]:
            collections["ms"] += (time.perf_counter() - collections["start"]) * 1000
            collections["count"] += 1

    gc.callbacks.append(on_collection)

    async def main() -> dict[str, Any]:
        scheduler = EventScheduler()
        scheduler.configure_jobs(state_file=path)
        add_cpu = time.process_time()
        for n in range(jobs):
            scheduler.add_job(job, "interval", hours=hours, id=f"job-{n}")
        add_cpu = time.process_time() - add_cpu
        collections["on"] = True
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = time.process_time()
        wall = time.perf_counter()
        async with scheduler:
            await scheduler.jobs.flush_state()
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            collections["on"] = False
        return {
            "cpu": cpu,
            "wall": wall,
            "load_cpu": load_cpu,
            "add_cpu": add_cpu,
            "rows": saved_rows,
            "gc_ms": collections["ms"],
            "gc_count": collections["count"],
            "faults": faults,
            "module": os.path.dirname(eventsched.__file__),
        }

    return anyio.run(main)


def _spread(path: str) -> None:
    """Make the saved rows look like a schedule that has run: each job its own next
    fire time one to two hours ahead (none falls due during the rounds), its last one
    within the past hour, and a last outcome."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE jobs SET"
            " next_fire_time = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now',"
            "   '+' || (3600 + (abs(random()) % 3600000) / 1000.0) || ' seconds'),"
            " last_fire_time = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now',"
            "   '-' || ((abs(random()) % 3600000) / 1000.0) || ' seconds'),"
            " last_outcome = 'completed'"
        )
    conn.close()


def _run(tree: str, path: str, jobs: int, hours: int = 1) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, "--jobs", str(jobs), "--hours", str(hours)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if not result["module"].startswith(tree):
        raise SystemExit(f"the child imported {result['module']}, not the tree {tree}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="the src directory of the tree to compare against")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="give the saved jobs distinct fire times, a last fire time and outcome",
    )
    parser.add_argument(
        "--changed",
        action="store_true",
        help="every job's definition changed since the file was written (the worst case)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--hours", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.jobs, args.hours)))
        return
    trees = {"this": str(HERE)}
    if args.base:
        trees["base"] = str(Path(args.base).resolve())
    print(
        f"start-up with {args.jobs:,} saved hourly jobs"
        f"{' (spread)' if args.spread else ''}{' (all changed)' if args.changed else ''}, "
        f"{time.strftime('%H:%M:%S')} UTC, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as directory:
        files = {name: os.path.join(directory, f"{name}.sqlite") for name in trees}
        for name, tree in trees.items():
            _run(tree, files[name], args.jobs)  # writes the file (and migrates none)
            if args.spread:
                _spread(files[name])
            if args.changed:
                shutil.copyfile(files[name], files[name] + ".first")
        ratios, add_ratios = [], []
        for round_ in range(1, args.rounds + 1):
            order = list(trees) if round_ % 2 else list(reversed(trees))
            results = {}
            for name in order:
                if args.changed:  # as first written: every row's definition differs again
                    shutil.copyfile(files[name] + ".first", files[name])
                results[name] = _run(trees[name], files[name], args.jobs, 2 if args.changed else 1)
            for name in order:
                r = results[name]
                print(
                    f"round {round_} {name:<5} CPU {r['cpu']:.3f} s  wall {r['wall']:.3f} s  "
                    f"load CPU {r['load_cpu']:.3f} s  GC {r['gc_ms']:.1f} ms "
                    f"({r['gc_count']})  page faults {r['faults']}  "
                    f"rows saved {r['rows']}  "
                    f"add_job CPU {r['add_cpu']:.2f} s"
                )
            if "base" in results:
                ratios.append(results["this"]["cpu"] / results["base"]["cpu"])
                add_ratios.append(results["this"]["add_cpu"] / results["base"]["add_cpu"])
        if ratios:
            print(
                f"CPU this/base: median {statistics.median(ratios):.2f} "
                f"(range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds)"
            )
            print(
                f"add_job CPU this/base: median {statistics.median(add_ratios):.2f} "
                f"(range {min(add_ratios):.2f}-{max(add_ratios):.2f})"
            )


if __name__ == "__main__":
    main()
