"""Lessons in structured concurrency: ``python -m eventsched lesson NAME``.

Each lesson is one module here, written to be read top to bottom: the idea in its
docstring, then a demonstration that runs on asyncio or trio and returns what it
measured, with the claim and whether it held. The tests in ``tests/lessons/`` assert
every claim on both backends. The reading order (and the numbers the command line
accepts) is the list in :mod:`._registry`; ``eventsched lesson`` prints it.

The registry is imported on first use, so that the command line does not pay for
importing every lesson unless a lesson is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._registry import LESSONS, Lesson, Outcome, find_lesson, list_lessons, run_lesson

__all__ = ["LESSONS", "Lesson", "Outcome", "find_lesson", "list_lessons", "run_lesson"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _registry

        return getattr(_registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
