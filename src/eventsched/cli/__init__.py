"""The ``eventsched`` command line: settings, log sinks, the demo and the subcommands.

Apart from the library: ``import eventsched`` loads none of this (nor pydantic-settings).
``main`` is the console script and what ``python -m eventsched`` runs.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
