"""The workloads, as run inside one backend's subprocess (see :mod:`._child`).

Every pipeline row builds each event with ``Event.create`` (the same type and data)
and calls the same kind of handler, so rows differ only in the queue and dispatch
around them. Each workload gets a fresh event loop (its own ``anyio.run``).
"""

from __future__ import annotations

import asyncio
import functools
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

import anyio
import anyio.lowlevel

from .._events import Event, EventType
from .._exceptions import QueueFullError
from .._scheduler import EventScheduler
from ._config import POLICIES, BenchConfig

__all__ = [
    "DATA",
    "KIND",
    "Runner",
    "latency",
    "overflow",
    "spin",
    "stalls",
    "throughput",
]

KIND: Final = EventType.JOB_STARTED
DATA: Final = {"n": 1}
_PACE_SEED: Final = 20261128
#: A pause of a busy loop longer than this is the machine's, not the loop's: one pass
#: of the loop is far shorter, and this is about twice eventsched's median latency.
STALL_THRESHOLD: Final = 20e-6

#: Refused emits timed together for a cost per drop, the fastest group counting: a group
#: is shorter than the machine's slow spells and pauses, so the fastest group is the
#: call's cost with the machine at its best, as with timeit's min of repeats (one long
#: loop per trial did not repeat; docs/benchmarks.md, "How it measures").
_COST_CHUNK: Final = 500

_perf = time.perf_counter
_wall = time.time

T = TypeVar("T")

#: Runs a coroutine function on the backend under test, in a fresh event loop.
Runner = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]


def spin(seconds: float) -> None:
    """Keep the CPU busy for ``seconds``: handler work that takes the same on every loop."""
    end = _perf() + seconds
    while _perf() < end:
        pass


def stalls(seconds: float, clock: Callable[[], float] = _perf) -> list[float]:
    """The pauses longer than :data:`STALL_THRESHOLD` that a busy loop sees in ``seconds``.

    Nothing in the loop waits, so each one is time the machine took the CPU away
    (its interrupts, the hypervisor). They decide the p99 of a latency of a few tens of
    microseconds: an event is hit when one begins during its flight (the figures are in
    docs/benchmarks.md, "How it measures").
    """
    found: list[float] = []
    last = clock()
    end = last + seconds
    while last < end:
        now = clock()
        if now - last > STALL_THRESHOLD:
            found.append(now - last)
        last = now
    return found


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _per_trial(total: int, trials: int) -> int:
    return max(1, total // trials)


def _interleaved(rows: dict[str, Callable[[], T]], trials: int) -> dict[str, list[T]]:
    """Run every row ``trials`` times, row by row (A B C A B C ...): each row's trials
    are spread over the same seconds as the others', so a slow moment of the machine
    hits one trial of several rows rather than every trial of one."""
    results: dict[str, list[T]] = {key: [] for key in rows}
    for _ in range(trials):
        for key, row in rows.items():
            results[key].append(row())
    return results


# -- throughput ------------------------------------------------------------------------


def throughput(run: Runner, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """Events per second through each pipeline (handled events only): the best trial."""
    n, size = _per_trial(config.events, config.trials), config.queue_size
    handled = 0

    async def handler(event: Event) -> None:
        nonlocal handled
        handled += 1

    async def ceiling() -> float:
        send, receive = anyio.create_memory_object_stream[int](size)
        with send, receive:
            start = _perf()
            for i in range(n):
                send.send_nowait(i)
                receive.receive_nowait()
            return n / (_perf() - start)

    async def create() -> float:
        # What building the events costs every row below, without any queue.
        create = Event.create
        start = _perf()
        for _ in range(n):
            create(KIND, DATA)
        return n / (_perf() - start)

    async def idiomatic() -> float:
        send, receive = anyio.create_memory_object_stream[Event](size)

        async def consume() -> None:
            async with receive:
                async for event in receive:
                    await handler(event)

        start = _perf()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async with send:
                for _ in range(n):
                    await send.send(Event.create(KIND, DATA))
        return n / (_perf() - start)

    async def asyncio_queue() -> float:
        # The original demo's structure: await put / await get, one consumer task.
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)

        async def consume() -> None:
            while (event := await queue.get()) is not None:
                await handler(event)

        start = _perf()
        consumer = asyncio.ensure_future(consume())
        for _ in range(n):
            await queue.put(Event.create(KIND, DATA))
        await queue.put(None)
        await consumer
        return n / (_perf() - start)

    def eventsched(workers: int) -> Callable[[], Coroutine[Any, Any, float]]:
        async def main() -> float:
            # block: every event is handled, as in the references (none of them drops).
            scheduler = EventScheduler(queue_size=size, overflow="block", workers=workers)
            scheduler.on(KIND, handler)
            start = _perf()
            async with scheduler:
                for _ in range(n):
                    await scheduler.emit(KIND, DATA)
            elapsed = _perf() - start
            stats = scheduler.statistics()
            if stats.unaccounted or stats.handled < n:
                raise RuntimeError(f"throughput run lost events: {stats}")
            return n / elapsed

        return main

    rows: dict[str, Callable[[], Coroutine[Any, Any, float]]] = {
        "ceiling": ceiling,
        "create": create,
        "anyio": idiomatic,
        "eventsched_1": eventsched(1),
        "eventsched_4": eventsched(4),
    }
    if on_asyncio:
        rows["asyncio_queue"] = asyncio_queue

    def trial(key: str, main: Callable[[], Coroutine[Any, Any, float]]) -> Callable[[], float]:
        def one() -> float:
            nonlocal handled
            handled = 0
            rate = float(run(main))
            if key not in ("ceiling", "create") and handled != n:
                raise RuntimeError(f"throughput.{key}: {handled} of {n} events handled")
            return rate

        return one

    trials = _interleaved({key: trial(key, main) for key, main in rows.items()}, config.trials)
    return {f"throughput.{key}": max(rates) for key, rates in trials.items()}


# -- latency ---------------------------------------------------------------------------


async def _paced(emit: Callable[[Event], Awaitable[Any]], n: int, rate: float) -> None:
    """Emit ``n`` events at ``rate`` per second on average; a busy producer that yields
    while early.

    Each gap is drawn uniformly from half to one and a half of the mean gap, from the
    same seed on every row and backend. With a fixed gap the tail was a matter of phase:
    the slow events came at a fixed period of the machine (likely its timer tick), so a
    trial's p99 fell inside or outside that group depending on where the pace and the
    tick happened to line up.
    """
    checkpoint = anyio.lowlevel.checkpoint
    gap = random.Random(_PACE_SEED).uniform
    low, high = 0.5 / rate, 1.5 / rate
    due = _perf()
    for _ in range(n):
        due += gap(low, high)
        while _perf() < due:
            await checkpoint()
        await emit(Event.create(KIND, DATA))


def latency(run: Runner, config: BenchConfig, on_asyncio: bool) -> dict[str, float]:
    """Creation-to-handler-start latency at a paced rate, p50 and p99 in microseconds:
    the best trial's (each trial a share of :attr:`~BenchConfig.latency_events`)."""
    n, rate, size = _per_trial(config.latency_events, config.trials), config.rate, config.queue_size
    samples: list[float] = []

    async def handler(event: Event) -> None:
        samples.append(_wall() - event.created_at)

    async def idiomatic() -> None:
        send, receive = anyio.create_memory_object_stream[Event](size)

        async def consume() -> None:
            async with receive:
                async for event in receive:
                    await handler(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async with send:
                await _paced(send.send, n, rate)

    async def asyncio_queue() -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)

        async def consume() -> None:
            while (event := await queue.get()) is not None:
                await handler(event)

        consumer = asyncio.ensure_future(consume())
        await _paced(queue.put, n, rate)
        await queue.put(None)
        await consumer

    async def eventsched() -> None:
        scheduler = EventScheduler(queue_size=size, overflow="block")
        scheduler.on(KIND, handler)
        async with scheduler:
            await _paced(scheduler.emit, n, rate)

    mains: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "anyio": idiomatic,
        "eventsched": eventsched,
    }
    if on_asyncio:
        mains["asyncio_queue"] = asyncio_queue

    def trial(key: str, main: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], list[float]]:
        def one() -> list[float]:
            samples.clear()
            run(main)
            if len(samples) != n:
                raise RuntimeError(f"latency.{key}: {len(samples)} of {n} events handled")
            return list(samples)

        return one

    # The machine's own pauses, measured in trials as long as the rows' and taking
    # turns with them, so that a reader sees what the tails of this run stood on.
    probe_seconds = n / rate
    rows = {key: trial(key, main) for key, main in mains.items()}
    rows["machine"] = functools.partial(stalls, probe_seconds)

    # Each quantile is the best trial's: trials of the same row a second apart differ
    # widely (the machine has slow moments of about a second), while the best of five
    # repeats from process to process; pooled samples carried those moments into the
    # figure (docs/benchmarks.md, "How it measures").
    trials = _interleaved(rows, config.trials)
    pauses = [pause for one in trials.pop("machine") for pause in one]
    measured = probe_seconds * config.trials
    results: dict[str, float] = {
        "latency.stall_share": sum(pauses) / measured,
        "latency.stall_rate": len(pauses) / measured,
    }
    for key, runs in trials.items():
        for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            results[f"latency.{key}_{name}"] = min(_quantile(one, q) for one in runs) * 1e6
    return results


# -- overflow --------------------------------------------------------------------------


def overflow(run: Runner, config: BenchConfig) -> dict[str, float]:
    """Per policy: share of a fast producer's emits lost, its emit rate, cost per drop.

    The slow-handler runs are trials interleaved policy by policy (each trial a share of
    :attr:`~BenchConfig.overflow_events`): the share lost is their median, the emit
    rate their best, as in throughput.
    """
    n = _per_trial(config.overflow_events, config.trials)
    size, work = config.overflow_queue, config.slow_handler_us / 1e6

    async def slow(event: Event) -> None:
        spin(work)
        await anyio.lowlevel.checkpoint()  # a handler that awaits something, once

    def against_slow_handler(policy: str) -> Callable[[], Coroutine[Any, Any, tuple[float, float]]]:
        async def main() -> tuple[float, float]:
            scheduler = EventScheduler(queue_size=size, overflow=policy, grace_period=600)
            scheduler.on(KIND, slow)
            async with scheduler:
                start = _perf()
                for _ in range(n):
                    try:  # noqa: SIM105 - cheaper than contextlib.suppress in a timed loop
                        await scheduler.emit(KIND, DATA)
                    except QueueFullError:
                        pass
                elapsed = _perf() - start
            stats = scheduler.statistics()
            if stats.unaccounted:
                raise RuntimeError(f"overflow {policy}: events unaccounted: {stats}")
            lost = stats.dropped_total + stats.rejected.get("queue_full", 0)
            return lost / n, n / elapsed

        return main

    def cost(policy: str) -> Callable[[], Coroutine[Any, Any, tuple[float, float]]]:
        async def main() -> tuple[float, float]:
            # The handler holds the first event, so the queue fills and stays full:
            # time emit_nowait of prebuilt events, accepted ones then refused ones.
            gate, holding = anyio.Event(), anyio.Event()

            async def held(event: Event) -> None:
                holding.set()
                await gate.wait()

            events = [Event.create(KIND, DATA) for _ in range(1 + size + n)]
            scheduler = EventScheduler(queue_size=size, overflow=policy, grace_period=600)
            scheduler.on(KIND, held)
            emit = scheduler.emit_nowait
            async with scheduler:
                emit(events[0])
                await holding.wait()
                t0 = time.perf_counter_ns()
                for event in events[1 : size + 1]:
                    emit(event)
                t1 = time.perf_counter_ns()
                fastest = float("inf")
                for start in range(size + 1, len(events), _COST_CHUNK):
                    chunk = events[start : start + _COST_CHUNK]
                    began = time.perf_counter_ns()
                    for event in chunk:
                        try:  # noqa: SIM105 - cheaper than contextlib.suppress in a timed loop
                            emit(event)
                        except QueueFullError:
                            pass
                    fastest = min(fastest, (time.perf_counter_ns() - began) / len(chunk))
                gate.set()
            return (t1 - t0) / size, fastest

        return main

    results: dict[str, float] = {}
    accepted: list[float] = []
    slow_trials = _interleaved(
        {policy: functools.partial(run, against_slow_handler(policy)) for policy in POLICIES},
        config.trials,
    )
    for policy in POLICIES:
        trials = slow_trials[policy]
        results[f"overflow.{policy}.dropped"] = statistics.median(lost for lost, _ in trials)
        results[f"overflow.{policy}.emit_rate"] = max(rate for _, rate in trials)
        if policy != "block":
            # Costs per call are the cheapest trial's (each already its fastest group of
            # calls), as throughput takes the best.
            costs = [run(cost(policy)) for _ in range(config.trials)]
            accepted.append(min(accepted_ns for accepted_ns, _ in costs))
            results[f"overflow.{policy}.drop_ns"] = min(drop_ns for _, drop_ns in costs)
    results["overflow.accepted_ns"] = statistics.median(accepted)
    return results
