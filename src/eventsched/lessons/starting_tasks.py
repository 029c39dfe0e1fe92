"""Lesson: starting a task and waiting until it is ready.

``tg.start_soon(service)`` only *schedules* the task: when it returns, the service has
not run a single line. Code that goes on to use the service (connect to the port it
listens on, send to the stream it reads) races with its start-up. Sleeping "a little"
before using it is a guess that fails under load.

``value = await tg.start(service)`` waits instead: the service receives a
``task_status`` argument and calls ``task_status.started(value)`` once it is ready
(listening, connected, subscribed). ``start()`` returns that value, and the service runs
on in the group. Two more guarantees come with it:

* an exception raised *before* ``started()`` is raised by ``start()`` itself, as a plain
  exception the caller can catch: the service failed to start, and its caller is the one
  to decide what to do about it;
* after ``started()`` the task belongs to the group like any other.

eventsched uses the same call where a caller must know a background task is running
before it goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.abc
import sniffio

from ._base import Lesson

SETUP = 0.02
"""Seconds the service needs before it is ready (opening a socket, say)."""
PORT = 8421
"""The value the service hands back when ready (no socket is opened)."""


class SetupFailed(Exception):
    """The service could not start."""


@dataclass(frozen=True, slots=True)
class StartingTasksOutcome:
    """What the demonstration measured."""

    backend: str
    ready_after_start_soon: bool
    """Whether the service was ready when ``start_soon`` returned (expected: no)."""
    ready_after_start: bool
    """Whether it was ready when ``await start()`` returned."""
    value_from_start: int | None
    """What ``start()`` returned: the value passed to ``task_status.started()``."""
    service_ran_on: bool
    """The service kept running in the group after ``started()`` (it served a request)."""
    start_error: str
    """What ``start()`` raised for a service that failed before ``started()``."""
    group_survived: bool
    """The group went on after the caller caught that error."""

    @property
    def claim(self) -> str:
        return (
            "start_soon returns before the service has run at all; await tg.start() "
            "returns once the service called task_status.started(value), with that value, "
            "and the service runs on; a failure before started() is raised by start() "
            "itself, as a plain exception."
        )

    @property
    def headline(self) -> str:
        return (
            f"ready when start_soon returned: {self.ready_after_start_soon}; when "
            f"start() returned: {self.ready_after_start} (value {self.value_from_start}); "
            f"a failed start raised {self.start_error}"
        )

    @property
    def held(self) -> bool:
        return (
            not self.ready_after_start_soon
            and self.ready_after_start
            and self.value_from_start == PORT
            and self.service_ran_on
            and self.start_error == SetupFailed.__name__
            and self.group_survived
        )

    def figures(self) -> list[str]:
        return [
            f"tg.start_soon(service): ready when it returned: {self.ready_after_start_soon}",
            f"await tg.start(service): ready when it returned: {self.ready_after_start}, "
            f"and it returned {self.value_from_start}; the service then served a request: "
            f"{self.service_ran_on}",
            f"a service that fails before started(): start() raised {self.start_error} "
            f"(not an exception group); the group went on: {self.group_survived}",
        ]


class Service:
    """Stands for a server: not ready until its set-up is done."""

    def __init__(self) -> None:
        self.ready = False
        self.requests, self._inbox = anyio.create_memory_object_stream[int](1)
        self.served = 0
        self.served_one = anyio.Event()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with self._inbox:  # closed however the service ends, even before it is ready
            await anyio.sleep(SETUP)  # set-up: bind, connect, subscribe...
            self.ready = True
            task_status.started(PORT)  # start() returns here; we run on in the group
            async for _ in self._inbox:
                self.served += 1
                self.served_one.set()

    async def request(self) -> None:
        """Send one request and wait until it was served."""
        self.served_one = anyio.Event()
        await self.requests.send(1)
        with anyio.fail_after(10):
            await self.served_one.wait()


async def _broken(*, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    await anyio.lowlevel.checkpoint()
    raise SetupFailed("port already in use")


async def demonstrate() -> StartingTasksOutcome:
    """Start the service both ways, then a service that fails to start."""
    backend = sniffio.current_async_library()
    async with anyio.create_task_group() as tg:
        early = Service()
        tg.start_soon(early.run)
        ready_soon = early.ready  # checked at once: the service has not run yet

        service = Service()
        value = await tg.start(service.run)
        ready_start = service.ready
        await service.request()

        error = "nothing"
        try:
            await tg.start(_broken)
        except SetupFailed as exc:  # a plain except: start() raises it as it is
            error = type(exc).__name__
        await service.request()  # the group, and the service in it, are still running
        survived = service.served == 2
        tg.cancel_scope.cancel()  # done: stop both services
    early.requests.close()
    service.requests.close()
    return StartingTasksOutcome(
        backend=backend,
        ready_after_start_soon=ready_soon,
        ready_after_start=ready_start,
        value_from_start=value,
        service_ran_on=service.served >= 1,
        start_error=error,
        group_survived=survived,
    )


LESSON = Lesson(
    name="starting-tasks",
    title="Starting a task and waiting until it is ready: tg.start() and task_status",
    idea=(
        "start_soon only schedules a task; using what it sets up right away is a race. "
        "await tg.start(fn) waits until fn calls task_status.started(value), returns the "
        "value, and raises any error fn hit before that point to the caller."
    ),
    demonstrate=demonstrate,
    differences=(
        "The same through anyio; trio's nursery.start() is where the idea comes from. "
        "asyncio.TaskGroup has no start(): there one passes an asyncio.Event or a Future "
        "to the task by hand and awaits it."
    ),
)
