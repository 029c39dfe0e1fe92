"""What the garbage collector does with 10,000 interval jobs: a probe, not a benchmark.

For one scheduler in a fresh process (eventsched on asyncio or trio, or APScheduler 3's
``AsyncIOScheduler``), with the ``jobs`` workload's jobs (``eventsched._bench._manyjobs``:
N interval jobs at 1 s, fire times spread over the second):

- ``--count``: tracked objects per job, ``gc.get_objects()`` after adding the jobs and
  after two seconds of running, against none, with the types that account for them
  and how long a full collection takes then (``gc.collect()``, best of five); each
  count collects first: the other figures are not the natural course then;
- every collection, timed by generation (``gc.callbacks``) over a window of running;
- what drives the full collections: a full one comes once the objects promoted into
  the oldest generation since the last exceed a quarter of those there. ``--promoted``
  counts, at every generation-1 collection, the objects it moved there, by type (the
  newest objects of generation 2 are the ones just moved), which slows the process
  down: its lateness figures are not the scheduler's then;
- the lateness p50 / p99 / max of the runs in the window (without ``--promoted``).

    uv run python benchmarks/probe_jobs_gc.py --row asyncio
    uv run python benchmarks/probe_jobs_gc.py --row aps --promoted
    uv run python benchmarks/probe_jobs_gc.py --row trio --src /tmp/base/src

``--src``: the eventsched of another tree (the commit a change is measured against).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
import time
from collections import Counter
from typing import Any


def _types(objects: list[Any]) -> Counter[str]:
    return Counter(type(o).__qualname__ for o in objects)


def _tracked() -> tuple[int, Counter[str]]:
    gc.collect()
    objects = gc.get_objects()
    return len(objects), _types(objects)


class _Collections:
    """Every collection's duration by generation; with ``promoted``, the objects each
    generation-1 collection moved into generation 2, by type."""

    def __init__(self, promoted: bool) -> None:
        self.times: dict[int, list[float]] = {0: [], 1: [], 2: []}
        #: Each full collection: when it began (time.time()), how long it took.
        self.full: list[tuple[float, float]] = []
        self.measuring = False
        self.promoted: Counter[str] = Counter()
        self.promoted_total = 0
        self._promoted = promoted
        self._start = 0.0
        self._old = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            if self._promoted and generation == 1:
                self._old = len(gc.get_objects(2))
            self._start = time.perf_counter()
            return
        elapsed = time.perf_counter() - self._start
        if generation == 2:
            self.full.append((time.time() - elapsed, elapsed))
        if not self.measuring:
            return
        self.times[generation].append(elapsed)
        if self._promoted and generation == 1:
            # Survivors are appended to generation 2's list: its tail is what moved.
            moved = gc.get_objects(2)[self._old :]
            self.promoted_total += len(moved)
            self.promoted.update(_types(moved))
            del moved


def _report_types(title: str, before: Counter[str], after: Counter[str], jobs: int) -> None:
    diff = after - before
    top = ", ".join(f"{name} {count / jobs:.2f}" for name, count in diff.most_common(8))
    print(f"  {title}: {sum(diff.values()) / jobs:.2f} per job ({top})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--row", choices=("asyncio", "trio", "aps"), default="asyncio")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--promoted", action="store_true")
    parser.add_argument("--count", action="store_true", help="count tracked objects per job")
    parser.add_argument("--src", help="the src directory of another eventsched tree")
    parser.add_argument("--state", action="store_true", help="eventsched with a state file")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)

    import anyio

    from eventsched import EventScheduler
    from eventsched._bench import _manyjobs

    assert not args.src or _manyjobs.__file__.startswith(args.src), "not the --src tree"
    count, seconds = args.jobs, args.seconds
    collections = _Collections(args.promoted)

    async def run() -> None:
        # No gc.collect() in a timed run: it would reset what sets off the next full one.
        none, none_types = _tracked() if args.count else (0, Counter[str]())
        gc.callbacks.append(collections)
        window = _manyjobs._Window(count, 1.0, seconds)
        if args.row == "aps":
            import asyncio
            import logging
            from datetime import UTC

            from apscheduler.schedulers.asyncio import (  # type: ignore[import-untyped]
                AsyncIOScheduler,
            )

            # Its warnings of missed runs would be a line each on stderr.
            logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
            aps = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
            _manyjobs._add_jobs(aps.add_job, window, count, 1.0)
        else:
            scheduler = EventScheduler()
            _manyjobs._add_jobs(scheduler.add_job, window, count, 1.0, window.run_of_eventsched)
            if args.state:
                scheduler.configure_jobs(state_file=f"{directory}/jobs.sqlite")
        if args.count:
            added, added_types = _tracked()
            print(f"{args.row}, {count} jobs: tracked objects {none} with none, {added} added")
            _report_types("added", none_types, added_types, count)
            took = []
            for _ in range(5):
                start = time.process_time()  # CPU time: the machine may be shared
                gc.collect()
                took.append(time.process_time() - start)
            print(f"  a full collection now: {min(took) * 1e3:.1f} ms of CPU (best of 5)")
        else:
            print(f"{args.row}, {count} jobs")
        async with contextlib.AsyncExitStack() as stack:
            if args.row == "aps":
                aps.start()
            else:
                await stack.enter_async_context(scheduler)
            window.scheduler_started()
            await anyio.sleep(max(0.0, window.begin - time.time()))
            if args.count:
                await anyio.sleep(2.0)
                _, running_types = _tracked()
                _report_types("running", none_types, running_types, count)
            stats = gc.get_stats()
            collections.measuring = True
            try:
                await anyio.sleep(max(0.0, window.end - time.time()))
            finally:
                collections.measuring = False
                gc.callbacks.remove(collections)
            after = gc.get_stats()
            if args.row == "aps":
                aps.shutdown(wait=False)
            elif (lanes := scheduler.jobs._runs._lanes) is not None:
                # Each lane is a task: idle ones stay (up to MAX_IDLE), tracked objects all.
                print(f"  run lanes: {lanes.spawned} spawned, {lanes.idle} idle at the end")
        for generation in (0, 1, 2):
            times = sorted(collections.times[generation])
            ran = after[generation]["collections"] - stats[generation]["collections"]
            if times:
                print(
                    f"  gen {generation}: {len(times)} collections ({ran} by get_stats) in "
                    f"{seconds:g} s, median {times[len(times) // 2] * 1e3:.2f} ms, "
                    f"max {times[-1] * 1e3:.2f} ms, total {sum(times) * 1e3:.0f} ms"
                )
            else:
                print(f"  gen {generation}: none in {seconds:g} s")
        fulls = ", ".join(
            f"{at - window.begin:+.1f} s ({took * 1e3:.0f} ms)" for at, took in collections.full
        )
        print(f"  full collections from adding the jobs on, against the window's start: {fulls}")
        if args.promoted:
            per_second = collections.promoted_total / seconds
            top = ", ".join(
                f"{name} {n / seconds:.0f}" for name, n in collections.promoted.most_common(10)
            )
            print(f"  promoted into gen 2: {per_second:.0f}/s ({top})")
        else:
            late = sorted(window.lateness)
            if late:
                q = [late[min(len(late) - 1, int(len(late) * p))] * 1e3 for p in (0.5, 0.99)]
                print(
                    f"  lateness: {len(late)} of {window.fires} runs, p50 {q[0]:.2f} ms, "
                    f"p99 {q[1]:.2f} ms, max {late[-1] * 1e3:.1f} ms"
                )

    with tempfile.TemporaryDirectory() as directory:
        anyio.run(run, backend="trio" if args.row == "trio" else "asyncio")


if __name__ == "__main__":
    main()
