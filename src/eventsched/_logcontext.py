"""The correlation id of the event being handled, on every loguru record.

The library never configures loguru. An application that wants its own records inside
handlers and jobs to carry the event's correlation id installs :func:`correlation_patcher`
once, after any sinks are set up::

    from loguru import logger
    from eventsched import correlation_patcher

    logger.configure(patcher=correlation_patcher)

Then ``logger.info("charging card")`` inside a handler has ``record["extra"]
["correlation_id"]`` set to the event's id, and ``None`` outside any handler, so a sink
can always read the key. ``python -m eventsched`` installs it for its own sinks.

It is cheap enough for every record: one context-variable read, no allocation when no
event is being handled. A value bound explicitly (``logger.bind(correlation_id=...)``)
is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._events import current_event

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["correlation_patcher"]


def correlation_patcher(record: Record) -> None:
    """Loguru patcher: set ``extra["correlation_id"]`` to the handled event's id, or None."""
    extra = record["extra"]
    if "correlation_id" not in extra:
        event = current_event()
        extra["correlation_id"] = None if event is None else event.correlation_id
