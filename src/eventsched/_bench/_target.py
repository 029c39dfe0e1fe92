"""Programs the bench runs in a process of their own: shutdown under SIGTERM, and memory.

    python -m eventsched._bench._target shutdown BACKEND EVENTS HANDLER_US
    python -m eventsched._bench._target memory:STRUCTURE BACKEND EVENTS
    python -m eventsched._bench._target startup BACKEND 1
    python -m eventsched._bench._target jobs-start BACKEND COUNT PATH (see :mod:`._jobstart`)

``startup``: start an :class:`EventScheduler`, emit one event, print ``ready`` from its
handler, then one JSON line.

``shutdown``: an :class:`EventScheduler` under :meth:`~EventScheduler.run` (signal
handling on) whose handler holds the first event until shutdown begins, so the queue of
``EVENTS`` is full; prints ``ready``, waits for SIGTERM, drains (``HANDLER_US`` of CPU
per event) and prints one JSON line: monotonic times and the final statistics.

``memory:STRUCTURE`` (``eventsched``, ``anyio`` or ``asyncio_queue``): resident
memory before and after buffering ``EVENTS`` events, printed as one JSON line, in a
fresh process per measurement so that no freed memory of another is reused.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .._events import Event
from .._scheduler import EventScheduler
from ._jobstart import saved_start
from ._workloads import DATA, KIND, spin

__all__ = ["backend_args", "main", "rss"]


def backend_args(backend: str) -> tuple[str, dict[str, Any]]:
    """``anyio.run``'s backend and options for a bench backend name."""
    if backend == "uvloop":
        return "asyncio", {"use_uvloop": True}
    return backend, {}


def rss() -> int:
    """The process's resident memory now, in bytes.

    Not the peak (``ru_maxrss``): start-up (imports) leaves a peak above the resident
    size, which the first events fill without raising it, so peak growth undercounts by
    an amount that differed from backend to backend.
    """
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # pragma: no cover - not Linux: the peak is all there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _out(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class _Gate:
    """A service whose only job is to open the gate when shutdown begins."""

    name = "bench-gate"

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.began_at: float | None = None

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        await anyio.sleep_forever()

    def begin_shutdown(self) -> None:
        self.began_at = time.monotonic()
        self.gate.set()

    async def wait_idle(self) -> None:
        return None


async def _shutdown(events: int, handler_us: float) -> None:
    gate = _Gate()
    holding = anyio.Event()
    handled = 0
    work = handler_us / 1e6

    async def handler(event: Event) -> None:
        nonlocal handled
        holding.set()
        await gate.gate.wait()
        spin(work)
        handled += 1

    scheduler = EventScheduler(queue_size=events, overflow="block", grace_period=60)
    scheduler.add_service(gate)
    scheduler.on(KIND, handler)
    async with anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        scheduler.emit_nowait(KIND, DATA)
        await holding.wait()
        for _ in range(events):
            scheduler.emit_nowait(KIND, DATA)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    stats = scheduler.statistics()
    _out(
        {
            "began_at": gate.began_at,
            "ended_at": time.monotonic(),
            "buffered": events + 1,
            "handled": handled,
            "stats": stats.as_dict(),
        }
    )


async def _startup() -> None:
    handled = anyio.Event()

    async def first(event: Event) -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        handled.set()

    scheduler = EventScheduler()
    scheduler.on(KIND, first)
    async with scheduler:
        scheduler.emit_nowait(KIND, DATA)
        with anyio.fail_after(30):
            await handled.wait()
    _out({"handled": 1})


async def _memory(structure: str, events: int) -> None:
    if structure == "eventsched":
        gate, holding = anyio.Event(), anyio.Event()

        async def held(event: Event) -> None:
            holding.set()
            await gate.wait()

        scheduler = EventScheduler(queue_size=events, overflow="block")
        scheduler.on(KIND, held)
        async with scheduler:
            scheduler.emit_nowait(KIND, DATA)
            await holding.wait()
            before = rss()
            for _ in range(events):
                scheduler.emit_nowait(KIND, DATA)
            after = rss()
            queued = scheduler.statistics().still_queued
            gate.set()
    elif structure == "anyio":
        send, receive = anyio.create_memory_object_stream[Event](events)
        with send, receive:
            before = rss()
            for _ in range(events):
                send.send_nowait(Event.create(KIND, DATA))
            after = rss()
            queued = receive.statistics().current_buffer_used
    elif structure == "asyncio_queue":
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=events)
        before = rss()
        for _ in range(events):
            queue.put_nowait(Event.create(KIND, DATA))
        after = rss()
        queued = queue.qsize()
    else:
        raise ValueError(f"unknown memory structure {structure!r}")
    _out({"before": before, "after": after, "events": queued})


def main(argv: list[str]) -> None:
    mode, backend, events = argv[0], argv[1], int(argv[2])
    name, options = backend_args(backend)
    if mode == "jobs-start":  # events: the saved jobs; argv[3]: the state file
        _out(anyio.run(saved_start, argv[3], events, backend=name, backend_options=options))
    elif mode == "startup":
        anyio.run(_startup, backend=name, backend_options=options)
    elif mode == "shutdown":
        anyio.run(_shutdown, events, float(argv[3]), backend=name, backend_options=options)
    elif mode.startswith("memory:"):
        structure = mode.partition(":")[2]
        anyio.run(_memory, structure, events, backend=name, backend_options=options)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
