"""What a lesson is: a :class:`Lesson` record, and the :class:`Outcome` of its demonstration.

A lesson is a module in this package with three parts, read top to bottom:

1. a docstring that tells the idea;
2. an ``async def demonstrate()`` that runs on whichever backend anyio was started
   with and returns what it measured, as a frozen record (an :class:`Outcome`);
3. a ``LESSON`` record (:class:`Lesson`) that names it for the command line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Lesson", "Outcome"]


class Outcome(Protocol):
    """What every lesson's ``demonstrate()`` returns (each adds its own measured fields)."""

    @property
    def backend(self) -> str:
        """The backend the demonstration ran on: ``asyncio`` or ``trio``."""
        ...

    @property
    def claim(self) -> str:
        """The claim, in one or two sentences."""
        ...

    @property
    def held(self) -> bool:
        """Whether the measurements bear the claim out."""
        ...

    @property
    def headline(self) -> str:
        """The claim cut to one line, with the figure that decides it (the verdict line)."""
        ...

    def figures(self) -> list[str]:
        """The measured outcome, one readable line each."""
        ...


@dataclass(frozen=True, slots=True)
class Lesson:
    """One lesson, as the registry lists it."""

    name: str
    """What to type: ``python -m eventsched lesson NAME``."""
    title: str
    """What the lesson teaches, in one line (the list, and the first line of a run)."""
    idea: str
    """The idea in a few sentences, printed before the demonstration."""
    demonstrate: Callable[[], Awaitable[Outcome]]
    """Runs the demonstration on the current backend."""
    differences: str
    """Where asyncio and trio differ for this idea (or that they do not)."""

    @property
    def module(self) -> str:
        """Dotted name of the lesson's module."""
        return self.demonstrate.__module__

    @property
    def path(self) -> Path:
        """The file to read."""
        return Path(__file__).with_name(self.module.rsplit(".", 1)[-1] + ".py")
