"""The lesson registry and runner: what a lesson is, the list of them, how one is shown.

Each lesson module ends with a ``LESSON`` record (see ``_base.py``). The command line
(``python -m eventsched lesson NAME``) and the tests call the same ``demonstrate()``:
the tests assert the claim the command line prints.
"""

from __future__ import annotations

import importlib
import textwrap
import time
from typing import TextIO

import anyio

from ._base import Lesson, Outcome

__all__ = ["LESSONS", "Lesson", "Outcome", "find_lesson", "list_lessons", "run_lesson"]

#: The lesson modules, in the order a learner should read them.
_MODULES = (
    "task_groups",
    "starting_tasks",
    "exception_groups",
    "cancel_scopes",
    "level_triggered",
    "deadlines",
    "memory_streams",
    "bounded_buffers",
    "limiting_concurrency",
    "checkpoints",
    "threads",
    "correlation",
    "shutdown",
    "ctrl_c",
    "timers",
    "testing_time",
)


def _load() -> tuple[Lesson, ...]:
    lessons = []
    for module_name in _MODULES:
        module = importlib.import_module(f"{__package__}.{module_name}")
        lessons.append(module.LESSON)
    return tuple(lessons)


LESSONS: tuple[Lesson, ...] = _load()


def find_lesson(name: str) -> Lesson:
    """The lesson called ``name``, or numbered ``name`` in the list (from 1).

    :raises LookupError: no such lesson (the message lists them)
    """
    for lesson in LESSONS:
        if lesson.name == name:
            return lesson
    if name.isdecimal() and 1 <= int(name) <= len(LESSONS):
        return LESSONS[int(name) - 1]
    names = ", ".join(f"{n}. {lesson.name}" for n, lesson in enumerate(LESSONS, 1))
    raise LookupError(f"no lesson named or numbered {name!r}; the lessons are: {names}")


def list_lessons(out: TextIO) -> None:
    """Write the list of lessons, one line each, and how to run one."""
    width = max(len(lesson.name) for lesson in LESSONS)
    out.write("Lessons in structured concurrency (run one: eventsched lesson NAME or NUMBER):\n\n")
    for number, lesson in enumerate(LESSONS, 1):
        out.write(f"  {number:>2}. {lesson.name:<{width}}  {lesson.title}\n")
    out.write("\nEach runs on asyncio by default; add --backend trio to compare.\n")


def _paragraph(text: str, first: str = "  ", rest: str = "  ") -> str:
    return textwrap.fill(
        " ".join(text.split()), width=88, initial_indent=first, subsequent_indent=rest
    )


def run_lesson(lesson: Lesson, backend: str, out: TextIO) -> Outcome:
    """Show ``lesson`` on ``backend``: the idea, the demonstration, the outcome, the claim."""
    out.write(f"Teaches: {lesson.title} ({lesson.name}, on {backend})\n\n")
    out.write("The idea\n" + _paragraph(lesson.idea) + "\n\n")
    out.write("Running the demonstration...\n")
    out.flush()
    started = time.perf_counter()
    outcome = anyio.run(lesson.demonstrate, backend=backend)
    took = time.perf_counter() - started
    out.write(f"\nWhat was measured (in {took:.2f} s)\n")
    for line in outcome.figures():
        if line.startswith(" "):  # drawn, not prose (a tree): print it as it is
            out.write("  " + line + "\n")
        else:
            out.write(_paragraph(line, "  - ", "    ") + "\n")
    verdict = "HELD" if outcome.held else "DID NOT HOLD"
    out.write(f"\nThe claim ({verdict} on {backend})\n" + _paragraph(outcome.claim) + "\n\n")
    out.write("asyncio and trio\n" + _paragraph(lesson.differences) + "\n\n")
    out.write(f"Read the code: {lesson.path}\n")
    out.write(f"Verdict: {outcome.headline}: {verdict}\n")
    out.flush()
    return outcome
