"""Lessons in structured concurrency: ``python -m eventsched lesson NAME``.

Each lesson is one module here, written to be read top to bottom: the idea in its
docstring, then a demonstration that runs on asyncio or trio and returns what it
measured, with the claim and whether it held. ``tests/test_lessons.py`` asserts every
claim on both backends. In reading order:

1. :mod:`.task_groups`: task groups own their tasks
2. :mod:`.cancel_scopes`: cancel scopes and timeouts
3. :mod:`.bounded_buffers`: bounded buffers under overload
4. :mod:`.shutdown`: graceful shutdown and signals
5. :mod:`.correlation`: correlation ids through context variables
6. :mod:`.checkpoints`: checkpoints and fairness
7. :mod:`.timers`: timer lateness per backend
8. :mod:`.testing_time`: a day of schedules in virtual time

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
