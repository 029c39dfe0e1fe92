"""Lesson: cancel scopes and timeouts.

A cancel scope is a ``with`` block that can be cancelled, by a call or by a deadline.
Everything awaited inside it is cancelled together, and the cancellation ends at the
edge of the block: the code after the block runs as usual. Timeouts are just scopes
with a deadline:

* ``anyio.move_on_after(s)``: when time is up, leave the block and carry on
  (``scope.cancelled_caught`` tells you it happened);
* ``anyio.fail_after(s)``: when time is up, raise ``TimeoutError``;
* ``scope.cancel()``, called from anywhere (another task, a handler), cancels the
  block without a deadline: the way to stop a piece of work on request.

Three lessons build on this one: ``level-triggered`` (what happens to an await in a
``finally`` block, and shielding), ``deadlines`` (absolute deadlines, nesting, passing a
budget down) and ``task-groups`` (every task group has a cancel scope).
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson

TIMEOUT = 0.05  # seconds: short, so that the lesson is quick


@dataclass(frozen=True, slots=True)
class CancelScopesOutcome:
    """What the demonstration measured."""

    backend: str
    move_on_caught: bool
    """move_on_after: the block was left when the deadline passed."""
    move_on_elapsed: float
    """Seconds the 10 s sleep actually lasted under a 50 ms move_on_after."""
    fail_after_raised: bool
    """fail_after: TimeoutError was raised."""
    fail_after_elapsed: float
    """Seconds until it was raised."""
    cancelled_by_call: int
    """Tasks inside a scope that another task cancelled with ``scope.cancel()`` (of 3)."""
    ran_after_block: bool
    """The code after that block ran: the cancellation ended at its edge."""

    @property
    def claim(self) -> str:
        return (
            f"move_on_after({TIMEOUT}) leaves a 10 s sleep after about {TIMEOUT} s and "
            "carries on; fail_after raises TimeoutError at the deadline; scope.cancel() "
            "from another task cancels every await in the block, and only the block."
        )

    @property
    def headline(self) -> str:
        return (
            f"move_on_after({TIMEOUT}) left a 10 s sleep after "
            f"{self.move_on_elapsed * 1000:.0f} ms; scope.cancel() stopped "
            f"{self.cancelled_by_call} of 3 tasks and the code after the block ran"
        )

    @property
    def held(self) -> bool:
        return (
            self.move_on_caught
            and TIMEOUT <= self.move_on_elapsed < 5
            and self.fail_after_raised
            and TIMEOUT <= self.fail_after_elapsed < 5
            and self.cancelled_by_call == 3
            and self.ran_after_block
        )

    def figures(self) -> list[str]:
        return [
            f"move_on_after({TIMEOUT}) around sleep(10): left the block: "
            f"{self.move_on_caught}, after {self.move_on_elapsed * 1000:.0f} ms",
            f"fail_after({TIMEOUT}) around sleep(10): raised TimeoutError: "
            f"{self.fail_after_raised}, after {self.fail_after_elapsed * 1000:.0f} ms",
            f"another task called scope.cancel(): tasks in the block cancelled: "
            f"{self.cancelled_by_call} of 3; the code after the block ran: "
            f"{self.ran_after_block}",
        ]


# -- 1. move_on_after and fail_after -----------------------------------------------------


async def _move_on() -> tuple[bool, float]:
    start = anyio.current_time()
    with anyio.move_on_after(TIMEOUT) as scope:
        await anyio.sleep(10)  # a slow call we are not willing to wait for
    # We get here at the deadline, without an exception.
    return scope.cancelled_caught, anyio.current_time() - start


async def _fail_after() -> tuple[bool, float]:
    start = anyio.current_time()
    try:
        with anyio.fail_after(TIMEOUT):
            await anyio.sleep(10)
    except TimeoutError:
        return True, anyio.current_time() - start
    return False, anyio.current_time() - start


# -- 2. Cancelling by a call -------------------------------------------------------------


async def _cancel_by_call() -> tuple[int, bool]:
    cancelled = 0
    ran_after = False
    all_waiting = anyio.Event()
    waiting = 0

    async def worker() -> None:
        nonlocal cancelled, waiting
        try:
            waiting += 1
            if waiting == 3:
                all_waiting.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise  # always re-raise a cancellation

    async with anyio.create_task_group() as outer:
        with anyio.CancelScope() as scope:

            async def stop_on_request() -> None:
                await all_waiting.wait()
                scope.cancel()  # e.g. the user pressed "stop"

            outer.start_soon(stop_on_request)
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(worker)
        ran_after = True  # the cancellation ended at the edge of the scope
    return cancelled, ran_after


async def demonstrate() -> CancelScopesOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    caught, elapsed = await _move_on()
    raised, fail_elapsed = await _fail_after()
    cancelled, ran_after = await _cancel_by_call()
    return CancelScopesOutcome(
        backend=backend,
        move_on_caught=caught,
        move_on_elapsed=elapsed,
        fail_after_raised=raised,
        fail_after_elapsed=fail_elapsed,
        cancelled_by_call=cancelled,
        ran_after_block=ran_after,
    )


LESSON = Lesson(
    name="cancel-scopes",
    title="Cancel scopes and timeouts: move_on_after, fail_after, cancelling by a call",
    idea=(
        "A cancel scope is a block whose awaits can be cancelled together, by a call or a "
        "deadline, and the cancellation stops at the block's edge. move_on_after leaves "
        "the block at the deadline, fail_after raises TimeoutError, scope.cancel() cancels "
        "it on request."
    ),
    demonstrate=demonstrate,
    differences=(
        "Through anyio, scopes behave alike on both backends: trio has them natively "
        "(trio.CancelScope, trio.move_on_after), anyio builds them on asyncio. Plain "
        "asyncio has asyncio.timeout, which cancels differently: see the level-triggered "
        "lesson."
    ),
)
