"""The parts of shutdown that must work even when the event loop does not.

Graceful shutdown runs on the event loop (see ``_scheduler.py``). What is here runs
outside it, in a signal handler or a thread, because a handler that blocks the loop
(``time.sleep``) or hides in a shielded scope stops the loop-side path cold:

* :class:`SignalGuard` keeps SIGINT and SIGTERM handled for the whole life of the
  process: before the loop starts, while anyio's signal receiver runs (chained in
  front of it) and after it closes. A second signal forces the exit from a thread.
* :class:`Watchdog` is a thread armed by the first stop request; if the scheduler has
  not stopped within grace + margin, it ends the process with :data:`EXIT_WATCHDOG`.

Both write the final summary and flush the logs before ``os._exit``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final

from loguru import logger

__all__ = [
    "SIGNALS",
    "SignalGuard",
    "Watchdog",
    "block_signals_in_this_thread",
    "force_exit",
]

log = logger.bind(component="shutdown")

SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

_exit_lock = threading.Lock()
_blocked_threads = threading.local()


def block_signals_in_this_thread() -> None:
    """Keep SIGINT/SIGTERM out of this (non-main) thread, once per thread.

    A process-directed signal goes to any thread that does not block it. If it lands
    in a worker thread while the main thread has it masked (see
    :meth:`SignalGuard.masked`), the default action would kill the process.
    """
    if getattr(_blocked_threads, "done", False) or not hasattr(signal, "pthread_sigmask"):
        return
    if threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    _blocked_threads.done = True


def force_exit(code: int, reason: str, final_words: Callable[[], None] | None) -> None:
    """Log why, let ``final_words`` write the summary, flush, and end the process now.

    Safe from any thread; only the first caller proceeds (a second one would race it
    for the log and the exit code).
    """
    if not _exit_lock.acquire(blocking=False):
        return
    try:
        log.critical("{}: exiting now with code {}", reason, code)
        if final_words is not None:
            final_words()
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            logger.complete()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


class Watchdog:
    """A thread that ends the process if a stop does not finish in time."""

    def __init__(self, margin: float, on_expire: Callable[[float], None]) -> None:
        self.margin = margin
        self._on_expire = on_expire
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def arm(self, grace: float) -> None:
        """Start counting ``grace + margin`` seconds; later calls change nothing."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return
            limit = grace + self.margin
            self._thread = threading.Thread(
                target=self._watch, args=(limit,), name="eventsched-watchdog", daemon=True
            )
            self._thread.start()

    def disarm(self) -> None:
        """The stop finished: the watchdog will not fire."""
        self._done.set()

    def _watch(self, limit: float) -> None:
        block_signals_in_this_thread()
        if not self._done.wait(limit):
            self._on_expire(limit)


class SignalGuard:
    """Process-wide SIGINT/SIGTERM handling that is never left at the default action."""

    _installed: SignalGuard | None = None

    def __init__(self) -> None:
        self.count = 0
        self.first_signal: int | None = None
        self.on_first: Callable[[int], None] | None = None
        self.on_second: Callable[[int], None] | None = None
        self._forward: dict[int, Callable[[int, FrameType | None], object]] = {}

    @classmethod
    def install(cls) -> SignalGuard:
        """Install the process's guard (once) and return it. Main thread only."""
        guard = cls._installed
        if guard is None:
            guard = cls._installed = cls()
        guard.reinstall()
        return guard

    def reinstall(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self.handle)
        self._forward.clear()

    def chain_over_current(self) -> None:
        """Put the guard in front of whatever handler is installed now (the loop's)."""
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if previous is self.handle or not callable(previous):
                continue
            self._forward[signum] = previous
            signal.signal(signum, self.handle)

    @contextlib.contextmanager
    def masked(self) -> Iterator[None]:
        """Hold SIGINT/SIGTERM pending while handlers are swapped, then deliver them."""
        if not hasattr(signal, "pthread_sigmask"):
            yield
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes, even while the loop is blocked.
        # It only counts, arms and starts threads: logging here could deadlock on a
        # lock the interrupted code holds.
        self.count += 1
        if self.count == 1:
            self.first_signal = signum
            if self.on_first is not None:
                self.on_first(signum)
        elif self.on_second is not None:
            on_second = self.on_second
            threading.Thread(
                target=on_second, args=(signum,), name="eventsched-force-exit", daemon=True
            ).start()
        forward = self._forward.get(signum)
        if forward is not None:
            forward(signum, frame)
