"""The ``lesson`` subcommand's arguments: a pydantic model that pydantic-settings parses.

Only parsing and reporting live here; the lessons are the modules of this package and
:mod:`._registry` runs them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from pydantic_settings import CliPositionalArg

from .._exit import EXIT_CONFIG as EXIT_USAGE
from .._exit import EXIT_ERROR as EXIT_CLAIM_FAILED  # the claim did not hold (this run)
from .._exit import EXIT_OK

if TYPE_CHECKING:
    from ..cli._settings import Settings

__all__ = ["LessonCommand"]


class LessonCommand(BaseModel):
    """List the concurrency lessons, or run one: eventsched lesson NAME|NUMBER [--backend trio]."""

    # Defaults are words, not None: pydantic-settings appends "(default: X)" to every
    # help line, and "(default: None)" after our own explanation said it twice.
    name: CliPositionalArg[str] = Field(
        "list", description="the lesson to run, by name or by its number in the list"
    )
    backend: Literal["asyncio", "trio", "shared"] = Field(
        "shared", description="event loop to run the lesson on; shared: the --backend before it"
    )

    def run(self, settings: Settings) -> int:
        """List the lessons, or run one; exit 1 if its claim did not hold, 2 if unknown."""
        from loguru import logger

        from ._registry import find_lesson, list_lessons, run_lesson

        if self.name == "list":
            list_lessons(sys.stdout)
            return EXIT_OK
        try:
            lesson = find_lesson(self.name)
        except LookupError as error:
            print(f"eventsched lesson: {error}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        if settings.log_level != "DEBUG":
            # The lesson prints what matters; the library's own records would drown it.
            logger.disable("eventsched")
        backend = settings.backend if self.backend == "shared" else self.backend
        outcome = run_lesson(lesson, backend, sys.stdout)
        return EXIT_OK if outcome.held else EXIT_CLAIM_FAILED
