"""Lesson: task groups own their tasks.

A task group (anyio's ``create_task_group()``, trio's nursery) is a block of code that
does not end until every task started in it has ended. That one rule gives three
guarantees:

* a child's exception is not lost: it travels to the code that opened the group;
* when one child fails, its siblings are cancelled rather than left running;
* nothing outlives the block, so there is always someone to report to.

Learners coming from asyncio know two relatives. ``asyncio.TaskGroup`` (Python 3.11)
follows the same rules. ``asyncio.gather`` does not: it raises the first error to its
caller and leaves the sibling tasks running, unowned.

The starkest contrast is ``asyncio.create_task`` with nobody awaiting the task: the task fails,
the code that started it carries on as if nothing happened, and the exception is only
printed (as "Task exception was never retrieved") when the task object is garbage
collected, if ever. trio has no such call: every task needs a nursery.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import anyio
import sniffio

from ._base import Lesson


class OrderRejected(Exception):
    """The failure our child task runs into."""


@dataclass(frozen=True, slots=True)
class TaskGroupOutcome:
    """What the demonstration measured."""

    backend: str
    error_reached_parent: bool
    """The parent caught the child's error (inside an exception group)."""
    error_group_type: str
    """Type of what the parent received: anyio task groups raise an exception group."""
    siblings_cancelled: int
    """Siblings (out of 2) that saw the cancellation when their sibling failed."""
    cancellation_type: str
    """The exception a cancelled task sees: it differs between the backends."""
    detached_error_seen_by_parent: bool | None
    """asyncio only: did the code that called create_task() see the error? (None on trio)"""
    detached_error_only_logged: bool | None
    """asyncio only: was the error reported only by the garbage collector's log line?"""
    timeline: tuple[tuple[str, float], ...]
    """When each child ended and when the ``async with`` block ended, in seconds."""
    gather_siblings_running: int | None
    """asyncio only: siblings still running when ``asyncio.gather`` raised (of 2)."""
    asyncio_taskgroup_cancelled: int | None
    """asyncio only: siblings ``asyncio.TaskGroup`` cancelled when one child failed (of 2)."""

    @property
    def block_waited(self) -> bool:
        """The block ended only after its last child had ended."""
        ends = dict(self.timeline)
        block = ends.pop("block")
        return block >= max(ends.values())

    @property
    def headline(self) -> str:
        text = (
            f"a failing child cancelled {self.siblings_cancelled} of 2 siblings and reached "
            f"the parent: {self.error_reached_parent}; the block ended at "
            f"{dict(self.timeline)['block'] * 1000:.0f} ms, after its last child"
        )
        if self.gather_siblings_running is not None:
            text += f"; asyncio.gather left {self.gather_siblings_running} of 2 running"
        return text

    @property
    def claim(self) -> str:
        text = (
            "In a task group a failing child cancels its siblings and its error reaches the "
            "parent, as an exception group (catch it with except*); the block ends only "
            "after its last child has ended."
        )
        if self.backend == "asyncio":
            text += (
                " asyncio.TaskGroup does the same; asyncio.gather raises the first error "
                "and leaves the siblings running."
                " A detached asyncio.create_task fails silently: its starter never sees the "
                "error, which surfaces only as a log line when the task is garbage collected."
            )
        return text

    @property
    def held(self) -> bool:
        structured = (
            self.error_reached_parent and self.siblings_cancelled == 2 and self.block_waited
        )
        if self.backend != "asyncio":
            return structured
        return (
            structured
            and self.gather_siblings_running == 2
            and self.asyncio_taskgroup_cancelled == 2
            and self.detached_error_seen_by_parent is False
            and self.detached_error_only_logged is True
        )

    def figures(self) -> list[str]:
        lines = [
            f"task group: the parent caught the child's OrderRejected: "
            f"{self.error_reached_parent} (wrapped in {self.error_group_type})",
            f"task group: siblings cancelled when their sibling failed: "
            f"{self.siblings_cancelled} of 2 (each saw {self.cancellation_type})",
        ]
        lines.append(
            "timeline: "
            + ", ".join(f"{name} ended at {t * 1000:.0f} ms" for name, t in self.timeline)
        )
        if self.backend == "asyncio":
            lines += [
                f"asyncio.TaskGroup: siblings cancelled when their sibling failed: "
                f"{self.asyncio_taskgroup_cancelled} of 2",
                f"asyncio.gather: siblings still running when it raised the error: "
                f"{self.gather_siblings_running} of 2",
                f"create_task: the starter saw the error: {self.detached_error_seen_by_parent}",
                f"create_task: the error only appeared in the loop's log at garbage "
                f"collection: {self.detached_error_only_logged}",
            ]
        else:
            lines.append(
                "asyncio.TaskGroup, gather, create_task: skipped, they belong to asyncio "
                "(trio has no way to start a task without a nursery)"
            )
        return lines


# -- Part 1: a task group ---------------------------------------------------------------


async def _structured() -> tuple[bool, str, int, str]:
    cancelled: list[str] = []
    both_waiting = anyio.Event()
    waiting = 0

    async def sibling(name: str) -> None:
        nonlocal waiting
        try:
            waiting += 1
            if waiting == 2:
                both_waiting.set()
            await anyio.sleep_forever()  # stands for real work: a download, a query
        except anyio.get_cancelled_exc_class():
            # We only note that we were cancelled; then we MUST re-raise it.
            cancelled.append(name)
            raise

    async def failing_child() -> None:
        await both_waiting.wait()  # fail only once both siblings are busy
        raise OrderRejected("order 42: card declined")

    caught = False
    group_type = ""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sibling, "inventory")
            tg.start_soon(sibling, "shipping")
            tg.start_soon(failing_child)
        # Not reached: the block re-raises the child's error once every child has ended.
    except* OrderRejected as group:
        # ``except*`` matches inside the group (``except OrderRejected`` would not).
        caught = True
        group_type = type(group).__name__
    cancel_name = anyio.get_cancelled_exc_class().__name__
    return caught, group_type, len(cancelled), cancel_name


# -- Part 2: the block waits for every child --------------------------------------------


async def _timeline() -> tuple[tuple[str, float], ...]:
    start = anyio.current_time()
    ends: list[tuple[str, float]] = []

    async def child(name: str, seconds: float) -> None:
        await anyio.sleep(seconds)
        ends.append((name, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        for name, seconds in (("fast", 0.01), ("medium", 0.03), ("slow", 0.06)):
            tg.start_soon(child, name, seconds)
        # The body is done here, at once; the block still waits for the children.
    ends.append(("block", anyio.current_time() - start))
    return tuple(ends)


# -- Part 3: asyncio's own TaskGroup and gather ------------------------------------------


async def _asyncio_relatives() -> tuple[int, int]:
    import asyncio

    async def run(use_gather: bool) -> tuple[int, int]:
        cancelled = 0
        started: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
        siblings: list[asyncio.Task[None]] = []

        async def sibling(ready: asyncio.Event) -> None:
            nonlocal cancelled
            try:
                ready.set()
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled += 1
                raise

        async def failing() -> None:
            for ready in started:
                await ready.wait()
            raise OrderRejected("order 44: card declined")

        try:
            if use_gather:
                siblings = [asyncio.ensure_future(sibling(e)) for e in started]
                await asyncio.gather(*siblings, failing())
            else:
                async with asyncio.TaskGroup() as tg:
                    for ready in started:
                        tg.create_task(sibling(ready))
                    tg.create_task(failing())
        except* OrderRejected:
            pass
        running = sum(not task.done() for task in siblings)
        for task in siblings:  # gather left them to us: clean up after it
            task.cancel()
        await asyncio.gather(*siblings, return_exceptions=True)
        return cancelled, running

    taskgroup_cancelled, _ = await run(use_gather=False)
    _, gather_running = await run(use_gather=True)
    return taskgroup_cancelled, gather_running


# -- Part 4: a detached asyncio task (the anti-pattern) ----------------------------------


async def _detached_on_asyncio() -> tuple[bool, bool]:
    import asyncio

    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    # Collect what asyncio would print to stderr, so that we can count it.
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        failed = asyncio.Event()

        async def background_job() -> None:
            try:
                raise OrderRejected("order 43: card declined")
            finally:
                failed.set()

        saw_error = False
        try:
            task = asyncio.create_task(background_job())  # nobody owns this task
            await failed.wait()
            await asyncio.sleep(0)  # let the task finish completely
            # The starter carries on: no exception arrives here.
        except OrderRejected:
            saw_error = True
        logged_before_gc = bool(reports)
        del task  # the last reference goes...
        gc.collect()  # ...and only now does asyncio report the error
        only_logged = (
            not logged_before_gc
            and len(reports) == 1
            and isinstance(reports[0].get("exception"), OrderRejected)
        )
    finally:
        loop.set_exception_handler(previous_handler)
    return saw_error, only_logged


async def demonstrate() -> TaskGroupOutcome:
    """Run both parts on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    caught, group_type, cancelled, cancel_name = await _structured()
    seen: bool | None = None
    only_logged: bool | None = None
    taskgroup_cancelled: int | None = None
    gather_running: int | None = None
    if backend == "asyncio":
        seen, only_logged = await _detached_on_asyncio()
        taskgroup_cancelled, gather_running = await _asyncio_relatives()
    return TaskGroupOutcome(
        backend=backend,
        error_reached_parent=caught,
        error_group_type=group_type,
        siblings_cancelled=cancelled,
        cancellation_type=cancel_name,
        detached_error_seen_by_parent=seen,
        detached_error_only_logged=only_logged,
        timeline=await _timeline(),
        gather_siblings_running=gather_running,
        asyncio_taskgroup_cancelled=taskgroup_cancelled,
    )


LESSON = Lesson(
    name="task-groups",
    title="Task groups own their tasks: errors reach the parent, siblings are cancelled",
    idea=(
        "A task group does not end until all its tasks have ended. When one child fails, "
        "the group cancels the others and re-raises the error to the code that opened it. "
        "asyncio.TaskGroup does the same; asyncio.gather leaves the others running. A task "
        "started with asyncio.create_task and never awaited has no such owner: its "
        "error is lost until the garbage collector logs it."
    ),
    demonstrate=demonstrate,
    differences=(
        "Through anyio the task group behaves the same on both. What a cancelled task "
        "sees differs: asyncio.CancelledError on asyncio, trio.Cancelled on trio (catch "
        "anyio.get_cancelled_exc_class() and re-raise). Detached tasks exist only on "
        "asyncio: trio has no create_task, every task needs a nursery."
    ),
)
