"""EventScheduler: the facade over the pipeline, the services and the one lifecycle.

Everything the scheduler runs lives in one top-level task group: the handler tasks
(``_pipeline``), the drop reporter, the services (the job scheduler task) and the
lifecycle task that performs the shutdown. This module wires them together; the
queue, the workers and the accounting are in ``_pipeline``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskStatus
from loguru import logger

from ._events import (
    DEFAULT_MAX_EVENT_BYTES,
    _invalid_hook,
)
from ._exceptions import SchedulerStateError
from ._invoke import describe_error, exit_hook
from ._jobs import JobMethods, JobScheduler
from ._lifecycle import Lifecycle, Service, State
from ._pipeline import (
    EventQueue,
    HandlerRegistry,
    OverflowPolicy,
    Statistics,
    log_summary,
)
from ._pipeline._facade import PipelineMethods
from ._runtime import TaskTree
from ._signals import Watchdog
from ._signalwatch import SignalWatcher
from ._validate import check_int as _check_int
from ._validate import check_seconds as _check_seconds

__all__ = [
    "MAX_GRACE_PERIOD",
    "MAX_QUEUE_SIZE",
    "MAX_WORKERS",
    "EventScheduler",
    "SchedulerState",
    "Service",
]

log = logger.bind(component="scheduler")

#: Where an :class:`EventScheduler` is in its life: the one :class:`State` of
#: ``_lifecycle`` (kept under this name for compatibility).
SchedulerState = State

#: The limits of the constructor, defined once: the command line uses the same.
MAX_WORKERS: Final = 1000
MAX_QUEUE_SIZE: Final = 10_000_000
MAX_GRACE_PERIOD: Final = 3600.0

#: Extra time the watchdog allows beyond the grace period: cancelling what is left,
#: writing the summary and flushing the logs take well under this.
DEFAULT_WATCHDOG_MARGIN: Final = 2.0


class EventScheduler(PipelineMethods, JobMethods):
    """Owns the event queue, the handler tasks, the scheduler task and signal handling.

    Use it as an async context manager (leaving the block shuts down gracefully) or
    call :meth:`run` for a whole program (it returns when a signal or :meth:`stop`
    has shut it down)::

        scheduler = EventScheduler()

        @scheduler.on(EventType.JOB_FAILED)
        async def alert(event: Event) -> None: ...

        async with scheduler:
            await scheduler.emit(EventType.JOB_FAILED, {"job_id": "demo_job"})

    Shutdown, whatever starts it: ``SHUTDOWN_REQUESTED`` is emitted (into a slot of
    the queue reserved for it, so it always gets in), services (the job scheduler
    task) stop, intake closes, the workers drain the queue for up to ``grace_period``
    seconds, then whatever is still running is cancelled and counted.
    """

    def __init__(
        self,
        *,
        queue_size: int = 1000,
        overflow: OverflowPolicy | str = OverflowPolicy.DROP_NEWEST,
        workers: int = 1,
        grace_period: float = 5.0,
        block_timeout: float | None = None,
        handler_timeout: float | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        drop_report_interval: float = 1.0,
        watchdog_margin: float = DEFAULT_WATCHDOG_MARGIN,
    ) -> None:
        """
        :param queue_size: capacity of the bounded event queue (1 to :data:`MAX_QUEUE_SIZE`)
        :param overflow: what an emit does when the queue is full (:class:`OverflowPolicy`)
        :param workers: number of handler tasks consuming the queue (1 to :data:`MAX_WORKERS`)
        :param grace_period: seconds the queue may drain at shutdown before cancellation
            (0 to :data:`MAX_GRACE_PERIOD`)
        :param block_timeout: under ``block``, seconds an emitter waits before the event
            counts as dropped (None: wait as long as it takes)
        :param handler_timeout: default per-handler timeout in seconds (None: none)
        :param max_event_bytes: largest accepted event data, in bytes of compact JSON
        :param drop_report_interval: at most one ``EVENTS_DROPPED`` report per this many s
        :param watchdog_margin: under :meth:`run`, seconds allowed past the grace period
            before the watchdog ends the process with exit code 124
        """
        try:
            policy = OverflowPolicy(overflow)
        except ValueError:
            allowed = ", ".join(p.value for p in OverflowPolicy)
            raise ValueError(f"overflow={overflow!r} is not one of: {allowed}") from None
        _check_int("queue_size", queue_size, minimum=1, maximum=MAX_QUEUE_SIZE)
        _check_int("workers", workers, minimum=1, maximum=MAX_WORKERS)
        _check_int("max_event_bytes", max_event_bytes, minimum=2)
        _check_seconds("grace_period", grace_period, allow_zero=True, maximum=MAX_GRACE_PERIOD)
        _check_seconds("drop_report_interval", drop_report_interval, allow_zero=False)
        _check_seconds("watchdog_margin", watchdog_margin, allow_zero=True)
        if block_timeout is not None:
            _check_seconds("block_timeout", block_timeout, allow_zero=True)
        if handler_timeout is not None:
            _check_seconds("handler_timeout", handler_timeout, allow_zero=False)
        self.grace_period = grace_period
        self.overflow = policy
        self.workers = workers
        self.max_event_bytes = max_event_bytes
        self._handler_timeout = handler_timeout
        self._drop_report_interval = drop_report_interval
        self._registry = HandlerRegistry()
        self._queue = EventQueue(
            queue_size=queue_size, overflow=policy, block_timeout=block_timeout
        )
        self._life = Lifecycle("this EventScheduler")
        self._services: list[Service] = []
        self._tree: TaskTree | None = None  # built at start, from the settings then
        # stop() before start (a task that starts run() and one that stops it, racing):
        # kept, and honoured as soon as the scheduler runs, instead of being lost.
        self._early_stop: str | None = None
        self._hook_token: Any = None
        # A SystemExit or KeyboardInterrupt a handler or job raised (see
        # _invoke.failure_instead_of): raised again once the shutdown it began is done.
        self._exit_token: Any = None
        self._exit_request: BaseException | None = None
        self._watchdog: Watchdog | None = None
        self._watchdog_margin = watchdog_margin
        # -- jobs -- (always there, so that jobs can be added before start or while running)
        self._jobs = JobScheduler(self)
        self._services.append(self._jobs)

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """Where the scheduler is in its life; it only moves forward."""
        return self._life.state

    # -- services (the job scheduler task) --------------------------------------------

    def add_service(self, service: Service) -> None:
        """Run ``service`` in the top-level task group while the scheduler runs.

        This is the slot the job scheduler task uses. Must be called before start.
        """
        if not self._life.is_(State.CREATED):
            raise SchedulerStateError(
                f"service {service.name!r} must be added before the scheduler starts"
            )
        self._services.append(service)

    # -- jobs (add_job and friends: JobMethods, in _jobs/_facade.py) --------------------

    @property
    def jobs(self) -> JobScheduler:
        """The job scheduler task: its clock, job store and statistics."""
        return self._jobs

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        # Before the first await: a second entry racing this one must see it.
        if not self._life.advance(State.STARTING):
            raise SchedulerStateError(
                f"this EventScheduler is {self._life.state.value}; create a new one to run again"
            )
        self._tree = TaskTree(
            self._life,
            self._queue,
            self._registry,
            self._services,
            workers=self.workers,
            grace_period=self.grace_period,
            drop_report_interval=self._drop_report_interval,
        )
        self._hook_token = _invalid_hook.set(self._queue.count_invalid)
        self._exit_token = exit_hook.set(self._exit_raised)
        try:
            await self._tree.start()
        except BaseException:
            self._finish()  # could not start: everything is undone, the error goes on
            raise
        self._life.advance(State.RUNNING)
        log.info(
            "Event handler started ({} handler task(s), queue of {}, overflow {})",
            self.workers,
            self._queue.capacity,
            self.overflow.value,
        )
        if self._early_stop is not None:
            self.stop(reason=self._early_stop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tree = self._tree
        assert tree is not None
        if exc_type is None:
            self.stop(reason="the scheduler's block ended")
        elif not self._stop_requested_set():
            tree.abort(f"{exc_type.__name__} in the scheduler's block")
        try:
            suppressed = await tree.exit(exc_type, exc, tb)
        finally:
            self._finish()
        if self._exit_request is not None and (exc_type is None or suppressed):
            raise self._exit_request
        return suppressed

    def _exit_raised(self, exc: BaseException) -> None:
        if self._exit_request is None:
            self._exit_request = exc
            self.stop(reason=f"{describe_error(exc)} raised by a handler or job")

    def stop(self, *, reason: str = "stop() called") -> None:
        """Begin a graceful shutdown (idempotent, returns at once, safe in handlers).

        The lifecycle task drains the queue within the grace period, cancels what is
        left, then cancels the scheduler's own task group, which ends :meth:`run` (and
        the body of ``async with``, if still running). Safe from any thread (a sync
        handler or job, a thread of your own): from another thread the call is handed
        to the event loop and returns once it has run there. Called before the
        scheduler has started, the shutdown begins as soon as it is running.
        """
        tree = self._tree
        if tree is None or tree.stop_requested is None:
            if self._life.is_(State.CREATED) and self._early_stop is None:
                self._early_stop = reason
            return
        queue = self._queue
        if self._life.is_(State.STOPPED):
            return
        if threading.get_ident() != queue.loop_thread and queue.token is not None:
            # A sync handler or job (a worker thread) or a thread of the user's: the
            # event and the watchdog belong to the loop thread, so hand the call over.
            # (trio refuses to set its Event from another thread; asyncio's would not
            # wake the lifecycle task reliably.)
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(
                    functools.partial(self.stop, reason=reason), token=queue.token
                )
            return
        if tree.stop_requested.is_set():
            return
        tree.stop_reason = reason
        if self._watchdog is not None:
            self._watchdog.arm(self.grace_period)
        tree.stop_requested.set()

    def _stop_requested_set(self) -> bool:
        tree = self._tree
        return tree is not None and tree.stop_requested is not None and tree.stop_requested.is_set()

    async def run(
        self,
        *,
        handle_signals: bool = True,
        watchdog: bool = True,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> Statistics:
        """Run until SIGINT/SIGTERM or :meth:`stop`, shut down gracefully, return the stats.

        With ``handle_signals``: the first SIGINT or SIGTERM starts a graceful shutdown;
        a second one during it ends the process at once with exit code 130 (SIGINT) or
        143 (SIGTERM), after writing the summary. Signals stay handled after this
        returns, until the process ends. With ``watchdog``: if shutdown has not finished
        ``grace_period + watchdog_margin`` seconds after it began (a handler blocking the
        loop, or shielded from cancellation), the process ends with exit code 124.
        Started with ``await task_group.start(scheduler.run)``, it reports ready once
        the scheduler is running.
        """
        watcher = SignalWatcher(
            stop=lambda reason: self.stop(reason=reason),
            running=lambda: self._life.is_(State.RUNNING) and not self._stop_requested_set(),
            snapshot=lambda: (self._queue.statistics(), self._jobs.statistics()),
            grace=self.grace_period,
            margin=self._watchdog_margin,
            handle_signals=handle_signals,
            watchdog=watchdog,
        )
        self._watchdog = watcher.watchdog
        async with self:
            if handle_signals:
                await self._task_group_start(watcher.watch)
            log.info("Application is running. Press Ctrl+C to stop.")
            task_status.started()
            await anyio.sleep_forever()
        return self.statistics()

    async def _task_group_start(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> None:
        assert self._tree is not None
        await self._tree.start_task(func, *args)

    def _finish(self) -> None:
        self._life.advance(State.STOPPED)
        if self._hook_token is not None:
            _invalid_hook.reset(self._hook_token)
            self._hook_token = None
        if self._exit_token is not None:
            exit_hook.reset(self._exit_token)
            self._exit_token = None
        log_summary(self._queue.statistics(), self._jobs.statistics(), forced=False)
        if self._watchdog is not None:
            self._watchdog.disarm()
