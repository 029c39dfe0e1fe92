"""EventScheduler: the top-level task group and the lifecycle that owns everything."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from enum import Enum, StrEnum
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar, overload

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus
from loguru import logger

from ._bus import CHECKPOINT_EVERY, EventBus
from ._events import (
    DEFAULT_MAX_EVENT_BYTES,
    Event,
    EventType,
    EventTypeLike,
    FrozenDict,
    _invalid_hook,
    admit_event,
    make_event,
)
from ._exceptions import InvalidEventError, QueueFullError, SchedulerStateError
from ._exit import EXIT_SIGINT, EXIT_SIGTERM, EXIT_WATCHDOG
from ._handlers import HandlerFunc, HandlerRegistry
from ._jobs import JobScheduler, jobs_method
from ._shutdown import (
    SIGNALS,
    SignalGuard,
    Watchdog,
    force_exit,
)
from ._stats import OverflowPolicy, Statistics
from ._summary import log_summary
from ._validate import check_int as _check_int
from ._validate import check_seconds as _check_seconds

__all__ = ["EventScheduler", "SchedulerState"]

log = logger.bind(component="scheduler")


F = TypeVar("F", bound=HandlerFunc)

# Producers yield every CHECKPOINT_EVERY accepted emits (a power of two, so a mask).
_EMIT_BATCH_MASK: Final = CHECKPOINT_EVERY - 1

#: Reads of the counters a forced exit makes to find them between two loop steps.
_SNAPSHOT_TRIES: Final = 20

#: Extra time the watchdog allows beyond the grace period: cancelling what is left,
#: writing the summary and flushing the logs take well under this.
DEFAULT_WATCHDOG_MARGIN: Final = 2.0


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


class SchedulerState(StrEnum):
    """Where an :class:`EventScheduler` is in its life. It only moves forward."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class EventScheduler:
    """Owns the event queue, the handler tasks, the scheduler task and signal handling.

    Use it as an async context manager (leaving the block shuts down gracefully) or
    call :meth:`run` for a whole program (it returns when a signal or :meth:`stop`
    has shut it down)::

        scheduler = EventScheduler()

        @scheduler.on(EventType.JOB_FAILED)
        async def alert(event: Event) -> None: ...

        async with scheduler:
            await scheduler.emit(EventType.JOB_FAILED, {"job_id": "demo_job"})

    Shutdown, whatever starts it: ``SHUTDOWN_REQUESTED`` is emitted, services (the job
    scheduler task) stop, intake closes, the workers drain the queue for up to
    ``grace_period`` seconds, then whatever is still running is cancelled and counted.
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
        :param queue_size: capacity of the bounded event queue
        :param overflow: what an emit does when the queue is full (:class:`OverflowPolicy`)
        :param workers: number of handler tasks consuming the queue
        :param grace_period: seconds the queue may drain at shutdown before cancellation
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
        _check_int("queue_size", queue_size, minimum=1)
        _check_int("workers", workers, minimum=1)
        _check_int("max_event_bytes", max_event_bytes, minimum=2)
        _check_seconds("grace_period", grace_period, allow_zero=True)
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
        self._bus = EventBus(
            self._registry,
            queue_size=queue_size,
            overflow=policy,
            block_timeout=block_timeout,
            max_event_bytes=max_event_bytes,
        )
        self._state = SchedulerState.CREATED
        self._emits = 0
        self._services: list[Service] = []
        self._task_group: TaskGroup | None = None
        self._service_scopes: list[anyio.CancelScope] = []
        self._workers_scope: anyio.CancelScope | None = None
        self._workers_done: anyio.Event | None = None
        self._stop_requested: anyio.Event | None = None
        self._stop_reason = "stop() called"
        # stop() before start (a task that starts run() and one that stops it, racing):
        # kept, and honoured as soon as the scheduler runs, instead of being lost.
        self._early_stop: str | None = None
        self._hook_token: Any = None
        self._watchdog: Watchdog | None = None
        self._watchdog_margin = watchdog_margin
        # -- jobs -- (always there, so that jobs can be added before start or while running)
        self._jobs = JobScheduler(self)
        self._services.append(self._jobs)

    # -- handlers ----------------------------------------------------------------------

    @overload
    def on(
        self, event_type: EventTypeLike, handler: None = None, *, timeout: float | None = None
    ) -> Callable[[F], F]: ...
    @overload
    def on(self, event_type: EventTypeLike, handler: F, *, timeout: float | None = None) -> F: ...

    def on(
        self,
        event_type: EventTypeLike,
        handler: F | None = None,
        *,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Subscribe ``handler`` to ``event_type`` (``"*"`` for every event).

        As a decorator: ``@scheduler.on(EventType.JOB_FAILED)``; or directly:
        ``scheduler.on("order_placed", handle_order)``. Async handlers run in the
        handler tasks; sync ones in a worker thread. ``timeout`` (seconds) overrides the
        scheduler's ``handler_timeout``; a handler past it is cancelled and the event
        counts as timed out.
        """
        effective = timeout if timeout is not None else self._handler_timeout

        def register(func: F) -> F:
            self._registry.add(event_type, func, effective)
            return func

        if handler is not None:
            return register(handler)
        return register

    def off(self, event_type: EventTypeLike, handler: HandlerFunc) -> bool:
        """Unsubscribe ``handler`` from ``event_type``; return whether it was subscribed."""
        return self._registry.remove(event_type, handler)

    # -- emitting ----------------------------------------------------------------------

    def _event(
        self,
        event: Event | EventTypeLike,
        data: Mapping[str, Any] | None,
        correlation_id: str | None,
        causation_id: str | None,
    ) -> Event:
        if type(event) is Event:
            if data is not None or correlation_id is not None or causation_id is not None:
                raise TypeError("pass either an Event or a type with data, not both")
            return self._admit(event)
        try:
            return make_event(
                Event,
                event,  # type: ignore[arg-type]
                data,
                self.max_event_bytes,
                correlation_id,
                causation_id,
            )
        except InvalidEventError as error:
            self._bus.count_invalid(error)
            raise

    def _admit(self, event: Event) -> Event:
        # A ready-made event whose data this scheduler cannot trust as measured: built
        # by the constructor or _replace, or near (or over) this scheduler's limit.
        try:
            return admit_event(event, self.max_event_bytes)
        except InvalidEventError as error:
            self._bus.count_invalid(error)
            raise

    async def emit(
        self,
        event: Event | EventTypeLike,
        data: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> bool:
        """Put an event on the queue; return whether it was accepted.

        Takes an :class:`Event`, or a type and data to create one with. Under the
        ``block`` policy this waits for room (up to ``block_timeout``); otherwise it
        never waits, and yields to the loop only every 64 calls so that a producer loop
        cannot starve the handlers. Returns False when the event was dropped or intake
        had closed (both counted).

        :raises InvalidEventError: the data is not acceptable (counted as rejected)
        :raises QueueFullError: the queue is full and the policy is ``reject``
        """
        bus = self._bus
        try:
            if event.__class__ is not Event:
                # make_event called here rather than through _event: one call less per
                # event on the path every producer loop takes.
                event = make_event(
                    Event,
                    event,  # type: ignore[arg-type]
                    data,
                    self.max_event_bytes,
                    correlation_id,
                    causation_id,
                )
            elif data is not None or correlation_id is not None or causation_id is not None:
                raise TypeError("pass either an Event or a type with data, not both")
            elif (
                event.data.__class__ is not FrozenDict
                or not 2 <= event.data_size <= self.max_event_bytes
                # _replace(type=..., correlation_id=...): a str subclass or a non-str id
                # is checked by admit_event (not the worker, whose routing hashes the type)
                or (event.type.__class__ is not str and not isinstance(event.type, Enum))
                or event.correlation_id.__class__ is not str
            ):
                event = self._admit(event)
            # No thread check here (emit_nowait has one): a coroutine runs on an event
            # loop, and awaiting ours from another loop's thread is as unsupported as it
            # is for every anyio object. Other threads use emit_nowait().
            accepted = bus.offer(event)
        except (InvalidEventError, QueueFullError) as error:
            if isinstance(error, InvalidEventError):
                bus.count_invalid(error)
            # A refused emit counts toward the batch as well: a producer that catches
            # the error and goes on would otherwise never yield to the handlers.
            emits = self._emits = self._emits + 1
            if not emits & _EMIT_BATCH_MASK:
                await anyio.lowlevel.checkpoint()
            raise
        if accepted is None:
            return await bus.wait_for_room(event)
        # Accepted emits never yield (that is the speed of send_nowait), so a producer
        # loop would starve every other task: yield every CHECKPOINT_EVERY emits.
        emits = self._emits = self._emits + 1
        if not emits & _EMIT_BATCH_MASK:
            await anyio.lowlevel.checkpoint()
        return accepted

    def emit_nowait(
        self,
        event: Event | EventTypeLike,
        data: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> bool:
        """Like :meth:`emit`, but never waits: for sync code and other threads.

        On the event loop thread under ``block`` a full queue means a drop (counted as
        ``queue_full``), since sync code cannot wait. From any other thread (a sync
        handler, a sync job, a thread of your own) the event is handed to the loop
        thread, and under ``block`` that thread waits for room.
        """
        if (
            event.__class__ is not Event
            or data is not None
            or correlation_id is not None
            or causation_id is not None
        ):
            event = self._event(event, data, correlation_id, causation_id)
        elif (
            event.data.__class__ is not FrozenDict
            or not 2 <= event.data_size <= self.max_event_bytes
            # _replace(type=..., correlation_id=...): a str subclass or a non-str id
            # is checked by admit_event (not the worker, whose routing hashes the type)
            or (event.type.__class__ is not str and not isinstance(event.type, Enum))
            or event.correlation_id.__class__ is not str
        ):
            event = self._admit(event)
        return self._bus.emit_nowait(event)

    # -- state and accounting ----------------------------------------------------------

    @property
    def state(self) -> SchedulerState:
        return self._state

    def statistics(self) -> Statistics:
        """A consistent snapshot of the accounting (see :class:`Statistics`).

        Safe from any thread: from another thread, while the event loop runs, the
        snapshot is taken on the loop thread (the call waits for it), since counters
        read from elsewhere could be caught halfway through one of its updates.
        """
        bus = self._bus
        token = bus.token
        if (
            token is not None
            and self._state is not SchedulerState.STOPPED  # stopped: nothing changes
            and threading.get_ident() != bus.loop_thread
        ):
            with contextlib.suppress(anyio.RunFinishedError):
                return anyio.from_thread.run_sync(bus.statistics, token=token)
        return bus.statistics()

    # -- services (the job scheduler task) --------------------------------------------

    def add_service(self, service: Service) -> None:
        """Run ``service`` in the top-level task group while the scheduler runs.

        This is the slot the job scheduler task uses. Must be called before start.
        """
        if self._state is not SchedulerState.CREATED:
            raise SchedulerStateError(
                f"service {service.name!r} must be added before the scheduler starts"
            )
        self._services.append(service)

    # -- jobs (see _jobs.py; these delegate to the JobScheduler service) -------------

    @property
    def jobs(self) -> JobScheduler:
        """The job scheduler task: its clock, state file and statistics."""
        return self._jobs

    add_job = jobs_method(JobScheduler.add_job)
    job = jobs_method(JobScheduler.job)
    remove_job = jobs_method(JobScheduler.remove_job)
    pause_job = jobs_method(JobScheduler.pause_job)
    resume_job = jobs_method(JobScheduler.resume_job)
    get_job = jobs_method(JobScheduler.get_job)
    get_jobs = jobs_method(JobScheduler.get_jobs)
    configure_jobs = jobs_method(JobScheduler.configure)
    job_statistics = jobs_method(JobScheduler.statistics)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not SchedulerState.CREATED:
            raise SchedulerStateError(
                f"this EventScheduler is {self._state.value}; create a new one to run again"
            )
        # Before the first await: a second entry racing this one must see it.
        self._state = SchedulerState.STARTING
        self._stop_requested = anyio.Event()
        self._workers_done = anyio.Event()
        self._hook_token = _invalid_hook.set(self._bus.count_invalid)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            self._bus.open()
            await task_group.start(self._run_workers)
            task_group.start_soon(self._report_drops)
            for service in self._services:
                await task_group.start(self._run_service, service)
            task_group.start_soon(self._lifecycle)
        except BaseException as exc:
            # Could not start: undo everything, then let the error through.
            self._bus.close_intake(force=True)
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(type(exc), exc, exc.__traceback__)
            except BaseExceptionGroup as group:
                raise _single(group) from None
            finally:
                self._bus.close_receive()
                self._finish()
            raise
        self._state = SchedulerState.RUNNING
        log.info(
            "Event handler started ({} handler task(s), queue of {}, overflow {})",
            self.workers,
            self._bus._capacity,
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
        task_group = self._task_group
        assert task_group is not None
        if exc_type is None:
            self.stop(reason="the scheduler's block ended")
        elif not self._stop_requested_set():
            # The body failed: no grace, cancel everything now (still all accounted).
            self._stop_reason = f"{exc_type.__name__} in the scheduler's block"
            self._state = SchedulerState.STOPPING
            self._bus.close_intake()
            task_group.cancel_scope.cancel()
        try:
            return bool(await task_group.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            raise _single(group) from None
        finally:
            self._finish()

    def stop(self, *, reason: str = "stop() called") -> None:
        """Begin a graceful shutdown (idempotent, returns at once, safe in handlers).

        The lifecycle task drains the queue within the grace period, cancels what is
        left, then cancels the scheduler's own task group, which ends :meth:`run` (and
        the body of ``async with``, if still running). Safe from any thread (a sync
        handler or job, a thread of your own): from another thread the call is handed
        to the event loop and returns once it has run there. Called before the
        scheduler has started, the shutdown begins as soon as it is running.
        """
        if self._stop_requested is None:
            if self._state is SchedulerState.CREATED and self._early_stop is None:
                self._early_stop = reason
            return
        bus = self._bus
        if self._state is SchedulerState.STOPPED:
            return
        if threading.get_ident() != bus.loop_thread and bus.token is not None:
            # A sync handler or job (a worker thread) or a thread of the user's: the
            # event and the watchdog belong to the loop thread, so hand the call over.
            # (trio refuses to set its Event from another thread; asyncio's would not
            # wake the lifecycle task reliably.)
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(
                    functools.partial(self.stop, reason=reason), token=bus.token
                )
            return
        if self._stop_requested.is_set():
            return
        self._stop_reason = reason
        if self._watchdog is not None:
            self._watchdog.arm(self.grace_period)
        self._stop_requested.set()

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
        guard: SignalGuard | None = None
        if handle_signals:
            guard = SignalGuard.install()
            guard.on_second = self._force_exit_on_signal
        if watchdog:
            self._watchdog = Watchdog(self._watchdog_margin, self._watchdog_expired)
            if guard is not None:
                guard.on_first = self._arm_watchdog_from_signal
        async with self:
            if guard is not None:
                await self._task_group_start(self._watch_signals, guard)
            log.info("Application is running. Press Ctrl+C to stop.")
            task_status.started()
            await anyio.sleep_forever()
        return self.statistics()

    async def _task_group_start(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> None:
        assert self._task_group is not None
        await self._task_group.start(func, *args)

    # -- the tasks of the top-level group ----------------------------------------------

    async def _run_workers(self, *, task_status: TaskStatus[None]) -> None:
        assert self._workers_done is not None
        try:
            with anyio.CancelScope() as scope:
                self._workers_scope = scope
                async with anyio.create_task_group() as workers:
                    for _ in range(self.workers):
                        workers.start_soon(self._bus.worker)
                    task_status.started()
        finally:
            # The workers are gone: close both ends of the stream (else ResourceWarning).
            self._bus.close_intake(force=True)
            self._bus.close_receive()
            self._workers_done.set()

    async def _run_service(self, service: Service, *, task_status: TaskStatus[None]) -> None:
        with anyio.CancelScope() as scope:
            self._service_scopes.append(scope)
            await service.run(task_status=task_status)
        log.debug("Service {} stopped", service.name)

    async def _report_drops(self) -> None:
        """Report drops at most once per interval; the report itself is never dropped."""
        bus = self._bus
        while True:
            signal_ = bus.drop_signal
            assert signal_ is not None
            await signal_.wait()
            bus.drop_signal = anyio.Event()
            await self._report_drops_now()
            # Rate limit: drops during this pause are gathered into the next report.
            await anyio.sleep(self._drop_report_interval)

    async def _report_drops_now(self) -> None:
        by_reason = self._bus.take_unreported_drops()
        if not by_reason:
            return
        count = sum(by_reason.values())
        total = sum(self._bus.dropped.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(by_reason.items()))
        log.warning(
            "Dropped {} event(s) since the last report ({}); {} dropped in all",
            count,
            reasons,
            total,
        )
        report = Event.create(
            EventType.EVENTS_DROPPED,
            {"count": count, "by_reason": by_reason, "total": total},
        )
        await self._bus.emit_protected(report)

    async def _lifecycle(self) -> None:
        """Wait for a stop request, then drain, cancel what is left and end the group."""
        assert self._stop_requested is not None
        await self._stop_requested.wait()
        await self._shutdown()
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        bus = self._bus
        self._state = SchedulerState.STOPPING
        deadline = anyio.current_time() + self.grace_period
        log.info(
            "Shutting down ({}): draining {} queued event(s) within {}s",
            self._stop_reason,
            bus.queued,
            self.grace_period,
        )
        # 1. No new job runs: the scheduler task (and any other service) stops first;
        # and no emitter waits for room any more (see EventBus.begin_shutdown).
        for service in self._services:
            service.begin_shutdown()
        bus.begin_shutdown()
        # 2. Tell the handlers; the event waits for room rather than being dropped.
        with anyio.move_on_at(deadline):
            await bus.emit_protected(
                Event.create(EventType.SHUTDOWN_REQUESTED, {"reason": self._stop_reason})
            )
        # Job runs in progress may finish within the grace period and report it.
        with anyio.move_on_at(deadline):
            for service in self._services:
                await service.wait_idle()
        # 3. Report drops so far while the report can still get in, then stop intake;
        # the workers drain the buffer and then see the end of the stream.
        with anyio.move_on_at(deadline):
            await self._report_drops_now()
        bus.close_intake()
        assert self._workers_done is not None
        with anyio.move_on_at(deadline):
            await self._workers_done.wait()
        # 4. Past the grace period: cancel the handlers still running.
        if not self._workers_done.is_set():
            log.warning(
                "Grace period of {}s is over: cancelling {} handler(s) in flight, "
                "{} event(s) left in the queue",
                self.grace_period,
                bus.in_flight,
                bus.leftover(),
            )
            assert self._workers_scope is not None
            self._workers_scope.cancel()
        for scope in self._service_scopes:
            scope.cancel()
        await self._workers_done.wait()

    async def _watch_signals(self, guard: SignalGuard, *, task_status: TaskStatus[None]) -> None:
        with contextlib.ExitStack() as pending:
            try:
                with anyio.open_signal_receiver(*SIGNALS) as signals:
                    try:
                        guard.chain_over_current()
                        task_status.started()
                        if guard.first_signal is not None:  # came before we listened
                            self._stop_on_signal(guard.first_signal)
                        async for signum in signals:
                            self._stop_on_signal(signum)
                    finally:
                        # Leaving the receiver resets the handlers (on asyncio to the
                        # default action, which kills): hold signals pending until the
                        # guard is back; the ExitStack delivers them after that.
                        pending.enter_context(guard.masked())
            finally:
                guard.reinstall()

    def _stop_on_signal(self, signum: int) -> None:
        if self._state is SchedulerState.RUNNING and not self._stop_requested_set():
            name = signal.Signals(signum).name
            log.warning(
                "Received {}: shutting down gracefully (grace period {}s); "
                "send it again to exit at once",
                name,
                self.grace_period,
            )
            self.stop(reason=f"{name} received")

    def _stop_requested_set(self) -> bool:
        return self._stop_requested is not None and self._stop_requested.is_set()

    # -- outside the loop: signal handler and watchdog thread --------------------------

    def _arm_watchdog_from_signal(self, signum: int) -> None:
        if self._watchdog is not None:
            self._watchdog.arm(self.grace_period)

    def _force_exit_on_signal(self, signum: int) -> None:
        code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM
        name = signal.Signals(signum).name
        force_exit(code, f"Second signal ({name}) during shutdown", self._log_final_summary)

    def _watchdog_expired(self, limit: float) -> None:
        force_exit(
            EXIT_WATCHDOG,
            f"Shutdown watchdog: not stopped {limit:g}s after shutdown began "
            "(a handler blocks the event loop or ignores cancellation)",
            self._log_final_summary,
        )

    def _log_final_summary(self) -> None:
        # Called from a thread while the loop may still run, and possibly stopped in
        # the middle of an update (the signal that started us interrupted it between
        # two bytecodes). So: read the counters in one go (a long switch interval keeps
        # the GIL here; the reads do no I/O), and if that caught the loop thread
        # halfway, let it finish its step and read again, briefly.
        interval = sys.getswitchinterval()
        for _ in range(_SNAPSHOT_TRIES):
            sys.setswitchinterval(60.0)
            try:
                stats, jobs = self._bus.statistics(), self._jobs.statistics()
            finally:
                sys.setswitchinterval(interval)
            if stats.unaccounted == 0:
                break
            time.sleep(0.001)
        log_summary(stats, jobs, forced=True)

    def _finish(self) -> None:
        self._state = SchedulerState.STOPPED
        if self._hook_token is not None:
            _invalid_hook.reset(self._hook_token)
            self._hook_token = None
        log_summary(self._bus.statistics(), self._jobs.statistics(), forced=False)
        if self._watchdog is not None:
            self._watchdog.disarm()


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
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
