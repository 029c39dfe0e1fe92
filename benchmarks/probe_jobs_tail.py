"""Where the start lateness of runs goes with an SQLite state file: a probe, not a benchmark.

One eventsched scheduler in a fresh process with the ``jobs`` workload's jobs
(``eventsched._bench._manyjobs``: N interval jobs at 1 s), a state file, and recorders
around the parts a late run may wait for:

- each pass that claims (wall time at its start, the synchronous stretch until its
  save is asked for, the save's rows, when the save returned to the loop);
- each ``RowWriter.save`` in the worker thread (wall time, duration, thread CPU);
- stalls of the event loop: a task that sleeps 1 ms over and over, its overshoots;
- the collector's collections by generation.

For the runs later than ``--late`` ms it says what each was behind (roughly: its
claim's save still going at its fire time, a stall of the loop, a collection), the
p99 per half second of the window, and the passes, saves, stalls and collections
around the latest run after ``--after`` seconds of the window (the start apart).
The recorders and the watching task cost CPU of their own: the CPU share it prints is
not the benchmark's (``bench_jobs_runs.py`` has that).

    uv run python benchmarks/probe_jobs_tail.py --row asyncio --jobs 10000
    uv run python benchmarks/probe_jobs_tail.py --row trio --src /tmp/base/src
    uv run python benchmarks/probe_jobs_tail.py --row asyncio --no-state
"""

from __future__ import annotations

import argparse
import bisect
import gc
import statistics
import sys
import tempfile
import time
from typing import Any

_wall = time.time


def _q(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--row", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--late", type=float, default=10.0, help="ms: a run this late is listed")
    parser.add_argument("--no-state", action="store_true")
    parser.add_argument("--before", type=float, default=0.3, help="s: timeline before the worst")
    parser.add_argument("--after", type=float, default=0.5, help="s: the worst run after this")
    parser.add_argument("--src", help="the src directory of another eventsched tree")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)

    import anyio
    import anyio.to_thread

    from eventsched import EventScheduler
    from eventsched._bench import _manyjobs
    from eventsched._jobs import _scheduler, _sqlitesave
    from eventsched._jobs._sync import StoreSync

    assert not args.src or _manyjobs.__file__.startswith(args.src), "not the --src tree"

    saves: list[tuple[float, float, float, int]] = []  # start, wall, thread cpu, rows
    row_save = _sqlitesave.RowWriter.save

    def timed_save(self: Any, conn: Any, changes: Any, now: Any) -> None:
        start, cpu = _wall(), time.thread_time()
        row_save(self, conn, changes, now)
        saves.append((start, _wall() - start, time.thread_time() - cpu, len(changes)))

    _sqlitesave.RowWriter.save = timed_save  # type: ignore[method-assign]

    # The pass: from its start (the timeline asked what is due) to asking for the save,
    # and until the save returned.
    passes: list[tuple[float, float, float, int]] = []  # start, sync stretch, flush end, n
    pass_start = [0.0]
    claim_and_start = _scheduler.JobScheduler._claim_and_start

    async def timed_claim(self: Any, starts: Any, *rest: Any) -> None:
        asked = _wall()
        await claim_and_start(self, starts, *rest)
        passes.append((pass_start[0], asked - pass_start[0], flushed[0], len(starts)))

    _scheduler.JobScheduler._claim_and_start = timed_claim  # type: ignore[method-assign]
    flushed = [0.0]
    flush = StoreSync.flush

    async def timed_flush(self: Any, **kw: Any) -> Any:
        try:
            return await flush(self, **kw)
        finally:
            if kw.get("urgent_only"):
                flushed[0] = _wall()

    StoreSync.flush = timed_flush  # type: ignore[method-assign]

    collections: list[tuple[float, float, int]] = []  # start, duration, generation
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            took = time.perf_counter() - began[0]
            collections.append((_wall() - took, took, info["generation"]))

    stalls: list[tuple[float, float]] = []  # when the sleep was due, overshoot

    async def watch(until: float) -> None:
        while _wall() < until:
            due = _wall() + 0.001
            await anyio.sleep(0.001)
            over = _wall() - due
            if over > 0.002:
                stalls.append((due, over))

    count, seconds = args.jobs, args.seconds
    share = [0.0]

    async def run() -> None:
        gc.collect()
        window = _manyjobs._Window(count, 1.0, seconds)
        scheduler = EventScheduler()
        _manyjobs._add_jobs(scheduler.add_job, window, count, 1.0, window.run_of_eventsched)
        with tempfile.TemporaryDirectory() as directory:
            if not args.no_state:
                scheduler.configure_jobs(state_file=f"{directory}/jobs.sqlite")
            timeline = type(scheduler.jobs._timeline)
            pop_due = timeline.pop_due

            def timed_pop(self: Any, *a: Any) -> Any:
                pass_start[0] = _wall()
                return pop_due(self, *a)

            timeline.pop_due = timed_pop
            gc.callbacks.append(on_gc)
            async with scheduler, anyio.create_task_group() as group:
                window.scheduler_started()
                group.start_soon(watch, window.end)
                share[0] = await window.measure()
            gc.callbacks.remove(on_gc)
        report(window)

    def report(window: Any) -> None:
        inside = [p for p in passes if window.first <= p[0] < window.end]
        ins = [s for s in saves if window.first <= s[0] < window.end]
        late = sorted(window.lateness)
        print(
            f"{args.row}, {count} jobs, state {not args.no_state}: {len(late)} of "
            f"{window.fires} ran, p50 {_q(late, 0.5) * 1e3:.2f} p99 {_q(late, 0.99) * 1e3:.2f}"
            f" max {late[-1] * 1e3:.1f} ms, CPU {share[0]:.3f}"
            if late
            else "no run"
        )
        if inside:
            saved = [p[2] - p[0] for p in inside if p[2]]  # (no save without a state file)
            print(
                f"  claiming passes: {len(inside)}, claims per pass median "
                f"{statistics.median(p[3] for p in inside):.0f}, sync stretch ms median "
                f"{statistics.median(p[1] for p in inside) * 1e3:.1f} max "
                f"{max(p[1] for p in inside) * 1e3:.1f}"
                + (
                    f"; pass start to saved ms median {statistics.median(saved) * 1e3:.1f}"
                    f" max {max(saved) * 1e3:.1f}"
                    if saved
                    else ""
                )
            )
        if ins:
            print(
                f"  saves: {len(ins)}, rows median {statistics.median(s[3] for s in ins):.0f} "
                f"max {max(s[3] for s in ins)}; wall ms median "
                f"{statistics.median(s[1] for s in ins) * 1e3:.1f} max "
                f"{max(s[1] for s in ins) * 1e3:.1f}; thread CPU ms median "
                f"{statistics.median(s[2] for s in ins) * 1e3:.1f}; us/row CPU "
                f"{sum(s[2] for s in ins) / max(1, sum(s[3] for s in ins)) * 1e6:.1f}"
            )
        gcs = [c for c in collections if window.first <= c[0] < window.end]
        for g in (0, 1, 2):
            these = [c[1] for c in gcs if c[2] == g]
            if these:
                print(f"  gen {g}: {len(these)} in window, max {max(these) * 1e3:.1f} ms")
        st = [s for s in stalls if window.first <= s[0] < window.end]
        if st:
            print(
                f"  loop stalls > 2 ms: {len(st)}, p50 {_q([s[1] for s in st], 0.5) * 1e3:.1f}"
                f" max {max(s[1] for s in st) * 1e3:.1f} ms, total "
                f"{sum(s[1] for s in st) * 1e3:.0f} ms"
            )
        # The late runs: what each was behind.
        fired = window._fired
        threshold = args.late / 1e3
        late_runs = sorted(
            (at, lateness)
            for at, lateness in zip(fired, window.lateness, strict=True)
            if lateness > threshold
        )
        print(f"  runs later than {args.late:g} ms: {len(late_runs)}")
        starts = sorted(inside)
        stall_ends = sorted((s[0], s[0] + s[1]) for s in st)
        causes: dict[str, int] = {}
        for at, _lateness in late_runs:
            # The last pass that started before at - lead claimed it (roughly).
            i = bisect.bisect_right([p[0] for p in starts], at - 0.0) - 1
            claim_late = False
            while i >= 0:
                p = starts[i]
                if p[2] > at and p[0] < at:
                    claim_late = True
                    break
                if p[0] < at - 0.25:
                    break
                i -= 1
            in_stall = any(a <= at + _lateness and b >= at for a, b in stall_ends)
            in_gc = any(c[0] <= at + _lateness and c[0] + c[1] >= at for c in gcs)
            key = (
                "+".join(
                    k for k, v in (("claim", claim_late), ("stall", in_stall), ("gc", in_gc)) if v
                )
                or "other"
            )
            causes[key] = causes.get(key, 0) + 1
        print(f"  behind: {causes}")
        # Lateness by 0.5 s slice of the window: is the tail the start or steady?
        slices: dict[int, list[float]] = {}
        for at, lateness in zip(fired, window.lateness, strict=True):
            slices.setdefault(int((at - window.begin) / 0.5), []).append(lateness)
        print(
            "  p99 by 0.5 s slice (ms): "
            + ", ".join(f"{_q(v, 0.99) * 1e3:.0f}" for _, v in sorted(slices.items()))
        )
        # A timeline around the latest run after the first 0.5 s (the start is apart).
        steady = [r for r in late_runs if r[0] - window.begin > args.after]
        if steady:
            worst = max(steady, key=lambda r: r[1])
            t0 = worst[0] - args.before
            print(
                f"  around the latest run (fire {worst[0] - window.begin:.3f} s, late "
                f"{worst[1] * 1e3:.1f} ms), times from window begin:"
            )
            for p in passes:
                if t0 <= p[0] <= worst[0] + 0.1:
                    print(
                        f"    pass {p[0] - window.begin:.3f} sync {p[1] * 1e3:.1f} ms "
                        f"saved at {p[2] - window.begin:.3f} claims {p[3]}"
                    )
            for s in saves:
                if t0 <= s[0] <= worst[0] + 0.1:
                    print(
                        f"    save {s[0] - window.begin:.3f} took {s[1] * 1e3:.1f} ms "
                        f"cpu {s[2] * 1e3:.1f} rows {s[3]}"
                    )
            for s in stalls:
                if t0 <= s[0] <= worst[0] + 0.1 and s[1] > 0.005:
                    print(f"    stall {s[0] - window.begin:.3f} {s[1] * 1e3:.1f} ms")
            for c in collections:
                if t0 <= c[0] <= worst[0] + 0.1 and c[2] > 0:
                    print(f"    gc{c[2]} {c[0] - window.begin:.3f} {c[1] * 1e3:.1f} ms")

    anyio.run(run, backend=args.row)


if __name__ == "__main__":
    main()
