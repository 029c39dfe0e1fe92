"""The task tree: one top-level task group, what runs in it, and the shutdown sequence.

The group owns the handler tasks (the workers of ``_pipeline``), the drop reporter,
the services (the job scheduler task) and the lifecycle task, which waits for a stop
request and then performs the shutdown: tell the handlers, stop the services, close
intake, drain within the grace period, cancel what is left. Cancel scopes deliver it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from loguru import logger

from ._events import Event, EventType
from ._lifecycle import Lifecycle, Service, State
from ._pipeline import EventQueue, HandlerRegistry, report_drops, report_drops_now, work

__all__ = ["TaskTree", "single_error"]

log = logger.bind(component="scheduler")


class TaskTree:
    """The top-level task group of one scheduler, started once and stopped once."""

    def __init__(
        self,
        life: Lifecycle,
        queue: EventQueue,
        registry: HandlerRegistry,
        services: list[Service],
        *,
        workers: int,
        grace_period: float,
        drop_report_interval: float,
    ) -> None:
        self._life = life
        self._queue = queue
        self._registry = registry
        self._services = services
        self._workers = workers
        self._grace_period = grace_period
        self._drop_report_interval = drop_report_interval
        self._task_group: TaskGroup | None = None
        self._service_scopes: list[anyio.CancelScope] = []
        self._workers_scope: anyio.CancelScope | None = None
        self._workers_done: anyio.Event | None = None
        #: Set by a stop request; None until the tree starts.
        self.stop_requested: anyio.Event | None = None
        self.stop_reason = "stop() called"

    async def start(self) -> None:
        """Open the queue and start every task; on failure undo all and raise the error."""
        self.stop_requested = anyio.Event()
        self._workers_done = anyio.Event()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            self._queue.open()
            await task_group.start(self._run_workers)
            task_group.start_soon(report_drops, self._queue, self._drop_report_interval)
            for service in self._services:
                await task_group.start(self._run_service, service)
            task_group.start_soon(self._lifecycle)
        except BaseException as exc:
            self._queue.close_intake(force=True)
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(type(exc), exc, exc.__traceback__)
            except BaseExceptionGroup as group:
                raise single_error(group) from None
            finally:
                self._queue.close_receive()
            raise

    def abort(self, reason: str) -> None:
        """The ``async with`` body failed: no grace, cancel everything now (all counted)."""
        assert self._task_group is not None
        self.stop_reason = reason
        self._life.advance(State.STOPPING)
        self._queue.close_intake()
        self._task_group.cancel_scope.cancel()

    async def exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Wait for the group to end (after a stop request or an abort)."""
        assert self._task_group is not None
        try:
            return bool(await self._task_group.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            raise single_error(group) from None

    async def start_task(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start one more task in the group (``run()`` uses it for its signal watcher)."""
        assert self._task_group is not None
        await self._task_group.start(func, *args)

    # -- the tasks of the group --------------------------------------------------------

    async def _run_workers(self, *, task_status: TaskStatus[None]) -> None:
        assert self._workers_done is not None
        try:
            with anyio.CancelScope() as scope:
                self._workers_scope = scope
                async with anyio.create_task_group() as workers:
                    for _ in range(self._workers):
                        workers.start_soon(work, self._queue, self._registry)
                    task_status.started()
        finally:
            # The workers are gone: close both ends of the stream (else ResourceWarning).
            self._queue.close_intake(force=True)
            self._queue.close_receive()
            self._workers_done.set()

    async def _run_service(self, service: Service, *, task_status: TaskStatus[None]) -> None:
        with anyio.CancelScope() as scope:
            self._service_scopes.append(scope)
            await service.run(task_status=task_status)
        log.debug("Service {} stopped", service.name)

    async def _lifecycle(self) -> None:
        """Wait for a stop request, then drain, cancel what is left and end the group."""
        assert self.stop_requested is not None
        await self.stop_requested.wait()
        await self._shutdown()
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        queue = self._queue
        self._life.advance(State.STOPPING)
        deadline = anyio.current_time() + self._grace_period
        log.info(
            "Shutting down ({}): draining {} queued event(s) within {}s",
            self.stop_reason,
            queue.queued,
            self._grace_period,
        )
        # 1. No new job runs: the scheduler task (and any other service) stops first;
        # and no emitter waits for room any more (see EventQueue.begin_shutdown).
        for service in self._services:
            service.begin_shutdown()
        queue.begin_shutdown()
        # 2. Tell the handlers: the notice takes the queue's reserved slot, so it gets
        # in even when the queue is full (behind the events queued before it).
        queue.emit_shutdown_notice(
            Event.create(EventType.SHUTDOWN_REQUESTED, {"reason": self.stop_reason})
        )
        # Job runs in progress may finish within the grace period and report it.
        with anyio.move_on_at(deadline):
            for service in self._services:
                await service.wait_idle()
        # 3. Report drops so far while the report can still get in, then stop intake;
        # the workers drain the buffer and then see the end of the stream.
        with anyio.move_on_at(deadline):
            await report_drops_now(queue)
        queue.close_intake()
        assert self._workers_done is not None
        with anyio.move_on_at(deadline):
            await self._workers_done.wait()
        # 4. Past the grace period: cancel the handlers still running.
        if not self._workers_done.is_set():
            log.warning(
                "Grace period of {}s is over: cancelling {} handler(s) in flight, "
                "{} event(s) left in the queue",
                self._grace_period,
                queue.in_flight,
                queue.leftover(),
            )
            assert self._workers_scope is not None
            self._workers_scope.cancel()
        for scope in self._service_scopes:
            scope.cancel()
        await self._workers_done.wait()


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a task group wrapped, so users see it as raised; else the group.

    The task group wraps even a lone exception from the ``async with`` body; a user of
    ``async with EventScheduler()`` expects the body's own exception back.
    """
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    return leaves[0] if len(leaves) == 1 else group
