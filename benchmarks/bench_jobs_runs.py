"""CPU per job run, lateness and fire times, with and without a state file, beside
APScheduler 3 and (``--base``) an earlier commit: fresh processes.

The rows are the ``jobs`` workload's of ``eventsched bench``
(``eventsched._bench._manyjobs``: the same jobs, window and counting of fire times),
plus rows with an SQLite state file, and rows of another eventsched source tree
(``--base WORKTREE/src``: that tree's scheduler, measured by this tree's code). Each row
is a fresh process; the rows are interleaved, round after round, so drift on a shared
machine hits them alike. Ratios are taken within a round, then their median and range
given.

    uv run python benchmarks/bench_jobs_runs.py                 # 10,000 jobs, 4 s, 3 rounds
    uv run python benchmarks/bench_jobs_runs.py --jobs 3000 --seconds 3 --rounds 2
    git worktree add /tmp/base COMMIT
    uv run python benchmarks/bench_jobs_runs.py --rows aps,trio --base /tmp/base/src

Columns: CPU share of one core over the window, the window's fire times that ran (and
missed, by reason), CPU microseconds per run, start lateness p99.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = ("aps", "asyncio", "asyncio+state", "trio", "trio+state")
_MEASURE = Path(__file__).resolve().parent.parent / "src/eventsched/_bench/_manyjobs.py"


def _measuring_module(src: str | None) -> Any:
    """This tree's ``_manyjobs``, on top of the eventsched in ``src`` (or this one)."""
    if src is None:
        from eventsched._bench import _manyjobs

        return _manyjobs
    sys.path.insert(0, src)
    import eventsched._bench

    name = "eventsched._bench._manyjobs_here"
    spec = importlib.util.spec_from_file_location(name, _MEASURE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    assert str(eventsched._bench.__file__).startswith(src), "not the --src tree"
    return module


def _scatter(measure: Any) -> None:
    """Add the jobs in an order unrelated to their fire times (the same for every row):
    the rows of the state file then lie in that order, as with jobs of several
    intervals or cron jobs, so a pass's claims are on as many pages as it has jobs."""
    import random

    add_jobs = measure._add_jobs

    def scattered(add_job: Any, window: Any, count: int, interval: float, job: Any = None) -> None:
        order = list(range(count))
        random.Random(16).shuffle(order)
        picked = iter(order)

        def add_one(func: Any, *args: Any, **kwargs: Any) -> Any:
            k = next(picked)  # the k-th job's call adds this job instead
            kwargs.update(start_date=window.first_fire(k), id=f"bench-{k}", args=(k,))
            return add_job(func, *args, **kwargs)

        add_jobs(add_one, window, count, interval, job)

    measure._add_jobs = scattered


def _child(row: str, jobs: int, seconds: float, src: str | None, order: str) -> dict[str, Any]:
    measure = _measuring_module(src)
    import anyio

    if order == "scattered":
        _scatter(measure)

    with tempfile.TemporaryDirectory() as directory:
        if row == "aps":
            main = measure.apscheduler_row(jobs, 1.0, seconds)
        else:
            state = f"{directory}/jobs.sqlite" if row.endswith("+state") else None
            main = measure.eventsched_row(jobs, 1.0, seconds, state_file=state)
        backend = "trio" if row.startswith("trio") else "asyncio"
        result = anyio.run(main, backend=backend)
    late = sorted(result.lateness)
    return {
        "share": result.share,
        "fires": result.fires,
        "ran": result.ran,
        "missed": result.missed,
        "unreported": result.unreported,
        "p99": late[int(len(late) * 0.99)] if late else None,
    }


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    text = f"{statistics.median(values):.2f}"
    return text + (f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else "")


def _ratios(rounds: list[dict[str, dict[str, Any]]], row: str, other: str, key: str) -> str:
    pairs = [
        r[row][key] / r[other][key]
        for r in rounds
        if row in r and other in r and r[row][key] and r[other][key]
    ]
    return _spread(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument(
        "--base",
        "--base-src",
        dest="base",
        help="an eventsched src directory: its rows too, as 'base:ROW'",
    )
    parser.add_argument(
        "--order",
        choices=("fire", "scattered"),
        default="fire",
        help="the order the jobs are added (so their rows lie) in: that of their fire "
        "times (the bench's), or one unrelated to them",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.jobs, args.seconds, args.src, args.order)))
        return
    rows = args.rows.split(",")
    if args.base:
        rows += [f"base:{row}" for row in rows if row != "aps"]
    print(
        f"{args.jobs} interval jobs at 1 s, {args.seconds:g} s window "
        f"({args.jobs * args.seconds:,.0f} fire times), added in {args.order} order, "
        f"{time.strftime('%H:%M:%S')}"
    )
    rounds: list[dict[str, dict[str, Any]]] = []
    for round_ in range(1, args.rounds + 1):
        results: dict[str, dict[str, Any]] = {}
        # The order rotates each round: no row always follows the same one.
        shift = (round_ - 1) % len(rows)
        for row in rows[shift:] + rows[:shift]:
            name, src = (row[5:], args.base) if row.startswith("base:") else (row, None)
            command = [sys.executable, __file__, "--child", name, "--jobs", str(args.jobs)]
            command += ["--seconds", str(args.seconds), "--order", args.order]
            command += ["--src", src] if src else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = results[row] = json.loads(out.strip().splitlines()[-1])
            per_run = r["share"] * args.seconds / r["ran"] * 1e6 if r["ran"] else float("nan")
            p99 = "-" if r["p99"] is None else f"{r['p99'] * 1e3:.1f} ms"
            missed = "".join(f", {reason} {n}" for reason, n in r["missed"].items())
            print(
                f"round {round_} {row:<19} CPU {r['share']:.3f}  ran {r['ran']:>7,} of "
                f"{r['fires']:,}{missed}, unreported {r['unreported']}  "
                f"{per_run:6.1f} us/run  p99 {p99}",
                flush=True,
            )
        rounds.append(results)
    print("ratios within a round, median (min-max):")
    for row in rows:
        # "+state" over the same backend without a state file: the 1.3x target.
        plain = row.removesuffix("+state")
        for other in ("aps", f"base:{row}", plain):
            if row != other and any(other in r for r in rounds) and row != "aps":
                print(
                    f"  {row} / {other}: CPU {_ratios(rounds, row, other, 'share')}, "
                    f"p99 {_ratios(rounds, row, other, 'p99')}"
                )


if __name__ == "__main__":
    main()
