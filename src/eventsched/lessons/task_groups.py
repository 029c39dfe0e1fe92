"""Lesson 1: task groups own their tasks.

A task group (anyio's ``create_task_group()``, trio's nursery) is a block of code that
does not end until every task started in it has ended. That one rule gives three
guarantees:

* a child's exception is not lost: it travels to the code that opened the group;
* when one child fails, its siblings are cancelled rather than left running;
* nothing outlives the block, so there is always someone to report to.

The contrast is ``asyncio.create_task`` with nobody awaiting the task: the task fails,
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

    @property
    def claim(self) -> str:
        text = (
            "In a task group a failing child cancels its siblings and its error reaches the "
            "parent, as an exception group (catch it with except*)."
        )
        if self.backend == "asyncio":
            text += (
                " A detached asyncio.create_task fails silently: its starter never sees the "
                "error, which surfaces only as a log line when the task is garbage collected."
            )
        return text

    @property
    def held(self) -> bool:
        structured = self.error_reached_parent and self.siblings_cancelled == 2
        if self.backend != "asyncio":
            return structured
        return (
            structured
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
        if self.backend == "asyncio":
            lines += [
                f"create_task: the starter saw the error: {self.detached_error_seen_by_parent}",
                f"create_task: the error only appeared in the loop's log at garbage "
                f"collection: {self.detached_error_only_logged}",
            ]
        else:
            lines.append("create_task: skipped, trio has no way to start a task without a nursery")
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


# -- Part 2: a detached asyncio task (the anti-pattern) ----------------------------------


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
    if backend == "asyncio":
        seen, only_logged = await _detached_on_asyncio()
    return TaskGroupOutcome(
        backend=backend,
        error_reached_parent=caught,
        error_group_type=group_type,
        siblings_cancelled=cancelled,
        cancellation_type=cancel_name,
        detached_error_seen_by_parent=seen,
        detached_error_only_logged=only_logged,
    )


LESSON = Lesson(
    name="task-groups",
    title="Task groups own their tasks: errors reach the parent, siblings are cancelled",
    idea=(
        "A task group does not end until all its tasks have ended. When one child fails, "
        "the group cancels the others and re-raises the error to the code that opened it. "
        "A task started with asyncio.create_task and never awaited has no such owner: its "
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
