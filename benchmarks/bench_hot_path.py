"""The event hot path (issue 18), this tree against another, as same-run ratios.

Each measurement is a fresh process running, on one backend, rows taking turns for
``--trials`` trials (a row keeps its best trial, as ``eventsched bench`` does):

* ``ceiling``: bare anyio ``send_nowait`` + ``receive_nowait`` (the bench's ceiling row);
* ``one_key``: ``await emit(KIND, {"n": 1})`` to one trivial async handler, ``block``
  policy, one handler task, the scheduler's start and stop inside the timing (the bench's
  ``eventsched, 1 handler task`` row);
* ``ten_key``: the same with ten keys of ints, floats, strings, a bool and a None;
* ``floor``: the trip for ``{"n": 1}`` built from nothing but the design's parts: an
  async ``emit`` that calls ``make_event`` and ``send_nowait`` on a memory object
  stream, one worker task that drains it with ``receive_nowait`` and awaits the
  handler, both checkpointing every 64 events, an idle worker woken by an ``Event``.
  No accounting, no policy, no routing: what ``one_key`` could reach if the pipeline
  around those parts cost nothing (``floor / ceiling`` bounds ``one_key / ceiling``).
  It runs after the memory rows, with a ceiling of its own, and only its ratio is kept;
* ``rss_bytes``, ``traced_bytes``: bytes per buffered event, 100,000
  ``emit_nowait(KIND, {"n": 1})`` held in the queue behind a parked handler, by
  resident-set growth (measured first, tracemalloc off) and by ``tracemalloc``.

The two trees alternate, repetition by repetition, backend by backend; a ratio quoted is
the median of paired ratios (this tree / the other; one_key / ceiling in one process;
trio / asyncio of consecutive processes). ``*_per_ceiling`` ratios divide each process's
rate by its own ceiling first: the ceiling is the same anyio code in both trees, so this
takes out how fast the machine happened to be during each process (on a shared machine
that moved single processes by up to 2x). Figures are in docs/benchmarks.md.

    git worktree add /tmp/base main
    uv run python benchmarks/bench_hot_path.py --base /tmp/base/src --reps 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, sys, time, tracemalloc, anyio, anyio.lowlevel
from anyio import EndOfStream, WouldBlock
from eventsched import EventScheduler, EventType
from eventsched._events import Event, make_event

backend, n, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
KIND = EventType.JOB_STARTED
ONE = {"n": 1}
TEN = {"a": 1, "b": 2.5, "c": "hello", "d": 42, "e": 3.14159, "f": "world", "g": True,
       "h": None, "i": 123456789, "j": "x" * 20}
perf = time.perf_counter

async def ceiling():
    send, receive = anyio.create_memory_object_stream(1000)
    with send, receive:
        start = perf()
        for i in range(n):
            send.send_nowait(i)
            receive.receive_nowait()
        return n / (perf() - start)

def pipeline(data):
    async def main():
        handled = 0
        async def handler(event):
            nonlocal handled
            handled += 1
        scheduler = EventScheduler(queue_size=1000, overflow="block")
        scheduler.on(KIND, handler)
        start = perf()
        async with scheduler:
            for _ in range(n):
                await scheduler.emit(KIND, data)
        elapsed = perf() - start
        assert handled == n and not scheduler.statistics().unaccounted
        return n / elapsed
    return main

async def floor():
    send, receive = anyio.create_memory_object_stream(1000)
    send_nowait, receive_nowait = send.send_nowait, receive.receive_nowait
    checkpoint = anyio.lowlevel.checkpoint
    handled = emits = 0
    idle = []
    async def handler(event):
        nonlocal handled
        handled += 1
    async def emit(kind, data):
        nonlocal emits
        send_nowait(make_event(Event, kind, data, 65536))
        if idle:
            idle.pop().set()
        emits += 1
        if not emits & 63:
            await checkpoint()
        return True
    async def worker():
        received = 0
        while True:
            try:
                event = receive_nowait()
            except WouldBlock:
                idle.append(wake := anyio.Event())
                await wake.wait()
                continue
            except EndOfStream:
                return
            received += 1
            await handler(event)
            if not received & 63:
                await checkpoint()
    start = perf()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        for _ in range(n):
            await emit(KIND, ONE)
        send.close()
        if idle:
            idle.pop().set()
    elapsed = perf() - start
    receive.close()
    assert handled == n
    return n / elapsed

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

async def memory(traced, events=100_000):
    gate, holding = anyio.Event(), anyio.Event()
    async def held(event):
        holding.set()
        await gate.wait()
    scheduler = EventScheduler(queue_size=events, overflow="block")
    scheduler.on(KIND, held)
    async with scheduler:
        scheduler.emit_nowait(KIND, ONE)
        await holding.wait()
        if traced:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        else:
            before = rss()
        for _ in range(events):
            scheduler.emit_nowait(KIND, ONE)
        after = tracemalloc.get_traced_memory()[0] if traced else rss()
        tracemalloc.stop()
        queued = scheduler.statistics().still_queued
        gate.set()
    return (after - before) / queued

def best_of(rows):
    best = {key: 0.0 for key in rows}
    for _ in range(trials):
        for key, row in rows.items():
            best[key] = max(best[key], anyio.run(row, backend=backend))
    return best

best = best_of({"ceiling": ceiling, "one_key": pipeline(ONE), "ten_key": pipeline(TEN)})
# Resident growth first, with tracemalloc off (its own records would count), then the
# Python objects by tracemalloc in a second scheduler of the same process.
best["rss_bytes"] = anyio.run(memory, False, backend=backend)
best["traced_bytes"] = anyio.run(memory, True, backend=backend)
# The floor last, with a ceiling of its own: the memory rows then run after the same
# rows as in earlier passes, so their figures compare with those passes'.
floor_run = best_of({"ceiling": ceiling, "floor": floor})
best["floor_over_ceiling"] = floor_run["floor"] / floor_run["ceiling"]
print(json.dumps(best))
"""


def _measure(src: str, backend: str, events: int, trials: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, backend, str(events), str(trials)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="src directory of the tree to compare with")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--events", type=int, default=40_000, help="events per trial")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        tree: {"asyncio": [], "trio": []} for tree in ("base", "this")
    }
    for _ in range(args.reps):
        for backend in ("asyncio", "trio"):
            runs["base"][backend].append(_measure(args.base, backend, args.events, args.trials))
            runs["this"][backend].append(_measure(here, backend, args.events, args.trials))
    report: dict[str, object] = {}
    for backend in ("asyncio", "trio"):
        this, base = runs["this"][backend], runs["base"][backend]
        report[backend] = {
            "this_tree": {key: _summary([run[key] for run in this]) for key in this[0]},
            "base": {key: _summary([run[key] for run in base]) for key in base[0]},
            "one_key_over_ceiling_this": _summary([r["one_key"] / r["ceiling"] for r in this]),
            "one_key_over_ceiling_base": _summary([r["one_key"] / r["ceiling"] for r in base]),
            "floor_over_ceiling_this": _summary([r["floor_over_ceiling"] for r in this]),
            "one_key_this_over_base": _summary(
                [t["one_key"] / b["one_key"] for t, b in zip(this, base, strict=True)]
            ),
            "ten_key_this_over_base": _summary(
                [t["ten_key"] / b["ten_key"] for t, b in zip(this, base, strict=True)]
            ),
            "one_key_this_over_base_per_ceiling": _summary(
                [
                    (t["one_key"] / t["ceiling"]) / (b["one_key"] / b["ceiling"])
                    for t, b in zip(this, base, strict=True)
                ]
            ),
            "ten_key_this_over_base_per_ceiling": _summary(
                [
                    (t["ten_key"] / t["ceiling"]) / (b["ten_key"] / b["ceiling"])
                    for t, b in zip(this, base, strict=True)
                ]
            ),
        }
    for tree in ("this", "base"):
        asyncio_runs, trio_runs = runs[tree]["asyncio"], runs[tree]["trio"]
        report[f"trio_over_asyncio_{tree}"] = {
            key: _summary([t[key] / a[key] for t, a in zip(trio_runs, asyncio_runs, strict=True)])
            for key in ("one_key", "ten_key")
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
