"""Lesson: several errors at once, as one exception group.

When children of a task group fail, more than one can fail before the group has
cancelled the rest: they were already running, or already on their way. Keeping only
the first error would hide the others, so the group raises them *all*, in one
``ExceptionGroup`` (``BaseExceptionGroup`` if one of them is, say, a
``KeyboardInterrupt``). The siblings that were merely cancelled are not in it.

Handling a group:

* ``except ValueError`` does not match a group holding a ``ValueError``: the group is
  an exception of its own type;
* ``except* ValueError`` runs once with the sub-group of the ``ValueError``\\ s; several
  ``except*`` clauses can each run for the same group, and what none of them matched is
  re-raised, as a group, to the code further out;
* at the edge of a component, turn the group into the one error its callers expect
  (``raise OrderFailed(...) from group``): the group stays reachable as ``__cause__``,
  and callers are not made to know how the component was split into tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson


class OrderFailed(Exception):
    """The one error our component promises its callers."""


@dataclass(frozen=True, slots=True)
class ExceptionGroupsOutcome:
    """What the demonstration measured."""

    backend: str
    members: tuple[str, ...]
    """Types in the group raised by three children failing at once (one more cancelled)."""
    plain_except_caught: bool
    """Whether ``except ValueError`` caught the group (expected: no)."""
    handlers_run: tuple[str, ...]
    """The ``except*`` clauses that ran, in order."""
    passed_on: tuple[str, ...]
    """Types in the group that reached the outer handler (what no clause matched)."""
    wrapped: str
    """What the caller of the component caught."""
    cause_members: int
    """Members of the group kept as that error's ``__cause__``."""

    @property
    def claim(self) -> str:
        return (
            "Three children failing at once give one exception group with all three "
            "errors and no cancellations in it; except ValueError does not catch it, "
            "each except* clause runs once for its type and the rest goes on outwards; "
            "raise ... from group turns it into one error and keeps the group."
        )

    @property
    def headline(self) -> str:
        return (
            f"3 failing children and a cancelled one: a group of {len(self.members)} "
            f"({', '.join(self.members)}); except* ran {len(self.handlers_run)} clauses "
            f"and passed on {', '.join(self.passed_on) or 'nothing'}"
        )

    @property
    def held(self) -> bool:
        return (
            sorted(self.members) == ["ConnectionError", "KeyError", "ValueError"]
            and not self.plain_except_caught
            and self.handlers_run == ("ValueError", "ConnectionError")
            and self.passed_on == ("KeyError",)
            and self.wrapped == OrderFailed.__name__
            and self.cause_members == 3
        )

    def figures(self) -> list[str]:
        return [
            f"three children raise at once, a fourth only waits: the group holds "
            f"{len(self.members)}: {', '.join(self.members)} (the cancelled one is not in it)",
            f"`except ValueError` caught the group: {self.plain_except_caught}",
            f"`except* ValueError` and `except* ConnectionError` ran: "
            f"{', '.join(self.handlers_run)}; passed on to the outer handler: "
            f"{', '.join(self.passed_on)}",
            f"the component's caller caught {self.wrapped}, its __cause__ a group of "
            f"{self.cause_members}",
        ]


async def _fail(error: Exception) -> None:
    raise error  # before any await: each child fails as soon as it runs


async def _three_failures() -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep_forever)  # a sibling that is only cancelled
        tg.start_soon(_fail, ValueError("bad quantity"))
        tg.start_soon(_fail, KeyError("sku-17"))
        tg.start_soon(_fail, ConnectionError("payment service down"))


async def _members() -> tuple[str, ...]:
    try:
        await _three_failures()
    except BaseExceptionGroup as group:
        return tuple(type(e).__name__ for e in group.exceptions)
    return ()


async def _plain_except() -> bool:
    try:
        try:
            await _three_failures()
        except ValueError:  # never matches: what arrives is a group
            return True
    except BaseExceptionGroup:
        pass
    return False


async def _except_star() -> tuple[tuple[str, ...], tuple[str, ...]]:
    ran: list[str] = []
    passed_on: tuple[str, ...] = ()
    try:
        try:
            await _three_failures()
        except* ValueError:
            ran.append("ValueError")
        except* ConnectionError:
            ran.append("ConnectionError")
    except* KeyError as rest:  # what no inner clause matched
        passed_on = tuple(type(e).__name__ for e in rest.exceptions)
    return tuple(ran), passed_on


async def place_order() -> None:
    """A component: callers expect OrderFailed, not the shape of its task group."""
    try:
        await _three_failures()
    except ExceptionGroup as group:
        raise OrderFailed(f"{len(group.exceptions)} steps failed") from group


async def _wrapped() -> tuple[str, int]:
    try:
        await place_order()
    except OrderFailed as error:  # a plain except is enough now
        cause = error.__cause__
        count = len(cause.exceptions) if isinstance(cause, BaseExceptionGroup) else 0
        return type(error).__name__, count
    return "nothing", 0


async def demonstrate() -> ExceptionGroupsOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    ran, passed_on = await _except_star()
    wrapped, cause_members = await _wrapped()
    return ExceptionGroupsOutcome(
        backend=backend,
        members=await _members(),
        plain_except_caught=await _plain_except(),
        handlers_run=ran,
        passed_on=passed_on,
        wrapped=wrapped,
        cause_members=cause_members,
    )


LESSON = Lesson(
    name="exception-groups",
    title="Several errors at once: exception groups, except*, and one error at the edge",
    idea=(
        "A task group raises every error its children hit, in one exception group. "
        "except* handles each type once and passes the rest on; plain except does not "
        "match a group. At a component's edge, raise one error from the group."
    ),
    demonstrate=demonstrate,
    differences=(
        "anyio task groups raise groups on both backends, as trio's nurseries do "
        "(strict_exception_groups, the default since trio 0.25) and asyncio.TaskGroup "
        "does. asyncio.gather does not group errors: see the task-groups lesson."
    ),
)
