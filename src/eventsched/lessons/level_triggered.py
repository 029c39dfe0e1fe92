"""Lesson: level-triggered cancellation (anyio, trio) against edge-triggered (asyncio).

*Edge-triggered*: plain asyncio delivers a cancellation once, as one ``CancelledError``
at the next await. After that the task is free: a ``finally`` block that awaits runs to
the end, however long it takes, and a task that swallows the error carries on.
``asyncio.timeout`` and ``asyncio.wait_for`` are built on that, so a timeout of 50 ms
around work whose cleanup awaits 300 ms takes 350 ms; a cleanup that hangs, hangs
forever, timeout or not.

*Level-triggered*: in anyio and trio a cancelled scope stays cancelled until the code
leaves it. Every await inside raises again, including the ones in ``finally``, so the
same 50 ms ``move_on_after`` ends after 50 ms. Cleanup that must await goes in a
*shielded* scope, with a deadline of its own, so that it is both protected and bounded.

asyncio keeps a count to make its edge-triggered cancellation workable:
``task.cancelling()`` is how many cancellations are pending on the task, and
``task.uncancel()`` takes one back. ``asyncio.timeout`` reads the count to tell its own
cancellation from one that came from outside; a task that swallows a ``CancelledError``
without ``uncancel()`` leaves the count raised for everyone after it.

Shielding differs too: ``asyncio.shield(aw)`` protects the *inner* task, but the await
on it raises at once, and the inner task runs on with nobody waiting for it; anyio's
``CancelScope(shield=True)`` makes the cancellation wait until the block is done.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson

TIMEOUT = 0.05
"""Seconds of the timeout around the work."""
CLEANUP = 0.3
"""Seconds the work's ``finally`` block awaits (stands for a slow or hanging cleanup)."""


@dataclass(frozen=True, slots=True)
class LevelTriggeredOutcome:
    """What the demonstration measured (the asyncio-only parts are None on trio)."""

    backend: str
    anyio_elapsed: float
    """Seconds ``move_on_after(TIMEOUT)`` took around work whose cleanup awaits CLEANUP."""
    anyio_cleanup_finished: bool
    """Whether that cleanup ran to its end (expected: no, its await was cancelled too)."""
    scope_recancels: bool
    """After swallowing one cancellation in a cancelled scope, the next await raised too."""
    shielded_cleanup_finished: bool
    """Cleanup in ``CancelScope(shield=True)`` finished before the cancellation went on."""
    timeout_elapsed: float | None
    """Seconds ``asyncio.timeout(TIMEOUT)`` took around the same work."""
    wait_for_elapsed: float | None
    """Seconds ``asyncio.wait_for(work, TIMEOUT)`` took."""
    swallowed_ran_on: bool | None
    """A task that swallowed ``task.cancel()``'s CancelledError ran on to its end."""
    cancelling_after_swallow: int | None
    """``task.cancelling()`` after that swallow (the count stays up)."""
    cancelling_after_uncancel: int | None
    """... and after ``task.uncancel()``."""
    outside_cancel_in_timeout: str | None
    """What a cancel() from outside raised through ``asyncio.timeout(10)``."""
    asyncio_shield_raised_first: bool | None
    """``await asyncio.shield(cleanup)`` raised before the cleanup had finished."""
    asyncio_shield_finished_later: bool | None
    """... and the cleanup finished afterwards, with nobody awaiting it."""

    @property
    def claim(self) -> str:
        text = (
            f"Under anyio's move_on_after({TIMEOUT}) the awaits in a finally block are "
            f"cancelled too, so work whose cleanup awaits {CLEANUP} s ends after about "
            f"{TIMEOUT} s; a swallowed cancellation comes back at the next await; only "
            "a shielded scope lets cleanup finish."
        )
        if self.backend == "asyncio":
            text += (
                f" asyncio.timeout and wait_for deliver one CancelledError and then wait "
                f"for the whole cleanup (over {CLEANUP} s); a swallowed task.cancel() lets "
                "the task run on with cancelling() still 1 until uncancel(); "
                "asyncio.shield raises before its cleanup is done."
            )
        return text

    @property
    def headline(self) -> str:
        text = (
            f"{TIMEOUT * 1000:.0f} ms timeout, cleanup awaiting {CLEANUP * 1000:.0f} ms: "
            f"anyio move_on_after took {self.anyio_elapsed * 1000:.0f} ms"
        )
        if self.timeout_elapsed is not None:
            text += f", asyncio.timeout {self.timeout_elapsed * 1000:.0f} ms"
        return text

    @property
    def held(self) -> bool:
        level = (
            self.anyio_elapsed < CLEANUP / 2
            and not self.anyio_cleanup_finished
            and self.scope_recancels
            and self.shielded_cleanup_finished
        )
        if self.backend != "asyncio":
            return level
        return (
            level
            and self.timeout_elapsed is not None
            and self.timeout_elapsed >= CLEANUP
            and self.wait_for_elapsed is not None
            and self.wait_for_elapsed >= CLEANUP
            and self.swallowed_ran_on is True
            and (self.cancelling_after_swallow, self.cancelling_after_uncancel) == (1, 0)
            and self.outside_cancel_in_timeout == "CancelledError"
            and self.asyncio_shield_raised_first is True
            and self.asyncio_shield_finished_later is True
        )

    def figures(self) -> list[str]:
        lines = [
            f"anyio move_on_after({TIMEOUT}) around work whose finally awaits {CLEANUP} s: "
            f"left after {self.anyio_elapsed * 1000:.0f} ms; the cleanup finished: "
            f"{self.anyio_cleanup_finished}",
            f"swallowed one cancellation in a cancelled scope; the next await raised "
            f"again: {self.scope_recancels}",
            f"cleanup in CancelScope(shield=True) finished before the cancellation went "
            f"on: {self.shielded_cleanup_finished}",
        ]
        if self.timeout_elapsed is None or self.wait_for_elapsed is None:
            lines.append("asyncio.timeout, wait_for, cancelling(), shield: skipped on trio")
            return lines
        lines += [
            f"asyncio.timeout({TIMEOUT}) around the same work: left after "
            f"{self.timeout_elapsed * 1000:.0f} ms; asyncio.wait_for: "
            f"{self.wait_for_elapsed * 1000:.0f} ms (the cleanup ran whole)",
            f"task.cancel(), swallowed: the task ran on to its end: {self.swallowed_ran_on}; "
            f"cancelling() then {self.cancelling_after_swallow}, after uncancel() "
            f"{self.cancelling_after_uncancel}",
            f"task.cancel() from outside, inside asyncio.timeout(10): raised "
            f"{self.outside_cancel_in_timeout} (the timeout told it from its own by the count)",
            f"await asyncio.shield(cleanup) raised before the cleanup finished: "
            f"{self.asyncio_shield_raised_first}; the cleanup finished later, unawaited: "
            f"{self.asyncio_shield_finished_later}",
        ]
        return lines


# -- 1. A timeout around work with a slow cleanup ----------------------------------------


async def _anyio_timeout() -> tuple[float, bool]:
    finished = False

    async def work() -> None:
        nonlocal finished
        try:
            await anyio.sleep(10)
        finally:
            await anyio.sleep(CLEANUP)  # raises at once: the scope is still cancelled
            finished = True

    start = anyio.current_time()
    with anyio.move_on_after(TIMEOUT):
        await work()
    return anyio.current_time() - start, finished


async def _asyncio_timeouts() -> tuple[float, float]:
    import asyncio

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(CLEANUP)  # edge-triggered: nothing stops this await

    start = asyncio.get_running_loop().time()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TIMEOUT):
            await work()
    timeout_took = asyncio.get_running_loop().time() - start
    start = asyncio.get_running_loop().time()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(work(), TIMEOUT)
    return timeout_took, asyncio.get_running_loop().time() - start


# -- 2. Swallowing a cancellation --------------------------------------------------------


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
            raise  # the right thing: let it reach the scope, which absorbs it
    return raised_again


async def _asyncio_swallow() -> tuple[bool, int, int]:
    import asyncio

    ran_on = False
    counts: list[int] = []

    async def stubborn() -> None:
        nonlocal ran_on
        try:  # noqa: SIM105 (spelled out: swallowing the cancellation is the point here)
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # WRONG on purpose, as above
        await asyncio.sleep(0)  # no second CancelledError comes
        task = asyncio.current_task()
        assert task is not None
        counts.append(task.cancelling())  # but the task still counts as cancelled
        task.uncancel()  # what code that means to swallow must do
        counts.append(task.cancelling())
        ran_on = True

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start
    task.cancel()
    await task  # returns normally: the task "survived" its cancellation
    return ran_on, counts[0], counts[1]


async def _asyncio_outside_cancel() -> str:
    import asyncio

    entered = asyncio.Event()

    async def inside_a_timeout() -> None:
        async with asyncio.timeout(10):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(inside_a_timeout())
    await entered.wait()
    task.cancel()
    try:
        await task
    except BaseException as error:  # we report whichever it is
        return type(error).__name__
    return "nothing"


# -- 3. Shielding ------------------------------------------------------------------------


async def _anyio_shield() -> bool:
    done = False
    with anyio.CancelScope() as scope:
        try:
            scope.cancel()  # e.g. shutdown: from now on every await here raises
            await anyio.sleep_forever()
        finally:
            # Shielded, and bounded: outside cancellation cannot reach in, and the
            # cleanup still cannot hang forever.
            with anyio.move_on_after(5, shield=True):
                await anyio.sleep(TIMEOUT)
                done = True
    return done


async def _asyncio_shield() -> tuple[bool, bool]:
    import asyncio

    cleanup_done = asyncio.Event()
    entered = asyncio.Event()

    async def cleanup() -> None:
        await asyncio.sleep(TIMEOUT)
        cleanup_done.set()

    async def closer() -> None:
        entered.set()
        await asyncio.shield(cleanup())

    task = asyncio.create_task(closer())
    await entered.wait()
    task.cancel()
    raised_first = False
    try:
        await task
    except asyncio.CancelledError:
        raised_first = not cleanup_done.is_set()
    async with asyncio.timeout(5):
        await cleanup_done.wait()  # the orphaned cleanup: nobody else waits for it
    return raised_first, cleanup_done.is_set()


async def demonstrate() -> LevelTriggeredOutcome:
    """Run every part on the current backend (the asyncio parts only on asyncio)."""
    backend = sniffio.current_async_library()
    elapsed, finished = await _anyio_timeout()
    timeout_took = wait_for_took = None
    ran_on = after_swallow = after_uncancel = outside = None
    shield_first = shield_later = None
    if backend == "asyncio":
        timeout_took, wait_for_took = await _asyncio_timeouts()
        ran_on, after_swallow, after_uncancel = await _asyncio_swallow()
        outside = await _asyncio_outside_cancel()
        shield_first, shield_later = await _asyncio_shield()
    return LevelTriggeredOutcome(
        backend=backend,
        anyio_elapsed=elapsed,
        anyio_cleanup_finished=finished,
        scope_recancels=await _scope_recancels(),
        shielded_cleanup_finished=await _anyio_shield(),
        timeout_elapsed=timeout_took,
        wait_for_elapsed=wait_for_took,
        swallowed_ran_on=ran_on,
        cancelling_after_swallow=after_swallow,
        cancelling_after_uncancel=after_uncancel,
        outside_cancel_in_timeout=outside,
        asyncio_shield_raised_first=shield_first,
        asyncio_shield_finished_later=shield_later,
    )


LESSON = Lesson(
    name="level-triggered",
    title="Level- vs edge-triggered cancellation: why a cleanup can outlive asyncio.timeout",
    idea=(
        "asyncio cancels once (edge-triggered): the cleanup in a finally block runs whole, "
        "so a timeout around a slow cleanup waits for it. anyio and trio keep a cancelled "
        "scope cancelled (level-triggered): every await in it raises, finally blocks "
        "included, so the timeout is kept; cleanup that must await goes in a shielded "
        "scope with its own deadline."
    ),
    demonstrate=demonstrate,
    differences=(
        "anyio gives level-triggered cancel scopes on both backends (trio natively, anyio "
        "emulates them on asyncio). Plain asyncio code (task.cancel, asyncio.timeout, "
        "wait_for, asyncio.shield) keeps asyncio's edge-triggered rules even under anyio: "
        "mixing the two means knowing which rules each await follows."
    ),
)
