"""Lesson: Ctrl+C and SIGTERM without a signal receiver, per backend.

With a receiver (``anyio.open_signal_receiver``, as ``EventScheduler.run()`` uses), a
signal is just a message to a task, and the program decides what to do. Without one,
the defaults of each backend apply, and they differ.

*Where Ctrl+C lands.* trio raises ``KeyboardInterrupt`` right where the main thread is,
even in the middle of synchronous code that never awaits (trio's own internals are
protected, your code is not). asyncio (through ``asyncio.Runner``, which anyio uses)
only *cancels* the main task: synchronous code runs on to its next await, the task
sees a ``CancelledError`` there, and ``KeyboardInterrupt`` comes out of ``run()`` after
cleanup. So on trio any line of your code may be interrupted half-way; on asyncio only
awaits can be.

*What comes out of run().* A ``KeyboardInterrupt`` raised inside a task group is one of
the group's errors, and groups are strict: on trio it reaches ``anyio.run`` as a
``BaseExceptionGroup([KeyboardInterrupt])``, which ``except KeyboardInterrupt`` does not
catch; with no task group in the way it is a plain ``KeyboardInterrupt``. On asyncio it
is plain either way (it is raised by the runner, outside any group). ``except*
KeyboardInterrupt`` catches all of these.

*SIGTERM* (what ``kill``, systemd and container runtimes send) has no Python handler by
default: without a receiver the process dies on the spot, and no ``finally`` block runs.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson
from ._children import signal_child

BACKENDS = ("asyncio", "trio")
CHILDREN_AT_ONCE = 3

# Both children report what came out of anyio.run in one line.
_REPORT = """
try:
    anyio.run(main, backend=sys.argv[1])
except BaseException as exc:
    group = isinstance(exc, BaseExceptionGroup)
    inner = ",".join(type(e).__name__ for e in exc.exceptions) if group else "-"
    plain = isinstance(exc, KeyboardInterrupt)  # would `except KeyboardInterrupt` catch it?
    print(type(exc).__name__, inner, plain, flush=True)
"""

# What does Ctrl+C look like coming out of anyio.run from inside a task group?
GROUP_CHILD = (
    """
import sys, anyio

async def main():
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep_forever)
        print("ready", flush=True)
        await anyio.sleep_forever()
"""
    + _REPORT
)

# Where does Ctrl+C land (in synchronous code, or at the next await), and what comes
# out of anyio.run with no task group in the way?
LANDING_CHILD = (
    """
import asyncio, sys, time, anyio

def interrupt_pending():
    # asyncio's runner cancels the main task on SIGINT: the count shows it.
    if sys.argv[1] != "asyncio":
        return False
    return asyncio.current_task().cancelling() > 0

async def main():
    try:
        print("ready", flush=True)
        end = time.monotonic() + 10
        while time.monotonic() < end and not interrupt_pending():
            pass  # synchronous work: no await, no checkpoint
    except KeyboardInterrupt:
        print("sync", flush=True)
        raise
    try:
        await anyio.sleep(10)
    except BaseException:
        print("await", flush=True)
        raise
"""
    + _REPORT
)

# SIGTERM, with and without a receiver: does the finally block run?
SIGTERM_CHILD = """
import signal, sys, anyio

async def main():
    try:
        if sys.argv[2] == "receiver":
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                print("ready", flush=True)
                async for _ in signals:
                    break
        else:
            print("ready", flush=True)
            await anyio.sleep_forever()
    finally:
        print("cleanup", flush=True)

anyio.run(main, backend=sys.argv[1])
"""


@dataclass(frozen=True, slots=True)
class Shape:
    """What Ctrl+C looked like coming out of ``anyio.run``."""

    backend: str
    group: bool
    """Whether the program was inside a task group."""
    raised: str
    inside: str
    """Types inside it, if it was an exception group ("-" if not)."""
    plain_except_catches: bool


@dataclass(frozen=True, slots=True)
class CtrlCOutcome:
    """What the demonstration measured (in child processes, on both backends)."""

    backend: str
    shapes: tuple[Shape, ...]
    landed: dict[str, str]
    """Per backend: ``sync`` (inside synchronous code) or ``await`` (at the next await)."""
    sigterm_cleanup: dict[tuple[str, str], tuple[bool, int]]
    """Per (backend, ``receiver``/``none``): the finally block ran, the exit code."""

    def shape(self, backend: str, group: bool) -> Shape:
        """The shape on ``backend``, with or without a task group."""
        return next(s for s in self.shapes if s.backend == backend and s.group == group)

    @property
    def claim(self) -> str:
        return (
            "Without a receiver, Ctrl+C on trio lands inside synchronous code and comes out "
            "of a task group as a BaseExceptionGroup (a plain KeyboardInterrupt without "
            "one); on asyncio it lands at the next await and is a plain KeyboardInterrupt "
            "either way. SIGTERM without a receiver kills the process with no cleanup."
        )

    @property
    def headline(self) -> str:
        trio_group = self.shape("trio", True)
        return (
            f"Ctrl+C landed: asyncio {self.landed.get('asyncio')}, trio "
            f"{self.landed.get('trio')}; trio in a task group raised {trio_group.raised}; "
            f"SIGTERM without a receiver ran the cleanup: "
            f"{self.sigterm_cleanup[('asyncio', 'none')][0]}"
        )

    @property
    def held(self) -> bool:
        def plain(s: Shape) -> bool:
            return s.raised == "KeyboardInterrupt" and s.plain_except_catches

        trio_group = self.shape("trio", True)
        shapes = (
            plain(self.shape("asyncio", True))
            and plain(self.shape("asyncio", False))
            and plain(self.shape("trio", False))
            and trio_group.raised == "BaseExceptionGroup"
            and trio_group.inside == "KeyboardInterrupt"
            and not trio_group.plain_except_catches
        )
        sigterm = all(
            self.sigterm_cleanup[(b, "none")] == (False, -signal.SIGTERM)
            and self.sigterm_cleanup[(b, "receiver")] == (True, 0)
            for b in BACKENDS
        )
        landed = self.landed == {"asyncio": "await", "trio": "sync"}
        return shapes and sigterm and landed

    def figures(self) -> list[str]:
        lines = []
        for s in self.shapes:
            where = "in a task group" if s.group else "no task group"
            lines.append(
                f"Ctrl+C on {s.backend}, {where}: anyio.run raised {s.raised} (containing: "
                f"{s.inside}); `except KeyboardInterrupt` catches it: {s.plain_except_catches}"
            )
        for backend, where in sorted(self.landed.items()):
            lines.append(
                f"Ctrl+C during synchronous work on {backend}: landed "
                + ("inside it" if where == "sync" else "at the next await")
            )
        for (backend, kind), (cleaned, code) in sorted(self.sigterm_cleanup.items()):
            with_ = "with a receiver" if kind == "receiver" else "without a receiver"
            lines.append(
                f"SIGTERM on {backend} {with_}: the finally block ran: {cleaned}, exit code {code}"
            )
        return lines


async def demonstrate() -> CtrlCOutcome:
    """Signal small child programs, side by side, on both backends."""
    backend = sniffio.current_async_library()
    shapes: list[Shape] = []
    landed: dict[str, str] = {}
    sigterm: dict[tuple[str, str], tuple[bool, int]] = {}

    # Children start slowly on a loaded machine: a few at a time rather than all at once.
    limiter = anyio.CapacityLimiter(CHILDREN_AT_ONCE)

    def shape_of(child_backend: str, group: bool, report: str) -> Shape:
        raised, inside, plain = report.split()
        return Shape(child_backend, group, raised, inside, plain == "True")

    async def in_group(child_backend: str) -> None:
        async with limiter:
            lines, _ = await signal_child(GROUP_CHILD, child_backend)
        shapes.append(shape_of(child_backend, True, lines[-1]))

    async def landing(child_backend: str) -> None:
        async with limiter:
            lines, _ = await signal_child(LANDING_CHILD, child_backend)
        landed[child_backend] = lines[0] if len(lines) == 2 else "nowhere"
        shapes.append(shape_of(child_backend, False, lines[-1]))

    async def terminate(child_backend: str, kind: str) -> None:
        async with limiter:
            lines, code = await signal_child(
                SIGTERM_CHILD, child_backend, kind, signum=signal.SIGTERM
            )
        sigterm[(child_backend, kind)] = ("cleanup" in lines, code)

    async with anyio.create_task_group() as tg:
        for child_backend in BACKENDS:
            tg.start_soon(in_group, child_backend)
            tg.start_soon(landing, child_backend)
            for kind in ("receiver", "none"):
                tg.start_soon(terminate, child_backend, kind)
    return CtrlCOutcome(
        backend=backend,
        shapes=tuple(sorted(shapes, key=lambda s: (s.backend, not s.group))),
        landed=landed,
        sigterm_cleanup=sigterm,
    )


LESSON = Lesson(
    name="ctrl-c",
    title="Ctrl+C and SIGTERM without a receiver: where they land, what run() raises",
    idea=(
        "Without a signal receiver, Ctrl+C is an exception: on trio it can land in any "
        "line of synchronous code, on asyncio only at an await. Out of a task group it "
        "comes wrapped in an exception group on trio. SIGTERM kills outright, skipping "
        "every finally block. Use a receiver, as EventScheduler.run() does."
    ),
    demonstrate=demonstrate,
    differences=(
        "asyncio: the runner cancels the main task and raises KeyboardInterrupt after the "
        "cleanup, plain. trio: KeyboardInterrupt is raised where the main thread is, and a "
        "task group wraps it. except* KeyboardInterrupt handles every case on both."
    ),
)
