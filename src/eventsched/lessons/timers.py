"""Lesson: timers, and how late they fire.

``await anyio.sleep_until(t)`` promises not to return *before* ``t``. How long after
depends on how the loop waits. With nothing else to do, a loop asks the kernel to
block in ``epoll_wait`` until the next timer is due; ``epoll_wait`` counts in whole
milliseconds, and both asyncio and trio round the wait *up* so as never to wake early.
A timer due at a random moment therefore fires up to about a millisecond late on an
idle loop (more when the machine is busy: the kernel has to schedule the process too).

A busy loop never blocks in ``epoll_wait``: it only polls, and checks its timers
between tasks. On a quiet machine its timers fire within tens of microseconds; on a
loaded one a process that never sleeps is the one the kernel preempts, and its timers
can be later than an idle loop's. The rows show which it was on your machine, in this
run; the lesson claims only what holds on every machine: no timer fires early.

Two practical consequences: never expect sub-millisecond precision from sleeps on an
idle loop, and know which clock you measure with. asyncio and trio are measured on
their own loop clock. uvloop's ``loop.time()`` counts whole milliseconds, so its row
is measured on ``time.monotonic()`` instead, and there a timer can return before the
moment it was due (a negative "earliest"): the loop's coarse clock said it was time.

The demonstration measures both backends: the one you chose in this thread, the
other one in a worker thread (an idle loop of its own), and uvloop the same way when
it is installed (``uv run --extra uvloop``).
"""

from __future__ import annotations

import importlib.util
import random
import statistics
import time
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio

from ._base import Lesson

SAMPLES = 60
BASE_DELAY = 0.002
"""Each timer is due 2-3 ms ahead, at a random fraction of a millisecond."""


@dataclass(frozen=True, slots=True)
class Lateness:
    """How late ``sleep_until`` returned, in milliseconds, on one loop."""

    backend: str
    loop: str
    """``idle`` (nothing else to do) or ``busy`` (another task always ready)."""
    median_ms: float
    p90_ms: float
    earliest_ms: float
    """Negative would mean a timer fired early."""
    over_1ms: int
    """Timers more than a millisecond late, out of SAMPLES."""

    @classmethod
    def of(cls, backend: str, loop: str, late: list[float]) -> Lateness:
        ordered = sorted(x * 1000 for x in late)
        return cls(
            backend=backend,
            loop=loop,
            median_ms=statistics.median(ordered),
            p90_ms=ordered[int(len(ordered) * 0.9)],
            earliest_ms=ordered[0],
            over_1ms=sum(x > 1.0 for x in ordered),
        )

    def line(self) -> str:
        return (
            f"{self.backend:<7} {self.loop} loop: median {self.median_ms:.3f} ms late, "
            f"p90 {self.p90_ms:.3f} ms, earliest {self.earliest_ms:+.3f} ms, "
            f"{self.over_1ms}/{SAMPLES} over 1 ms"
        )


@dataclass(frozen=True, slots=True)
class TimersOutcome:
    """What the demonstration measured."""

    backend: str
    measurements: tuple[Lateness, ...]
    """Idle and busy loop, for the chosen backend and the other one."""

    def get(self, backend: str, loop: str) -> Lateness:
        """The measurement of ``backend`` on an ``idle`` or ``busy`` loop."""
        return next(m for m in self.measurements if m.backend == backend and m.loop == loop)

    @property
    def idle_ratio(self) -> float:
        """asyncio's median lateness on an idle loop over trio's."""
        trio_median = self.get("trio", "idle").median_ms
        return self.get("asyncio", "idle").median_ms / max(trio_median, 1e-6)

    @property
    def claim(self) -> str:
        return (
            "No timer fires early on asyncio or trio, on an idle or a busy loop: both round "
            "epoll_wait's whole milliseconds up. How late they fire depends on the loop and "
            "the machine: see the rows."
        )

    @property
    def held(self) -> bool:
        return all(m.earliest_ms >= 0 for m in self.measurements if m.backend != "uvloop")

    def figures(self) -> list[str]:
        lines = [m.line() for m in self.measurements]
        lines.append(f"idle loop, asyncio's median over trio's: {self.idle_ratio:.2f}x")
        if not any(m.backend == "uvloop" for m in self.measurements):
            lines.append("uvloop: not installed here (uv run --extra uvloop adds its rows)")
        return lines

    @property
    def headline(self) -> str:
        asyncio_, trio_ = self.get("asyncio", "idle"), self.get("trio", "idle")
        return (
            f"idle loop median lateness: asyncio {asyncio_.median_ms:.2f} ms, trio "
            f"{trio_.median_ms:.2f} ms; earliest on either "
            f"{min(asyncio_.earliest_ms, trio_.earliest_ms):+.3f} ms (none early)"
        )


async def _lateness(samples: int = SAMPLES) -> list[float]:
    rng = random.Random(7)
    late = []
    coarse = _on_uvloop()
    for _ in range(samples):
        delay = BASE_DELAY + rng.random() * 0.001
        if coarse:  # uvloop's loop clock counts whole ms: measure on time.monotonic()
            due = time.monotonic() + delay
            await anyio.sleep(delay)
            late.append(time.monotonic() - due)
            continue
        due = anyio.current_time() + delay
        await anyio.sleep_until(due)
        late.append(anyio.current_time() - due)  # the loop's own clock on both sides
    return late


def _on_uvloop() -> bool:
    if sniffio.current_async_library() != "asyncio":
        return False
    import asyncio

    return type(asyncio.get_running_loop()).__module__.startswith("uvloop")


async def _busy_lateness() -> list[float]:
    """The same, while another task is always ready to run (the loop never blocks)."""
    async with anyio.create_task_group() as tg:

        async def spin() -> None:
            while True:
                await anyio.lowlevel.checkpoint()

        tg.start_soon(spin)
        late = await _lateness()
        tg.cancel_scope.cancel()
    return late


async def _measure() -> tuple[Lateness, Lateness]:
    backend = "uvloop" if _on_uvloop() else sniffio.current_async_library()
    idle = Lateness.of(backend, "idle", await _lateness())
    busy = Lateness.of(backend, "busy", await _busy_lateness())
    return idle, busy


def _measure_in_this_thread(backend: str) -> tuple[Lateness, Lateness]:
    if backend == "uvloop":
        return anyio.run(_measure, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(_measure, backend=backend)


async def demonstrate() -> TimersOutcome:
    """Measure timer lateness on this backend, then on the other one in a worker thread."""
    backend = sniffio.current_async_library()
    other = "trio" if backend == "asyncio" else "asyncio"
    here = await _measure()
    # While the other loop runs in its thread, this one waits idle for the result.
    there = await anyio.to_thread.run_sync(_measure_in_this_thread, other)
    uvloop: tuple[Lateness, ...] = ()
    if importlib.util.find_spec("uvloop") is not None:
        uvloop = await anyio.to_thread.run_sync(_measure_in_this_thread, "uvloop")
    return TimersOutcome(backend=backend, measurements=(*here, *there, *uvloop))


LESSON = Lesson(
    name="timers",
    title="Timers: how late sleep_until wakes on an idle and a busy loop, per backend",
    idea=(
        "A timer never fires early, but it fires late by however the loop waits. An idle "
        "loop blocks in epoll_wait, which counts whole milliseconds rounded up, so its "
        "timers are late by up to a millisecond and more; a busy loop only polls, which is "
        "sooner on a quiet machine and not always on a loaded one."
    ),
    demonstrate=demonstrate,
    differences=(
        "Both wait in epoll_wait with millisecond resolution and round up, so neither "
        "fires early; compare their medians above on your machine. uvloop (an asyncio "
        "loop) counts loop.time() in whole milliseconds: its row is measured on "
        "time.monotonic(), where its timers can return before they were due."
    ),
)
