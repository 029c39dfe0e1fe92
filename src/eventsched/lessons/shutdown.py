"""Lesson: graceful shutdown and signals.

Stopping well is a sequence, not a single call:

1. stop taking new work;
2. let the work already queued drain, but only for a *grace period*;
3. when the grace period is over, cancel what is still running, and count it
   ("aborted in flight"), together with what never got its turn ("still queued").

``EventScheduler`` does exactly this when its ``async with`` block ends, when
``stop()`` is called, or, under ``run()``, when SIGINT (Ctrl+C) or SIGTERM arrives. A
*second* signal during the drain means "I will not wait": it exits at once with code
130 (SIGINT, measured below); a SIGTERM gives 143, which the project's signal tests
check rather than this lesson.

What happens to a signal that nobody receives is the ``ctrl-c`` lesson.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass

import anyio
import sniffio

from .. import EXIT_SIGINT, Event, EventScheduler
from ._base import Lesson
from ._children import CHILD_WAIT, LineReader

#: Grace period of the "stuck handler" part: short, so that the lesson is quick.
SHORT_GRACE = 0.2

# EventScheduler.run() receives the signals; a handler hangs during the drain.
SECOND_SIGNAL_CHILD = """
import sys, anyio
from eventsched import EventScheduler, EventType

async def main():
    scheduler = EventScheduler(grace_period=30)

    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def hang(event):
        print("draining", flush=True)
        await anyio.sleep_forever()  # will not finish within the 30 s grace period

    async def say_ready():
        print("ready", flush=True)

    scheduler.add_job(say_ready, "date")  # runs once, as soon as the scheduler runs
    await scheduler.run()

anyio.run(main, backend=sys.argv[1])
"""


@dataclass(frozen=True, slots=True)
class ShutdownOutcome:
    """What the demonstration measured."""

    backend: str
    drained_handled: int
    """Quick handlers: events handled during the drain (all 20 expected)."""
    drained_aborted: int
    stuck_aborted: int
    """Stuck handler: events cancelled in flight after the grace period (1 expected)."""
    stuck_still_queued: int
    """Stuck handler: events that never got their turn: 4 of ours and the scheduler's
    own ``shutdown_requested``, queued behind them (5 expected)."""
    stuck_unaccounted: int
    stuck_shutdown_seconds: float
    """How long the shutdown with the stuck handler took (about the grace period)."""
    second_signal_exit_code: int | None
    """Exit code after SIGINT, then SIGINT again during the drain (130 expected)."""
    second_signal_seconds: float
    """Seconds from the second SIGINT to the exit (the grace period was 30 s)."""

    @property
    def claim(self) -> str:
        return (
            "Shutdown drains what is queued within the grace period, then cancels what is "
            "left and counts it (aborted in flight, still queued). A second SIGINT during "
            f"the drain exits at once with code {EXIT_SIGINT}."
        )

    @property
    def headline(self) -> str:
        return (
            f"drained {self.drained_handled} of 20; a stuck handler was cancelled after "
            f"{self.stuck_shutdown_seconds:.2f} s (grace {SHORT_GRACE} s) with "
            f"{self.stuck_aborted + self.stuck_still_queued} events counted; a second "
            f"SIGINT exited with {self.second_signal_exit_code}"
        )

    @property
    def held(self) -> bool:
        return (
            self.drained_handled == 20
            and self.drained_aborted == 0
            and self.stuck_aborted == 1
            and self.stuck_still_queued == 5
            and self.stuck_unaccounted == 0
            and SHORT_GRACE <= self.stuck_shutdown_seconds < SHORT_GRACE + 5
            and self.second_signal_exit_code == EXIT_SIGINT
            and self.second_signal_seconds < 10
        )

    def figures(self) -> list[str]:
        return [
            f"quick handlers, 20 queued at shutdown: handled {self.drained_handled}, "
            f"aborted {self.drained_aborted}",
            f"stuck handler, 5 queued, grace {SHORT_GRACE} s: shutdown took "
            f"{self.stuck_shutdown_seconds:.2f} s; aborted in flight {self.stuck_aborted}, "
            f"still queued {self.stuck_still_queued} (4 of ours and the scheduler's own "
            f"shutdown_requested), unaccounted {self.stuck_unaccounted}",
            f"SIGINT, then SIGINT again during a 30 s drain: exit code "
            f"{self.second_signal_exit_code}, {self.second_signal_seconds:.2f} s after "
            "the second signal",
        ]


# -- 1. Drain within the grace period ----------------------------------------------------


async def _drain_quick() -> tuple[int, int]:
    scheduler = EventScheduler(grace_period=5)
    handled = 0

    @scheduler.on("work")
    async def quick(event: Event) -> None:
        nonlocal handled
        await anyio.lowlevel.checkpoint()
        handled += 1

    async with scheduler:
        for n in range(20):
            await scheduler.emit("work", {"n": n})
        # Leaving the block starts the shutdown with all 20 still queued.
    return handled, scheduler.statistics().aborted_in_flight


# -- 2. A handler that will not finish: cancelled when the grace period ends -----------


async def _drain_stuck() -> tuple[int, int, int, float]:
    scheduler = EventScheduler(grace_period=SHORT_GRACE)
    never = anyio.Event()

    @scheduler.on("work")
    async def stuck(event: Event) -> None:
        await never.wait()  # stands for a call that hangs

    async with scheduler:
        for n in range(5):
            await scheduler.emit("work", {"n": n})
        started = anyio.current_time()
    took = anyio.current_time() - started
    stats = scheduler.statistics()
    return stats.aborted_in_flight, stats.still_queued, stats.unaccounted, took


# -- 3. A second signal, in a child process ------------------------------------------


async def _second_signal(backend: str) -> tuple[int | None, float]:
    command = [sys.executable, "-c", SECOND_SIGNAL_CHILD, backend]
    with anyio.fail_after(CHILD_WAIT):
        async with await anyio.open_process(command, stderr=None) as process:
            stdout = LineReader(process)
            assert await stdout.readline() == "ready"
            process.send_signal(signal.SIGINT)  # first: start the graceful shutdown
            assert await stdout.readline() == "draining"
            process.send_signal(signal.SIGINT)  # second: stop waiting
            sent = anyio.current_time()
            code = await process.wait()
    return code, anyio.current_time() - sent


async def demonstrate() -> ShutdownOutcome:
    """Run the three parts on the current backend (the second signal in a child)."""
    backend = sniffio.current_async_library()
    handled, aborted = await _drain_quick()
    stuck_aborted, still_queued, unaccounted, took = await _drain_stuck()
    code, after_second = await _second_signal(backend)
    return ShutdownOutcome(
        backend=backend,
        drained_handled=handled,
        drained_aborted=aborted,
        stuck_aborted=stuck_aborted,
        stuck_still_queued=still_queued,
        stuck_unaccounted=unaccounted,
        stuck_shutdown_seconds=took,
        second_signal_exit_code=code,
        second_signal_seconds=after_second,
    )


LESSON = Lesson(
    name="shutdown",
    title="Graceful shutdown and signals: drain within a grace period, then cancel",
    idea=(
        "Stopping well means: take no new work, let queued work drain for a grace period, "
        "then cancel what is left and count it. A second Ctrl+C means stop waiting."
    ),
    demonstrate=demonstrate,
    differences=(
        "With a receiver (anyio.open_signal_receiver, as EventScheduler.run uses) both "
        "backends behave the same; the ctrl-c lesson shows how they differ without one."
    ),
)
