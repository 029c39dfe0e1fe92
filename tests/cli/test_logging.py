"""The application's log sinks: formats, escaping and correlation ids."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import anyio
import pytest
from loguru import logger

from eventsched import Event, EventScheduler
from eventsched._logging import configure_logging, escape

HOSTILE = "a\nb\r\x1b[31mred\u2028{0.__init__} {}"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A sink target; loguru is reset afterwards so other tests see no sinks of ours."""
    out = io.StringIO()
    yield out
    logger.remove()
    logger.configure(patcher=None)
    logger.disable("eventsched")


def test_escape_leaves_printable_text_alone() -> None:
    """Ordinary text, including non-ASCII letters, is unchanged."""
    assert escape("Hello World, café {x}") == "Hello World, café {x}"


def test_escape_control_characters() -> None:
    """Newlines, carriage returns, ESC and line separators become visible escapes."""
    assert escape(HOSTILE) == "a\\nb\\r\\x1b[31mred\\u2028{0.__init__} {}"


def test_text_sink_writes_one_line_per_record(stream: io.StringIO) -> None:
    """Hostile data passed as an argument makes exactly one text line, braces kept."""
    configure_logging(level="INFO", log_format="text", stream=stream)
    logger.info("got {}", HOSTILE)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" | INFO | got a\\nb\\r\\x1b[31mred\\u2028{0.__init__} {}")


def test_json_sink_is_ascii_one_object_per_line(stream: io.StringIO) -> None:
    """The JSON sink writes ASCII lines that parse back to the exact message."""
    configure_logging(level="INFO", log_format="json", stream=stream)
    logger.bind(component="x").info("got {}", HOSTILE)
    text = stream.getvalue()
    assert text.isascii()
    (line,) = text.splitlines()
    record = json.loads(line)
    assert record["message"] == "got " + HOSTILE
    assert record["component"] == "x"
    assert record["level"] == "INFO"


def test_traceback_lines_are_indented(stream: io.StringIO) -> None:
    """In text, a traceback follows its record on indented lines only."""
    configure_logging(level="INFO", log_format="text", stream=stream)
    try:
        int("bad\n2024-01-01 00:00:00.000 | INFO | forged")
    except ValueError:
        logger.exception("failed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("| ERROR | failed")
    assert rest
    assert all(line.startswith("    ") for line in rest)


@pytest.mark.anyio
async def test_correlation_id_of_the_handled_event(stream: io.StringIO) -> None:
    """A record logged inside a handler carries that event's correlation id."""
    configure_logging(level="INFO", log_format="json", stream=stream)
    scheduler = EventScheduler()

    @scheduler.on("ping")
    async def handle(event: Event) -> None:
        logger.info("handling")

    with anyio.fail_after(5):
        async with scheduler:
            await scheduler.emit("ping", {}, correlation_id="corr-1")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    handling = [r for r in records if r["message"] == "handling"]
    assert [r["correlation_id"] for r in handling] == ["corr-1"]
