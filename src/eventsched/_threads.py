"""Sync handlers and sync jobs run in worker threads; count the ones still running.

A thread cannot be interrupted: a timeout or shutdown abandons the call and leaves it
to finish. On asyncio, anyio's worker threads are not daemon threads, so the
interpreter waits for them at exit, however long the abandoned call takes. The
command line reads this count after the run to end the process without that wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["running_threads", "tracked"]

T = TypeVar("T")

_lock = threading.Lock()
_running = 0


def tracked(func: Callable[..., T], *args: Any) -> T:
    """Call ``func(*args)`` in this (worker) thread, counted while it runs."""
    global _running
    with _lock:
        _running += 1
    try:
        return func(*args)
    finally:
        with _lock:
            _running -= 1


def running_threads() -> int:
    """Sync handler and job calls running in worker threads now, abandoned ones included."""
    return _running
