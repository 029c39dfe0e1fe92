"""CPU per claim row saved to an SQLite state file, this tree against another
(``--base WORKTREE/src``): the worker thread's share of a state file's cost.

A file of ``--jobs`` saved jobs; then ``--batches`` saves of ``--batch`` claims each,
as a scheduler makes them (each job's claim takes up the fire time that was its next
one, and moves the next one a second on), timed with ``time.thread_time`` in the
saving thread alone (no event loop, no other thread wanting the GIL). Each row is a
fresh process; the trees alternate, round after round.

    uv run python benchmarks/bench_state_rows.py
    git worktree add /tmp/base COMMIT
    uv run python benchmarks/bench_state_rows.py --base /tmp/base/src --rounds 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

_FINGERPRINT = "interval[0:00:01] start=2026-12-03T00:00:00+00:00 jitter=None tz=UTC"


def _child(src: str | None, jobs: int, batch: int, batches: int) -> float:
    if src is not None:
        sys.path.insert(0, src)
    from eventsched import SavedJob, SQLiteJobStore

    first = datetime(2026, 12, 3, tzinfo=UTC)
    following = {f"bench-{k}": first + timedelta(microseconds=100 * k) for k in range(jobs)}
    ids = list(following)
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteJobStore(f"{directory}/jobs.sqlite", warn=False)
        store.lock_now()
        store.load_now()
        try:
            store.save_now(
                {job_id: SavedJob(_FINGERPRINT, None, at) for job_id, at in following.items()}
            )
            saves = []
            for n in range(batches):
                changes = {}
                for k in range(n * batch, (n + 1) * batch):
                    job_id = ids[k % jobs]
                    at = following[job_id]
                    following[job_id] = after = at + timedelta(seconds=1)
                    changes[job_id] = SavedJob(_FINGERPRINT, at, after, (at,), None, "completed")
                saves.append(changes)
            start = time.thread_time()
            for changes in saves:
                store.save_now(changes)
            return (time.thread_time() - start) / (batch * batches) * 1e6
        finally:
            store.close_now()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=400, help="claims per save")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--base", help="an eventsched src directory: its rows too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = ["--jobs", str(args.jobs), "--batch", str(args.batch), "--batches", str(args.batches)]
    if args.child:
        print(json.dumps(_child(args.src, args.jobs, args.batch, args.batches)))
        return
    trees: list[tuple[str, str | None]] = [("this", None)]
    if args.base:
        trees.append(("base", args.base))
    results: dict[str, list[float]] = {name: [] for name, _ in trees}
    for round_ in range(args.rounds):
        # Alternate which tree goes first: neither always follows the other.
        for name, src in trees if round_ % 2 == 0 else trees[::-1]:
            command = [sys.executable, __file__, "--child", *sizes]
            command += ["--src", src] if src else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
    for name, values in results.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name}: {statistics.median(values):.2f} us per claim row (rounds: {shown})")
    if args.base:
        ratios = [a / b for a, b in zip(results["this"], results["base"], strict=True)]
        print(f"this / base, per round: median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
