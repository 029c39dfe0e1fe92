"""Signals, the shutdown watchdog and the forced exit: what ``EventScheduler.run()`` adds.

Graceful shutdown runs on the event loop (see ``_scheduler.py``). What is here runs
outside it, in a signal handler or a thread, because a handler that blocks the loop
(``time.sleep``) or hides in a shielded scope stops the loop-side path cold:

* :class:`SignalGuard` keeps the signals below handled for the whole life of the
  process: from the first lines of ``__main__`` (before the heavy imports), while
  anyio's signal receiver runs (chained in front of it) and after it closes.
* :class:`Watchdog` is a thread armed by the first stop request; if the scheduler has
  not stopped within grace + margin, it ends the process with ``EXIT_WATCHDOG``.
* :class:`SignalWatcher` ties both to one scheduler; only ``run()`` creates one, so
  ``async with scheduler`` gets no signal handling from the library.

Per signal: SIGINT, SIGTERM and SIGHUP ask for a graceful stop, and a second one
during the shutdown forces the exit (128 + its number) after writing the summary;
SIGQUIT forces it at once; SIGUSR1 and SIGUSR2 are logged and otherwise ignored.

Under ``uv run`` one signal arrives twice: a process-group signal reaches uv and
Python, and uv forwards its copy (SIGTERM at once, SIGINT ~200 ms later when there is
no terminal). When the parent is uv, the first repeat of the same signal within
:data:`COPY_WINDOW` is taken as that copy, not as a second press. Only the standard
library is imported at module level, so that installing the guard early costs nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from ._exit import EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGQUIT, EXIT_SIGTERM

if TYPE_CHECKING:
    pass

__all__ = ["COPY_WINDOW", "SIGNALS", "SignalGuard", "Watchdog", "force_exit"]


def _existing(*names: str) -> tuple[signal.Signals, ...]:
    # Windows lacks most of them: handle those the platform has.
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


#: A graceful stop; a second one during the shutdown forces the exit.
STOP_SIGNALS: Final = _existing("SIGINT", "SIGTERM", "SIGHUP")
#: The exit at once, with the summary (Ctrl+\ means "quit now").
QUIT_SIGNALS: Final = _existing("SIGQUIT")
#: Logged and ignored: their default action would kill with no summary.
IGNORED_SIGNALS: Final = _existing("SIGUSR1", "SIGUSR2")
SIGNALS: Final = STOP_SIGNALS + QUIT_SIGNALS + IGNORED_SIGNALS

#: Seconds within which a repeat of the same signal, under uv, is uv's forwarded copy.
#: uv forwards SIGINT after a fixed 200 ms delay when no terminal is attached; the
#: rest leaves room for a loaded machine. A real second press after it still counts.
COPY_WINDOW: Final = 0.5

#: Seconds a second signal holds the main thread (the event loop) while the forced
#: exit writes the summary: the handlers stop at once, and no graceful end races it.
_PARK_LIMIT: Final = 2.0


_CODES = (("SIGINT", EXIT_SIGINT), ("SIGTERM", EXIT_SIGTERM), ("SIGHUP", EXIT_SIGHUP))
_EXIT_CODES: Final = {
    int(signum): code
    for name, code in (*_CODES, ("SIGQUIT", EXIT_SIGQUIT))
    if (signum := getattr(signal, name, None)) is not None
}

_exit_lock = threading.Lock()
_resume = threading.Event()
_blocked_threads = threading.local()


def _log() -> Any:
    from loguru import logger

    return logger.bind(component="shutdown")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def block_signals_in_this_thread() -> None:
    """Keep our signals out of this (non-main) thread, once per thread.

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
        log = _log()
        log.critical("{}: exiting now with code {}", reason, code)
        if final_words is not None:
            final_words()
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            from loguru import logger

            logger.complete()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _parent_is_uv() -> bool:
    """Whether our parent is ``uv run``, which forwards the signals it receives."""
    try:
        with open(f"/proc/{os.getppid()}/comm", encoding="utf-8") as comm:
            return comm.read().strip() in ("uv", "uvx")
    except OSError:
        # No /proc (macOS): uv sets UV for the processes it runs.
        return "UV" in os.environ


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
    """Process-wide signal handling that is never left at the default action."""

    _installed: SignalGuard | None = None

    def __init__(self) -> None:
        self.count = 0
        self.copies = 0
        self.first_signal: int | None = None
        self.on_first: Callable[[int], None] | None = None
        self.on_force: Callable[[int], None] | None = None
        self.copies_expected = _parent_is_uv()
        self._copy_of: tuple[int, float] | None = None
        self._forward: dict[int, Callable[[int, FrameType | None], object]] = {}

    @classmethod
    def install(cls) -> SignalGuard:
        """Install the process's guard (once) and return it. Main thread only."""
        guard = cls._installed
        if guard is None:
            guard = cls._installed = cls()
            atexit.register(_ignore_at_exit)
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
        """Hold our signals pending while handlers are swapped, then deliver them."""
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
        if signum in IGNORED_SIGNALS:
            self._pass_on(signum, frame)
            return
        now = time.monotonic()
        copy_of, self._copy_of = self._copy_of, None
        if copy_of is not None and copy_of[0] == signum and now - copy_of[1] <= COPY_WINDOW:
            self.copies += 1  # uv's forwarded copy of the signal just counted
            return
        if signum in QUIT_SIGNALS:
            self._force(signum, frame)
            return
        self.count += 1
        if self.copies_expected:
            self._copy_of = (signum, now)
        if self.count == 1:
            self.first_signal = signum
            if self.on_first is not None:
                self.on_first(signum)
        else:
            self._force(signum, frame)
            return
        self._pass_on(signum, frame)

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        forward = self._forward.get(signum)
        if forward is not None:
            forward(signum, frame)

    def _force(self, signum: int, frame: FrameType | None) -> None:
        on_force = self.on_force
        if on_force is None:
            return
        threading.Thread(
            target=on_force, args=(signum,), name="eventsched-force-exit", daemon=True
        ).start()
        # Hold the main thread, which runs the event loop, here: the handlers stop now
        # and the graceful path cannot finish and exit 0 while the summary is written.
        # Not in the middle of a log call, whose lock the exit needs for its own lines;
        # and bounded, for a lock of some other kind (a print's, say).
        if not _in_logging(frame):
            _resume.wait(_PARK_LIMIT)


def _in_logging(frame: FrameType | None) -> bool:
    while frame is not None:
        if "loguru" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _ignore_at_exit() -> None:
    # The interpreter's finalization resets Python-level handlers to the default
    # action, but leaves "ignore" alone: a signal then (uv's copy, arriving 200 ms
    # after the one that stopped us) would kill a process that is already exiting.
    for signum in SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN)


def install_early() -> SignalGuard:
    """Install the guard in the first lines of ``__main__``, before the heavy imports.

    A signal that comes before the scheduler runs is kept: the scheduler stops
    gracefully as soon as it runs. A second one exits at once (nothing to drain yet).
    """
    guard = SignalGuard.install()
    if guard.on_force is None:
        guard.on_force = _exit_during_startup
    return guard


def install_for_command() -> None:
    """Install the guard now if this process is the runtime of ``python -m eventsched``.

    Called when this module is first imported, which the package does before its
    other imports (a fraction of a second in all): a signal in that time would
    otherwise print a ``KeyboardInterrupt`` traceback or kill with no line at all.
    Library users, and the ``bench`` and ``lesson`` commands (which stop on a plain
    ``KeyboardInterrupt``), keep Python's default handling.
    """
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if "-m" in argv[:-1]:
        args = argv[argv.index("-m") + 1 :]
        if args[0] != "eventsched":
            return
    elif os.path.basename(sys.argv[0]).removesuffix(".exe") == "eventsched":
        args = sys.argv
    else:
        return
    if any(arg in _SUBCOMMANDS for arg in args[1:]):
        return
    if threading.current_thread() is threading.main_thread():
        install_early()


_SUBCOMMANDS: Final = frozenset({"bench", "lesson"})


def _exit_during_startup(signum: int) -> None:
    force_exit(
        _EXIT_CODES.get(signum, EXIT_SIGTERM),
        f"{signal_name(signum)} received during start-up",
        None,
    )


# See install_for_command: the earliest moment the package can act.
install_for_command()
