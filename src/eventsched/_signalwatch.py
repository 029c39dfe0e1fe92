"""One scheduler's signal handling on the event loop, for ``EventScheduler.run()``.

The process-wide parts (the guard that keeps signals handled from start-up to exit,
the watchdog, the forced exit) are in ``_signals``, which must load with the standard
library alone; this is the part that needs the event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._exit import EXIT_SIGTERM, EXIT_WATCHDOG
from ._signals import (
    _EXIT_CODES,
    IGNORED_SIGNALS,
    QUIT_SIGNALS,
    SIGNALS,
    STOP_SIGNALS,
    SignalGuard,
    Watchdog,
    _log,
    _resume,
    force_exit,
    signal_name,
)

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._pipeline import Statistics

__all__ = ["SignalWatcher"]

#: Reads of the counters a forced exit makes to find them between two loop steps.
_SNAPSHOT_TRIES: Final = 20


class SignalWatcher:
    """One scheduler's signal handling and watchdog, for ``EventScheduler.run()``.

    :param stop: begins the graceful shutdown, given its reason
    :param running: whether the scheduler runs and no stop was requested yet
    :param snapshot: the event and job statistics, read without the event loop
    """

    def __init__(
        self,
        *,
        stop: Callable[[str], None],
        running: Callable[[], bool],
        snapshot: Callable[[], tuple[Any, Any]],
        grace: float,
        margin: float,
        handle_signals: bool,
        watchdog: bool,
    ) -> None:
        self._stop = stop
        self._running = running
        self._snapshot = snapshot
        self._grace = grace
        self.watchdog = Watchdog(margin, self._watchdog_expired) if watchdog else None
        self.guard: SignalGuard | None = None
        if handle_signals:
            self.guard = guard = SignalGuard.install()
            guard.on_force = self._force_exit_on_signal
            if watchdog:
                guard.on_first = self._arm_watchdog_from_signal

    async def watch(self, *, task_status: TaskStatus[None]) -> None:
        """The loop side: the first signal asks for a graceful stop (a task of run())."""
        import anyio

        guard = self.guard
        assert guard is not None
        with contextlib.ExitStack() as pending:
            try:
                # Masked from before the receiver takes the handlers until the guard is in
                # front of it: a signal in between reached the receiver alone, uncounted,
                # and the next one was then taken for the first, which forces no exit.
                # A job's first output comes about half a millisecond before this (the
                # shutdown lesson's child prints "ready" so, and its test signals then).
                swap = contextlib.ExitStack()
                swap.enter_context(guard.masked())
                with swap, anyio.open_signal_receiver(*SIGNALS) as signals:
                    try:
                        guard.chain_over_current()
                        swap.close()  # a signal held meanwhile is delivered, to the guard
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
        name = signal_name(signum)
        if signum in IGNORED_SIGNALS:
            _log().info("Received {}: ignored (only SIGINT, SIGTERM and SIGHUP stop)", name)
        elif signum in STOP_SIGNALS and self._running():
            _log().warning(
                "Received {}: shutting down gracefully (grace period {}s); "
                "send it again to exit at once",
                name,
                self._grace,
            )
            self._stop(f"{name} received")

    # -- outside the loop: signal handler and watchdog thread --------------------------

    def _arm_watchdog_from_signal(self, signum: int) -> None:
        if self.watchdog is not None:
            self.watchdog.arm(self._grace)

    def _force_exit_on_signal(self, signum: int) -> None:
        name = signal_name(signum)
        reason = (
            f"{name} received"
            if signum in QUIT_SIGNALS
            else f"Second signal ({name}) during shutdown"
        )
        force_exit(_EXIT_CODES.get(signum, EXIT_SIGTERM), reason, self._log_final_summary)

    def _watchdog_expired(self, limit: float) -> None:
        force_exit(
            EXIT_WATCHDOG,
            f"Shutdown watchdog: not stopped {limit:g}s after shutdown began "
            "(a handler blocks the event loop or ignores cancellation)",
            self._log_final_summary,
        )

    def _log_final_summary(self) -> None:
        # Called from a thread while the loop may still run, or be held in the signal
        # handler, possibly stopped in the middle of an update (the signal interrupted
        # it between two bytecodes). So: read the counters in one go (a long switch
        # interval keeps the GIL here; the reads do no I/O), and if that caught the
        # loop thread halfway, let it go on to finish its step and read again.
        from ._pipeline import log_summary

        interval = sys.getswitchinterval()
        for _ in range(_SNAPSHOT_TRIES):
            sys.setswitchinterval(60.0)
            try:
                stats, jobs = self._snapshot()
            finally:
                sys.setswitchinterval(interval)
            stats = _in_transit(stats)
            if stats.unaccounted == 0:
                break
            _resume.set()
            time.sleep(0.001)
        log_summary(stats, jobs, forced=True)


def _in_transit(stats: Statistics) -> Statistics:
    """``stats`` read with the loop thread stopped between a worker's taking an event
    from the stream and its counting it as received (a few bytecodes, where a signal can
    land: the stream no longer has the event, the counters not yet): that event is in
    the worker's hands, in flight. Letting the loop thread go on to count it instead ran
    handlers after "exiting now" (busy handlers: ~10 of them, a test's rare failure).
    Any other mismatch is left as read."""
    if stats.unaccounted != 1:
        return stats
    taken = dataclasses.replace(stats, in_flight=stats.in_flight + 1)
    return taken if taken.unaccounted == 0 else stats
