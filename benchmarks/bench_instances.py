"""Several processes on one PostgreSQL schema against one process on the SQLite store.

Usage::

    uv run python benchmarks/bench_instances.py [--reps 3] [--seconds 6] [--jobs 50]
        [--interval 0.02] [--max-instances 100]
        [--url postgresql://postgres@127.0.0.1:5432/test]
        [--processes 1,2,4] [--base-src /tmp/base/src]

Each repetition runs, one after the other (interleaved, fresh processes each time):
SQLite with 1 process, then PostgreSQL with 1, 2 and 4 processes (half on asyncio, half
on trio), every process with the same ``--jobs`` interval jobs every ``--interval`` s
(offered: jobs / interval fire times a second), each run a bare checkpoint. Per row:
fire times run per second and start lateness (``JOB_STARTED``'s timestamp minus the
fire time) p50 and p99, over the window when every process of the row was running,
and the duplicates (a fire time run more than once, over the whole run: must be 0).
Each PostgreSQL row uses a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import anyio

CHILD = "--child"


async def child(
    store_arg: str, seconds: float, jobs: int, interval: float, max_instances: int
) -> None:
    from eventsched import Event, EventScheduler, EventType, PostgresJobStore

    scheduler = EventScheduler(queue_size=100_000, workers=4)
    if store_arg.startswith("postgres"):
        scheduler.configure_jobs(store=PostgresJobStore(store_arg))
    else:
        scheduler.configure_jobs(state_file=store_arg)
    runs: list[tuple[str, str, float]] = []

    async def started(event: Event) -> None:
        fire_time = datetime.fromisoformat(event.data["fire_time"])
        late = (event.timestamp - fire_time).total_seconds()
        runs.append((event.data["job_id"], event.data["fire_time"], late))

    scheduler.on(EventType.JOB_STARTED, started)
    for n in range(jobs):
        scheduler.add_job(
            anyio.lowlevel.checkpoint,
            "interval",
            seconds=interval,
            id=f"job{n:03}",
            coalesce=False,
            misfire_grace_time=None,
            max_instances=max_instances,
        )
    async with scheduler:
        begin = datetime.now().astimezone().isoformat()
        await anyio.sleep(seconds)
        end = datetime.now().astimezone().isoformat()
        scheduler.stop()
    print(json.dumps({"begin": begin, "end": end, "runs": runs}))


def run_row(
    store_args: list[str], backends: list[str], args: argparse.Namespace, src: str | None = None
) -> dict:
    env = dict(os.environ)
    if src is not None:  # another tree's eventsched (--base-src)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                CHILD,
                store,
                backend,
                str(args.seconds),
                str(args.jobs),
                str(args.interval),
                str(args.max_instances),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for store, backend in zip(store_args, backends, strict=True)
    ]
    results = []
    for process in children:
        out, _ = process.communicate(timeout=args.seconds + 120)
        if process.returncode != 0:
            raise SystemExit(f"a child failed with exit code {process.returncode}")
        results.append(json.loads(out))
    begin = max(datetime.fromisoformat(r["begin"]) for r in results)
    end = min(datetime.fromisoformat(r["end"]) for r in results)
    window = (end - begin).total_seconds()
    counted = Counter((job, at) for r in results for job, at, _ in r["runs"])
    inside = [
        late
        for r in results
        for _, at, late in r["runs"]
        if begin <= datetime.fromisoformat(at) < end
    ]
    lateness = sorted(inside) or [float("nan")]
    return {
        "rate": len(inside) / window if window > 0 else float("nan"),
        "p50": lateness[len(lateness) // 2] * 1000,
        "p99": lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))] * 1000,
        "duplicates": sum(n - 1 for n in counted.values() if n > 1),
        "window": window,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.02)
    # 100: no limit in practice; 1 (the default of add_job) shares the limit across
    # the processes, so a run whose end is not saved yet makes another's claim a miss.
    parser.add_argument("--max-instances", type=int, default=100)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--base-src",
        help="the src directory of another tree (a worktree of the commit before a change): "
        "each row also runs with it, right after this tree's, as a row of its own",
    )
    parser.add_argument("--processes", default="1,2,4", help="the PostgreSQL rows: process counts")
    args = parser.parse_args()
    import psycopg

    trees = {"": None} if args.base_src is None else {"": None, " (base)": args.base_src}

    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for tree, src in trees.items():
                state = str(Path(tmp) / f"state{rep}{tree.strip()}.sqlite")
                found = run_row([state], ["asyncio"], args, src)
                rows.setdefault(f"SQLite, 1 process{tree}", []).append(found)
            for count in map(int, args.processes.split(",")):
                for tree, src in trees.items():
                    schema = f"es_bench_{uuid.uuid4().hex[:10]}"
                    url = f"{args.url}?schema={schema}"
                    backends = ["asyncio", "trio", "asyncio", "trio"][:count]
                    try:
                        found = run_row([url] * count, backends, args, src)
                    finally:
                        with psycopg.connect(args.url, autocommit=True) as connection:
                            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    name = f"PostgreSQL, {count} process{'es' if count > 1 else ''}{tree}"
                    rows.setdefault(name, []).append(found)
    offered = args.jobs / args.interval
    print(
        f"{args.jobs} jobs every {args.interval * 1000:g} ms (offered {offered:,.0f} fires/s), "
        f"{args.seconds:g} s per row, {args.reps} interleaved repetitions; medians (range)"
    )
    print("| store | fires/s | lateness p50 (ms) | lateness p99 (ms) | duplicates |")
    print("| --- | --- | --- | --- | --- |")
    for name, found in rows.items():

        def cell(key: str, fmt: str, found: list[dict] = found) -> str:
            values = [r[key] for r in found]
            low, mid, high = min(values), statistics.median(values), max(values)
            return f"{mid:{fmt}} ({low:{fmt}}-{high:{fmt}})"

        duplicates = sum(r["duplicates"] for r in found)
        print(
            f"| {name} | {cell('rate', ',.0f')} | {cell('p50', '.2f')} | "
            f"{cell('p99', '.2f')} | {duplicates} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        store_arg, backend, seconds, jobs, interval, limit = sys.argv[2:8]
        anyio.run(
            child,
            store_arg,
            float(seconds),
            int(jobs),
            float(interval),
            int(limit),
            backend=backend,
        )
    else:
        main()
