"""The ``apps`` workload: what applications' handlers do, run inside one backend's process.

* I/O handlers: each handler awaits a 1 ms sleep (standing for a database or HTTP call),
  with :attr:`~BenchConfig.io_concurrency` handler tasks, so hundreds are in flight;
* fan-out: each event goes to 10 handlers;
* sync handlers: plain functions, which eventsched runs in a worker thread.

Each row gives its rate (events handled per second) and its CPU time per event (process
CPU over the row, user and system, all threads), and the workload gives the process's
resident memory at its end. References run beside eventsched: an anyio memory stream
with as many consumer tasks (on every backend), and, where they can, a raw
``asyncio.Queue`` with as many consumer tasks, aiojobs (one job per event, the same
limit) and pyee (``AsyncIOEventEmitter`` with 10 listeners); all three are asyncio
libraries, so on trio their rows are empty. aiojobs and pyee are the optional
``eventsched[bench]`` extra: a row of a peer that is not installed is left out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import anyio
import anyio.abc

from .._events import Event
from .._scheduler import EventScheduler
from ._config import BenchConfig
from ._workloads import DATA, KIND, Runner

__all__ = ["FANOUT", "IO_SECONDS", "apps", "peer_installed"]

#: The awaited "I/O" of each I/O handler, in seconds.
IO_SECONDS: Final = 0.001
#: Handlers each fan-out event reaches.
FANOUT: Final = 10

_perf = time.perf_counter
_cpu = time.process_time


def peer_installed(name: str) -> bool:
    """Whether an optional peer library can be imported here."""
    return importlib.util.find_spec(name) is not None


def _measured(
    run: Runner, main: Callable[[], Coroutine[Any, Any, int]], n: int, what: str
) -> tuple[float, float]:
    """Run ``main`` (which returns how many events were handled): (events/s, CPU us/event)."""
    cpu, start = _cpu(), _perf()
    handled = int(run(main))
    elapsed, used = _perf() - start, _cpu() - cpu
    if handled != n:
        raise RuntimeError(f"{what}: {handled} of {n} events handled")
    return n / elapsed, used / n * 1e6


def _eventsched(n: int, workers: int, handlers: list[Callable[[Event], Any]]) -> Any:
    async def main() -> int:
        scheduler = EventScheduler(queue_size=max(1000, workers), overflow="block", workers=workers)
        for handler in handlers:
            scheduler.on(KIND, handler)
        async with scheduler:
            for _ in range(n):
                await scheduler.emit(KIND, DATA)
        stats = scheduler.statistics()
        if stats.unaccounted:
            raise RuntimeError(f"apps: events unaccounted: {stats}")
        return stats.handled

    return main


def apps(run: Runner, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """Rates and CPU per event of the I/O, fan-out and sync rows; the process's RSS."""
    from ._target import rss

    # As in the other workloads, a row's events are split between its trials.
    n, concurrency = max(1, config.apps_events // config.trials), config.io_concurrency
    done = 0

    async def io_handler(event: Event) -> None:
        nonlocal done
        await anyio.sleep(IO_SECONDS)
        done += 1

    async def quick_handler(event: Event) -> None:
        nonlocal done
        done += 1

    def sync_handler(event: Event) -> None:
        nonlocal done
        done += 1

    def fanout_handlers() -> list[Callable[[Event], Any]]:
        # Distinct functions: pyee keeps one listener per function.
        def one() -> Callable[[Event], Any]:
            async def handler(event: Event) -> None:
                await quick_handler(event)

            return handler

        return [one() for _ in range(FANOUT)]

    def counted(main: Callable[[], Coroutine[Any, Any, int]]) -> Callable[[], Any]:
        async def wrapper() -> int:
            nonlocal done
            done = 0
            await main()
            return done

        return wrapper

    rows: dict[str, tuple[Callable[[], Coroutine[Any, Any, int]], int]] = {
        "io": (counted(_eventsched(n, concurrency, [io_handler])), n),
        "fanout": (counted(_eventsched(n, 1, fanout_handlers())), n * FANOUT),
        "sync": (counted(_eventsched(n, 1, [sync_handler])), n),
    }
    rows["anyio_io"] = (counted(_anyio_io(n, concurrency, io_handler)), n)
    if on_asyncio:
        rows["asyncio_queue_io"] = (counted(_queue_io(n, concurrency, io_handler)), n)
        if peer_installed("aiojobs"):
            rows["aiojobs_io"] = (counted(_aiojobs_io(n, concurrency, io_handler)), n)
        if peer_installed("pyee"):
            rows["pyee_fanout"] = (counted(_pyee_fanout(n, fanout_handlers())), n * FANOUT)
    results: dict[str, float] = {}
    for _ in range(config.trials):  # interleaved row by row; each row keeps its best trial
        for key, (main, expected) in rows.items():
            rate, cpu_us = _measured(run, main, expected, f"apps.{key}")
            # A fan-out row's rate and cost are per event emitted, not per handler call.
            per = FANOUT if "fanout" in key else 1
            results[f"apps.{key}_rate"] = max(results.get(f"apps.{key}_rate", 0.0), rate / per)
            old = results.get(f"apps.{key}_cpu_us", float("inf"))
            results[f"apps.{key}_cpu_us"] = min(old, cpu_us * per)
    results["apps.rss_mb"] = rss() / 1e6
    return results


def _queue_io(n: int, consumers: int, handler: Callable[[Event], Any]) -> Any:
    async def main() -> int:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=max(1000, consumers))

        async def consume() -> None:
            while (event := await queue.get()) is not None:
                await handler(event)

        tasks = [asyncio.ensure_future(consume()) for _ in range(consumers)]
        for _ in range(n):
            await queue.put(Event.create(KIND, DATA))
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
        return n

    return main


def _anyio_io(n: int, consumers: int, handler: Callable[[Event], Any]) -> Any:
    async def main() -> int:
        send, receive = anyio.create_memory_object_stream[Event](max(1000, consumers))

        async def consume(stream: anyio.abc.ObjectReceiveStream[Event]) -> None:
            async with stream:
                async for event in stream:
                    await handler(event)

        async with anyio.create_task_group() as tg:
            with receive:
                for _ in range(consumers):
                    tg.start_soon(consume, receive.clone())
            async with send:
                for _ in range(n):
                    await send.send(Event.create(KIND, DATA))
        return n

    return main


def _aiojobs_io(n: int, limit: int, handler: Callable[[Event], Any]) -> Any:
    async def main() -> int:
        import aiojobs

        # pending_limit: spawn() waits once this many jobs wait for a slot, as eventsched's
        # emit waits on a full queue (overflow="block").
        async with aiojobs.Scheduler(limit=limit, pending_limit=max(1000, limit)) as jobs:
            for _ in range(n):
                await jobs.spawn(handler(Event.create(KIND, DATA)))
            await jobs.wait_and_close(timeout=600)
        return n

    return main


def _pyee_fanout(n: int, handlers: list[Callable[[Event], Any]]) -> Any:
    async def main() -> int:
        from pyee.asyncio import AsyncIOEventEmitter

        emitter = AsyncIOEventEmitter()
        for handler in handlers:
            emitter.on("event", handler)
        for count in range(n):
            # pyee schedules one task per listener and never waits: yield as often as an
            # emit into eventsched's bounded queue would let the handlers run.
            emitter.emit("event", Event.create(KIND, DATA))
            if count % 100 == 99:
                await asyncio.sleep(0)
        await emitter.wait_for_complete()
        return n

    return main
