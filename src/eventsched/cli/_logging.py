"""Log sinks for the application (the library itself never configures any).

Two formats, both written to stderr by a plain (never a coroutine) sink that loguru
flushes after every record, so ``os._exit`` paths lose nothing once they have called
``logger.complete()``:

* ``text``: the original demo's ``2024-01-01 12:00:00.000 | INFO | message``, plus
  `` [correlation_id=...]`` when the record was logged while an event was handled.
  Control characters (newlines, ANSI escapes, ...) in the message are shown escaped
  (``\\n``, ``\\x1b``), so data cannot forge a second record or repaint the terminal.
  Every line that begins with a timestamp is a record; a traceback follows its record
  on lines indented by four spaces.
* ``json``: one JSON object per line, pure ASCII (``json.dumps`` escapes every control
  character, and U+2028 too, which ``str.splitlines`` would split on).

Messages are never format templates here: loguru formats the library's templates with
their arguments before a sink sees the text, and these sinks only insert that text.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final, TextIO

from loguru import logger

from ._events import current_event

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["TEXT_FORMAT", "configure_logging", "escape"]

#: Shape of a text record (values are escaped before they are inserted).
TEXT_FORMAT: Final = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level}</level> | {extra[_text]}\n"
)

_SIMPLE_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Keys of ``record["extra"]`` that are ours or not worth a JSON field.
_PRIVATE_EXTRA: Final = frozenset({"_text", "_json"})


def escape(text: str) -> str:
    """Return ``text`` with every non-printable character written as an escape."""
    if text.isprintable():
        return text
    return "".join(
        c
        if c.isprintable()
        else _SIMPLE_ESCAPES.get(c) or c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def _add_correlation(record: Record) -> None:
    """Loguru patcher: the correlation id of the event being handled, if any."""
    extra = record["extra"]
    if "correlation_id" not in extra:
        event = current_event()
        if event is not None:
            extra["correlation_id"] = event.correlation_id


def _exception_lines(record: Record) -> list[str]:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return []
    text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    return text.rstrip("\n").split("\n")


def _text_format(record: Record) -> str:
    extra = record["extra"]
    text = escape(record["message"])
    correlation = extra.get("correlation_id")
    if correlation is not None:
        text += f" [correlation_id={escape(str(correlation))}]"
    for line in _exception_lines(record):
        text += "\n    " + escape(line)
    extra["_text"] = text
    return TEXT_FORMAT


def _json_default(value: object) -> str:
    return str(value)


def _json_format(record: Record) -> str:
    entry: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        if key not in _PRIVATE_EXTRA and key not in entry:
            entry[key] = value
    lines = _exception_lines(record)
    if lines:
        entry["exception"] = "\n".join(lines)
    record["extra"]["_json"] = json.dumps(entry, default=_json_default)
    return "{extra[_json]}\n"


def configure_logging(
    *, level: str, log_format: str, stream: TextIO | None = None, colorize: bool | None = None
) -> None:
    """Replace every sink with one ``text`` or ``json`` sink on ``stream`` (stderr).

    Colours (text only) default to whether the stream is a terminal. Enables the
    ``eventsched`` library's own records, which are off until an application asks.
    """
    out = sys.stderr if stream is None else stream
    logger.remove()
    logger.configure(patcher=_add_correlation)
    if log_format == "json":
        logger.add(out, level=level, format=_json_format, colorize=False, backtrace=False)
    else:
        if colorize is None:
            isatty = getattr(out, "isatty", None)
            colorize = bool(isatty and isatty())
        logger.add(out, level=level, format=_text_format, colorize=colorize, backtrace=False)
    logger.enable("eventsched")
