"""Throughput of emit -> stream -> dispatch -> trivial async handler, beside references.

Each backend runs in its own subprocess; repetitions are interleaved (asyncio, trio,
asyncio, trio, ...) so that drift on a shared machine hits every row alike. Figures are
medians of the repetitions with min-max; ratios are read between rows of the same run.

    uv run python benchmarks/bench_pipeline.py              # 5 reps x 200k events
    uv run python benchmarks/bench_pipeline.py --events 50000 --reps 3
    uv run python benchmarks/bench_pipeline.py --json out.json

Rows:
  ceiling         bare send_nowait + receive_nowait, no task switch, prebuilt items
  anyio idiomatic await send / async for, buffer = queue size, 1 producer / 1 consumer
  asyncio.Queue   the original demo's structure: await put / await get (asyncio only)
  eventsched      EventScheduler, default settings but the named policy, 1 handler task
  eventsched x4   same with 4 handler tasks
All rows but the ceiling build every event with Event.create and call the same handler.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

QUEUE = 1000


def _workloads(backend: str, events: int) -> dict[str, float]:
    import anyio

    from eventsched import Event, EventScheduler, EventType

    data = {"n": 1}
    kind = EventType.JOB_STARTED
    handled = 0

    async def handler(event: Event) -> None:
        nonlocal handled
        handled += 1

    async def ceiling() -> float:
        send, receive = anyio.create_memory_object_stream[int](QUEUE)
        start = time.perf_counter()
        for i in range(events):
            send.send_nowait(i)
            receive.receive_nowait()
        elapsed = time.perf_counter() - start
        send.close()
        receive.close()
        return events / elapsed

    async def idiomatic() -> float:
        nonlocal handled
        handled = 0
        send, receive = anyio.create_memory_object_stream[Event](QUEUE)

        async def consume() -> None:
            async with receive:
                async for event in receive:
                    await handler(event)

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async with send:
                for _ in range(events):
                    await send.send(Event.create(kind, data))
        elapsed = time.perf_counter() - start
        assert handled == events
        return events / elapsed

    async def asyncio_queue() -> float:
        import asyncio

        nonlocal handled
        handled = 0
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=QUEUE)

        async def consume() -> None:
            while True:
                event = await queue.get()
                if event is None:
                    return
                await handler(event)

        start = time.perf_counter()
        consumer = asyncio.ensure_future(consume())
        for _ in range(events):
            await queue.put(Event.create(kind, data))
        await queue.put(None)
        await consumer
        elapsed = time.perf_counter() - start
        assert handled == events
        return events / elapsed

    def eventsched(policy: str, workers: int) -> Any:
        async def run() -> float:
            nonlocal handled
            handled = 0
            scheduler = EventScheduler(queue_size=QUEUE, overflow=policy, workers=workers)
            scheduler.on(kind, handler)
            start = time.perf_counter()
            async with scheduler:
                for _ in range(events):
                    await scheduler.emit(kind, data)
            elapsed = time.perf_counter() - start
            stats = scheduler.statistics()
            assert stats.unaccounted == 0, stats
            # Throughput counts handled events only: drops are not work done.
            return stats.handled / elapsed

        return run

    rows: dict[str, Any] = {
        "ceiling": ceiling,
        "anyio idiomatic": idiomatic,
        "eventsched block": eventsched("block", 1),
        "eventsched drop_newest": eventsched("drop_newest", 1),
        "eventsched block x4": eventsched("block", 4),
    }
    if backend.startswith("asyncio"):
        rows["asyncio.Queue"] = asyncio_queue
    results: dict[str, float] = {}
    options: dict[str, Any] = {}
    name = backend
    if backend == "asyncio+uvloop":
        name = "asyncio"
        options = {"use_uvloop": True}
    for row, func in rows.items():
        results[row] = anyio.run(func, backend=name, backend_options=options)
    return results


def _child(backend: str, events: int) -> None:
    print(json.dumps(_workloads(backend, events)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.events)
        return

    backends = ["asyncio", "trio"]
    try:
        import uvloop  # noqa: F401

        backends.insert(1, "asyncio+uvloop")
    except ImportError:
        pass
    samples: dict[str, dict[str, list[float]]] = {b: {} for b in backends}
    for rep in range(args.reps):
        for backend in backends:
            out = subprocess.run(
                [sys.executable, __file__, "--child", backend, "--events", str(args.events)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            ).stdout
            for row, value in json.loads(out).items():
                samples[backend].setdefault(row, []).append(value)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    rows = sorted({row for per in samples.values() for row in per}, key=_row_order)
    header = f"{'events/s (median, min-max)':34}" + "".join(f"{b:>26}" for b in backends)
    print(header)
    for row in rows:
        line = f"{row:34}"
        for backend in backends:
            values = samples[backend].get(row)
            if not values:
                line += f"{'-':>26}"
                continue
            med = statistics.median(values)
            line += f"{_fmt(med)} ({_fmt(min(values))}-{_fmt(max(values))})".rjust(26)
        print(line)
    print()
    for backend in backends:
        per = {row: statistics.median(v) for row, v in samples[backend].items()}
        ours = per["eventsched block"]
        parts = [
            f"vs {ref}: {ours / per[ref]:.2f}x"
            for ref in ("anyio idiomatic", "asyncio.Queue")
            if ref in per
        ]
        parts.append(f"of ceiling: {ours / per['ceiling']:.1%}")
        print(f"{backend}: eventsched block " + ", ".join(parts))
    asyncio_med = {row: statistics.median(v) for row, v in samples["asyncio"].items()}
    trio_med = {row: statistics.median(v) for row, v in samples["trio"].items()}
    print(
        f"trio / asyncio, eventsched block: {trio_med['eventsched block'] / asyncio_med['eventsched block']:.2f}x"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"events": args.events, "reps": args.reps, "samples": samples}, f, indent=1)


def _row_order(row: str) -> tuple[int, str]:
    order = ["ceiling", "anyio idiomatic", "asyncio.Queue"]
    return (order.index(row), row) if row in order else (len(order), row)


def _fmt(value: float) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"


if __name__ == "__main__":
    main()
