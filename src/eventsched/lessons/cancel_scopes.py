"""Lesson 2: cancel scopes and timeouts.

A cancel scope is a ``with`` block that can be cancelled, by a call or by a deadline.
Everything awaited inside it is cancelled together, and the cancellation ends at the
edge of the block. Timeouts are just scopes with a deadline:

* ``anyio.move_on_after(s)``: when time is up, leave the block and carry on
  (``scope.cancelled_caught`` tells you it happened);
* ``anyio.fail_after(s)``: when time is up, raise ``TimeoutError``;
* scopes nest, and the earliest deadline wins: an inner "10 s" inside an outer
  "50 ms" gets 50 ms (``anyio.current_effective_deadline()`` shows it);
* cleanup that must await (flush a file, send a goodbye) runs in a shielded scope,
  which cancellation from outside cannot reach; give it its own short deadline.

Cancellation in anyio and trio is *level-triggered*: inside a cancelled scope every
await raises again, so a task that swallows one cancellation by mistake is stopped at
its next await. Plain asyncio's ``task.cancel()`` is *edge-triggered*: it delivers one
``CancelledError``, and a task that swallows it carries on as if never cancelled.
"""

from __future__ import annotations

import math
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
    inner_sees_outer_deadline: bool
    """Inside "10 s" nested in "50 ms", the effective deadline was the outer one."""
    outer_caught_inner_not: bool
    """That outer scope, not the inner one, caught the cancellation."""
    shorter_inner_only: bool
    """With the short deadline inside, only the inner scope was cancelled."""
    cleanup_done_shielded: bool
    """Cleanup that awaits, inside a shielded scope, finished despite the cancellation."""
    cleanup_done_unshielded: bool
    """The same cleanup without a shield (expected: cut short)."""
    scope_recancels: bool
    """After swallowing one cancellation in a cancelled scope, the next await raised too."""
    raw_asyncio_swallowed: bool | None
    """asyncio only: after swallowing task.cancel()'s CancelledError, the task ran on."""

    @property
    def claim(self) -> str:
        text = (
            "move_on_after leaves the block and fail_after raises TimeoutError at the "
            "deadline; nested scopes obey the earliest deadline; only shielded cleanup "
            "survives cancellation; a cancelled scope cancels every await in it "
            "(level-triggered)."
        )
        if self.backend == "asyncio":
            text += " Plain asyncio task.cancel() is edge-triggered: swallowed once, gone."
        return text

    @property
    def held(self) -> bool:
        common = (
            self.move_on_caught
            and self.fail_after_raised
            and self.inner_sees_outer_deadline
            and self.outer_caught_inner_not
            and self.shorter_inner_only
            and self.cleanup_done_shielded
            and not self.cleanup_done_unshielded
            and self.scope_recancels
        )
        if self.backend == "asyncio":
            return common and self.raw_asyncio_swallowed is True
        return common

    def figures(self) -> list[str]:
        lines = [
            f"move_on_after({TIMEOUT}) around sleep(10): left the block: "
            f"{self.move_on_caught}, after {self.move_on_elapsed * 1000:.0f} ms",
            f"fail_after({TIMEOUT}) around sleep(10): raised TimeoutError: "
            f"{self.fail_after_raised}",
            f'"10 s" nested in "{TIMEOUT} s": effective deadline is the outer one: '
            f"{self.inner_sees_outer_deadline}; the outer scope caught it: "
            f"{self.outer_caught_inner_not}",
            f'"{TIMEOUT} s" nested in "10 s": only the inner scope cancelled: '
            f"{self.shorter_inner_only}",
            f"cleanup that awaits after cancellation: finished with a shield: "
            f"{self.cleanup_done_shielded}, without: {self.cleanup_done_unshielded}",
            f"swallowed one cancellation in a cancelled scope; the next await raised "
            f"again: {self.scope_recancels}",
        ]
        if self.raw_asyncio_swallowed is not None:
            lines.append(
                f"plain asyncio task.cancel(), swallowed once: the task ran on: "
                f"{self.raw_asyncio_swallowed}"
            )
        return lines


# -- 1. move_on_after and fail_after -----------------------------------------------------


async def _move_on() -> tuple[bool, float]:
    start = anyio.current_time()
    with anyio.move_on_after(TIMEOUT) as scope:
        await anyio.sleep(10)  # a slow call we are not willing to wait for
    # We get here at the deadline, without an exception.
    return scope.cancelled_caught, anyio.current_time() - start


async def _fail_after() -> bool:
    try:
        with anyio.fail_after(TIMEOUT):
            await anyio.sleep(10)
    except TimeoutError:
        return True
    return False


# -- 2. Nested deadlines: the earliest wins ----------------------------------------------


async def _nested() -> tuple[bool, bool, bool]:
    with anyio.move_on_after(TIMEOUT) as outer:
        with anyio.move_on_after(10) as inner:
            # The inner scope asks for 10 s, but it lives inside a 50 ms scope.
            effective = anyio.current_effective_deadline()
            sees_outer = math.isclose(effective, outer.deadline)
            await anyio.sleep(10)
    outer_caught_inner_not = outer.cancelled_caught and not inner.cancelled_caught

    # The other way round: the short deadline inside only ends the inner block.
    ran_on_after_inner = False
    with anyio.move_on_after(10) as outer2:
        with anyio.move_on_after(TIMEOUT) as inner2:
            await anyio.sleep(10)
        ran_on_after_inner = True  # the outer block continues
    shorter_inner_only = (
        inner2.cancelled_caught and not outer2.cancelled_caught and ran_on_after_inner
    )
    return sees_outer, outer_caught_inner_not, shorter_inner_only


# -- 3. Shielding cleanup ----------------------------------------------------------------


async def _flush() -> None:
    """Stands for cleanup that must await: flushing a buffer, saying goodbye."""
    await anyio.sleep(0.01)


async def _cleanup_after_cancel(*, shield: bool) -> bool:
    done = False
    with anyio.CancelScope() as scope:
        try:
            scope.cancel()  # e.g. shutdown: from now on every await here raises
            await anyio.sleep_forever()
        finally:
            if shield:
                # A shielded scope with its own short deadline: cancellation from the
                # outside cannot reach in, and the cleanup still cannot hang forever.
                with anyio.move_on_after(1, shield=True):
                    await _flush()
                    done = True
            else:
                await _flush()  # raises at once: the scope is cancelled
                done = True
    return done


# -- 4. Level-triggered (anyio, trio) versus edge-triggered (plain asyncio) -------------


async def _scope_recancels() -> bool:
    raised_again = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            pass  # WRONG on purpose: never swallow a cancellation in real code
        try:
            await anyio.sleep(10)  # the scope is still cancelled: this raises too
        except anyio.get_cancelled_exc_class():
            raised_again = True
            raise  # the right thing: let it propagate to the scope, which absorbs it
    return raised_again


async def _raw_asyncio_swallows() -> bool:
    import asyncio

    ran_on = False

    async def stubborn() -> None:
        nonlocal ran_on
        try:  # noqa: SIM105 (spelled out: swallowing the cancellation is the point here)
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # WRONG on purpose, as above
        await asyncio.sleep(0)  # plain asyncio: no second CancelledError comes
        ran_on = True

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start
    task.cancel()
    await task  # returns normally: the task has "survived" its cancellation
    return ran_on


async def demonstrate() -> CancelScopesOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    caught, elapsed = await _move_on()
    sees_outer, outer_caught, shorter_inner = await _nested()
    return CancelScopesOutcome(
        backend=backend,
        move_on_caught=caught,
        move_on_elapsed=elapsed,
        fail_after_raised=await _fail_after(),
        inner_sees_outer_deadline=sees_outer,
        outer_caught_inner_not=outer_caught,
        shorter_inner_only=shorter_inner,
        cleanup_done_shielded=await _cleanup_after_cancel(shield=True),
        cleanup_done_unshielded=await _cleanup_after_cancel(shield=False),
        scope_recancels=await _scope_recancels(),
        raw_asyncio_swallowed=await _raw_asyncio_swallows() if backend == "asyncio" else None,
    )


LESSON = Lesson(
    name="cancel-scopes",
    title="Cancel scopes and timeouts: move_on_after, fail_after, nesting, shielding",
    idea=(
        "A cancel scope is a block whose awaits can be cancelled together, by a call or a "
        "deadline. move_on_after leaves the block at the deadline, fail_after raises "
        "TimeoutError. Scopes nest and the earliest deadline wins. Cleanup that must await "
        "goes in a shielded scope with its own short deadline, so that cancellation cannot "
        "cut it short and it cannot hang."
    ),
    demonstrate=demonstrate,
    differences=(
        "Through anyio, scopes behave alike on both backends and cancellation is "
        "level-triggered: every await in a cancelled scope raises. trio works this way "
        "natively; anyio emulates it on asyncio. Plain asyncio (task.cancel(), and "
        "asyncio.timeout) delivers a single CancelledError: swallow it and the task runs on."
    ),
)
