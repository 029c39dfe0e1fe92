"""The one lifecycle: a state that only moves forward, and the services the scheduler runs.

The scheduler, its queue and its job scheduler each own a :class:`Lifecycle`. Every
change of state goes through :meth:`Lifecycle.advance`, which refuses to go backwards
or to skip to a state the owner did not allow, so that "where is it in its life" is one
field with one set of rules instead of flags spread over the code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Protocol

from anyio.abc import TaskStatus

from ._exceptions import SchedulerStateError

__all__ = ["Lifecycle", "Service", "State"]


class State(StrEnum):
    """Where a scheduler, its queue or its job scheduler is in its life.

    Each moves only forward, in this order; a step may be skipped (a scheduler stopped
    before it started goes from ``created`` to ``stopped``), never taken back.
    """

    CREATED = "created"
    """Built, not started: configuration may still change."""
    STARTING = "starting"
    """Its tasks are being started."""
    RUNNING = "running"
    """Accepting work."""
    STOPPING = "stopping"
    """Shutdown has begun: no new work starts, work in progress finishes or is cancelled."""
    STOPPED = "stopped"
    """Finished: it cannot run again."""


_ORDER: Final = {state: index for index, state in enumerate(State)}


class Lifecycle:
    """One owner's state, moving only forward.

    ``name`` is what error messages call the owner ("this EventScheduler").
    """

    __slots__ = ("_name", "_state")

    def __init__(self, name: str) -> None:
        self._name = name
        self._state = State.CREATED

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    def __repr__(self) -> str:
        return f"<Lifecycle of {self._name}: {self._state.value}>"

    def is_(self, state: State) -> bool:
        """Whether the owner is in ``state`` now."""
        return self._state is state

    def reached(self, state: State) -> bool:
        """Whether the owner is in ``state`` or past it."""
        return _ORDER[self._state] >= _ORDER[state]

    def advance(self, to: State) -> bool:
        """Move forward to ``to``; False (and no change) if already there or past it.

        Moving forward is never an error: two paths racing to stop (a signal and
        ``stop()``) both call ``advance(State.STOPPING)``, and the second learns it was
        not first from the False.
        """
        if _ORDER[to] <= _ORDER[self._state]:
            return False
        self._state = to
        return True

    def require(self, state: State, action: str) -> None:
        """Raise :class:`SchedulerStateError` unless the owner is in ``state``.

        ``action`` completes the message: "cannot {action}".
        """
        if self._state is not state:
            raise SchedulerStateError(
                f"cannot {action}: {self._name} is {self._state.value}, not {state.value}"
            )


class Service(Protocol):
    """Something the scheduler runs in its task group: the job scheduler task is one.

    Shutdown calls :meth:`begin_shutdown` first (start no new work), waits for
    :meth:`wait_idle` within the grace period (work in progress may still emit its
    events), then closes intake, and cancels :meth:`run` when the grace period ends.
    """

    name: str

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Run until cancelled; call ``task_status.started()`` once ready."""

    def begin_shutdown(self) -> None:
        """Start no new work from now on."""

    async def wait_idle(self) -> None:
        """Return once no work is in progress."""
