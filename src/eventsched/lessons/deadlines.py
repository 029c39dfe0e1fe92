"""Lesson: deadlines against timeouts, and passing a time budget down.

A *timeout* is relative: "at most 100 ms from now". A *deadline* is absolute: "done by
12:00:00.100". The difference shows when a piece of work has several steps. A request
that may take 100 ms in all, made of three calls, each with ``fail_after(0.1)``, can take
almost 300 ms: every step starts a new 100 ms. With one deadline for the request,
``deadline = anyio.current_time() + 0.1`` and ``fail_at(deadline)`` (or
``move_on_at``) around each step, the whole request ends by the deadline.

Better still, the steps need not be told: scopes nest, and the earliest deadline
wins. A function called inside ``move_on_after(0.05)`` that opens its own
``fail_after(10)`` still gets 50 ms, and it can ask how much it has left with
``anyio.current_effective_deadline()`` (``inf`` when nobody set one). A step that needs
more than what is left can decline to start instead of starting and being cut short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson

BUDGET = 0.1
"""Seconds the whole three-step request may take."""
STEPS = (0.03, 0.03, 0.2)
"""How long each step takes: the last one is too slow for the budget."""
NEEDS = 0.05
"""Seconds the step that checks its budget needs to be worth starting."""


@dataclass(frozen=True, slots=True)
class DeadlinesOutcome:
    """What the demonstration measured."""

    backend: str
    per_step_elapsed: float
    """Seconds the request took with ``fail_after(BUDGET)`` around each step."""
    deadline_elapsed: float
    """Seconds it took with one ``fail_at(deadline)`` shared by the steps."""
    no_deadline: float
    """``current_effective_deadline()`` where no deadline applies (in a shielded scope,
    so that a caller's deadline, such as a test's, does not reach in)."""
    inner_sees_outer: bool
    """Inside ``fail_after(10)`` nested in ``move_on_after(BUDGET)``, the effective
    deadline was the outer one."""
    outer_caught: bool
    """... and the outer scope, not the inner one, caught the cancellation."""
    budget_left: float
    """Seconds the careful step saw left when it was called late."""
    careful_step_started: bool
    """Whether it started anyway (expected: no, it needs NEEDS)."""

    @property
    def claim(self) -> str:
        return (
            f"With one deadline shared by its steps a request ends by its {BUDGET} s "
            f"budget; with a {BUDGET} s timeout per step it runs over. A nested longer "
            "timeout cannot extend an outer deadline, and current_effective_deadline() "
            "lets a step see its budget and decline work it cannot finish."
        )

    @property
    def headline(self) -> str:
        return (
            f"a {BUDGET * 1000:.0f} ms budget over 3 steps: one deadline ended it at "
            f"{self.deadline_elapsed * 1000:.0f} ms, a timeout per step at "
            f"{self.per_step_elapsed * 1000:.0f} ms"
        )

    @property
    def held(self) -> bool:
        return (
            BUDGET <= self.deadline_elapsed < self.per_step_elapsed
            and self.per_step_elapsed >= sum(STEPS[:2]) + BUDGET
            and math.isinf(self.no_deadline)
            and self.inner_sees_outer
            and self.outer_caught
            and self.budget_left < NEEDS
            and not self.careful_step_started
        )

    def figures(self) -> list[str]:
        steps = " + ".join(f"{s * 1000:.0f}" for s in STEPS)
        return [
            f"steps of {steps} ms, fail_after({BUDGET}) around each: failed after "
            f"{self.per_step_elapsed * 1000:.0f} ms",
            f"the same steps under one fail_at(now + {BUDGET}): failed after "
            f"{self.deadline_elapsed * 1000:.0f} ms",
            f"current_effective_deadline() where no deadline applies: {self.no_deadline}",
            f"fail_after(10) inside move_on_after({BUDGET}): the effective deadline is the "
            f"outer one: {self.inner_sees_outer}; the outer scope caught it: "
            f"{self.outer_caught}",
            f"a step needing {NEEDS * 1000:.0f} ms saw {self.budget_left * 1000:.0f} ms "
            f"left; it started anyway: {self.careful_step_started}",
        ]


async def _per_step_timeouts() -> float:
    start = anyio.current_time()
    try:
        for step in STEPS:
            with anyio.fail_after(BUDGET):  # WRONG for a budget: each step gets it anew
                await anyio.sleep(step)
    except TimeoutError:
        pass
    return anyio.current_time() - start


async def _one_deadline() -> float:
    start = anyio.current_time()
    deadline = start + BUDGET  # fixed once, for the whole request
    try:
        for step in STEPS:
            with anyio.fail_at(deadline):
                await anyio.sleep(step)
    except TimeoutError:
        pass
    return anyio.current_time() - start


async def _nested() -> tuple[bool, bool]:
    with anyio.move_on_after(BUDGET) as outer:
        with anyio.move_on_after(10) as inner:
            # The inner scope asks for 10 s, but it lives inside a shorter one.
            sees_outer = math.isclose(anyio.current_effective_deadline(), outer.deadline)
            await anyio.sleep(10)
    return sees_outer, outer.cancelled_caught and not inner.cancelled_caught


async def _careful_step() -> tuple[float, bool]:
    """A step that starts only if its caller's budget leaves it enough time."""
    left = anyio.current_effective_deadline() - anyio.current_time()
    if left < NEEDS:
        return left, False  # better to say so now than to be cut short halfway
    await anyio.sleep(NEEDS)
    return left, True


async def _late_call() -> tuple[float, bool]:
    with anyio.move_on_after(BUDGET):
        await anyio.sleep(BUDGET - NEEDS / 2)  # earlier steps used most of the budget
        return await _careful_step()
    return 0.0, False  # not reached: the scope has time left when the step is called


def _no_deadline() -> float:
    # Shielded, so that whoever runs the lesson (a test with its own timeout) cannot
    # lend us a deadline: what a function sees when nobody set one.
    with anyio.CancelScope(shield=True):  # noqa: ASYNC100 (the shield is the point)
        deadline = anyio.current_effective_deadline()
    return deadline  # noqa: RET504 (after the block: mypy counts on the scope swallowing)


async def demonstrate() -> DeadlinesOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    sees_outer, outer_caught = await _nested()
    left, started = await _late_call()
    return DeadlinesOutcome(
        backend=backend,
        per_step_elapsed=await _per_step_timeouts(),
        deadline_elapsed=await _one_deadline(),
        no_deadline=_no_deadline(),
        inner_sees_outer=sees_outer,
        outer_caught=outer_caught,
        budget_left=left,
        careful_step_started=started,
    )


LESSON = Lesson(
    name="deadlines",
    title="Deadlines vs timeouts: move_on_at/fail_at, nesting, current_effective_deadline",
    idea=(
        "A timeout restarts at every step; a deadline does not. Give a request one "
        "deadline and let its steps inherit it: nested scopes obey the earliest deadline, "
        "and current_effective_deadline() tells a step how much time it has left."
    ),
    demonstrate=demonstrate,
    differences=(
        "Identical through anyio. trio has the same calls natively (trio.fail_at, "
        "trio.current_effective_deadline). asyncio has asyncio.timeout_at, but it offers "
        "no call like current_effective_deadline: a function cannot ask for the deadline "
        "it runs under, so the budget is passed as an argument."
    ),
)
