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
  character, and U+2028 too, which ``str.splitlines`` would split on). Every record
  has a ``correlation_id`` key (null outside a handler or job). The summary is one
  record whose ``summary`` key holds the figures: the table rows that the text format
  shows after it are left out, as they repeat those figures as text.

A traceback shows the frames from the first one outside the library's machinery
(eventsched itself, anyio, trio, asyncio): where a job or handler failed in the user's
code, the call path through the scheduler that led there is noise. ``LOG_LEVEL=DEBUG``
shows every frame.

Messages are never format templates here: loguru formats the library's templates with
their arguments before a sink sees the text, and these sinks only insert that text.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TextIO

from loguru import logger

from .._logcontext import correlation_patcher

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


def _machinery() -> tuple[str, ...]:
    """Path prefixes of the code a user's job or handler is called through."""
    library = Path(__file__).resolve().parent.parent  # src/eventsched
    prefixes = [str(library) + os.sep]
    for name in ("anyio", "trio", "asyncio", "concurrent", "threading", "contextlib"):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if file:
            path = Path(file).resolve()
            prefixes.append(str(path.parent) + os.sep if path.stem == "__init__" else str(path))
    return tuple(prefixes)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame outside the machinery (all of it if there is none)."""
    machinery = _machinery()
    # The demo's jobs live in the cli package: they are the user's code here.
    cli = str(Path(__file__).resolve().parent) + os.sep
    current = tb
    while current is not None:
        name = str(Path(current.tb_frame.f_code.co_filename).resolve())
        if name.startswith(cli) or not name.startswith(machinery):
            return current
        current = current.tb_next
    return tb


def _exception_lines(record: Record, full: bool) -> list[str]:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return []
    tb = exc.traceback if full else _user_frames(exc.traceback)
    text = "".join(traceback.format_exception(exc.type, exc.value, tb))
    return text.rstrip("\n").split("\n")


def _text_format(record: Record, full: bool = False) -> str:
    extra = record["extra"]
    text = escape(record["message"])
    correlation = extra.get("correlation_id")
    if correlation is not None:
        text += f" [correlation_id={escape(str(correlation))}]"
    for line in _exception_lines(record, full):
        text += "\n    " + escape(line)
    extra["_text"] = text
    return TEXT_FORMAT


def _json_default(value: object) -> str:
    return str(value)


def _json_format(record: Record, full: bool = False) -> str:
    entry: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        if key not in _PRIVATE_EXTRA and key not in entry:
            entry[key] = value
    lines = _exception_lines(record, full)
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
    full = level == "DEBUG"
    logger.remove()
    logger.configure(patcher=correlation_patcher)
    if log_format == "json":
        format_, filter_, colours = _json_format, _not_a_summary_row, False
    else:
        format_, filter_ = _text_format, None
        if colorize is None:
            isatty = getattr(out, "isatty", None)
            colorize = bool(isatty and isatty())
        colours = colorize
    logger.add(
        out,
        level=level,
        format=lambda record: format_(record, full),
        filter=filter_,
        colorize=colours,
        backtrace=False,
        diagnose=False,
    )
    logger.enable("eventsched")


def _not_a_summary_row(record: Record) -> bool:
    # The summary's headline carries the figures (``extra["summary"]``); the rows
    # after it, bound to the same component, repeat them as a table for text logs.
    extra = record["extra"]
    return not (extra.get("component") == "summary" and "summary" not in extra)
