"""The application's log sinks: formats, escaping and correlation ids."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from loguru import logger

import eventsched
from eventsched import Event, EventScheduler, correlation_patcher
from eventsched.cli._logging import configure_logging, escape

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


async def log_in_a_handler(message: str, correlation_id: str) -> None:
    """Handle one event whose handler logs ``message`` with the user's own logger."""
    scheduler = EventScheduler()

    @scheduler.on("ping")
    async def handle(event: Event) -> None:
        logger.info(message)

    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("ping", {}, correlation_id=correlation_id)


@pytest.mark.anyio
async def test_correlation_id_of_the_handled_event(stream: io.StringIO) -> None:
    """A record logged inside a handler carries that event's correlation id."""
    configure_logging(level="INFO", log_format="json", stream=stream)
    await log_in_a_handler("handling", "corr-1")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    handling = [r for r in records if r["message"] == "handling"]
    assert [r["correlation_id"] for r in handling] == ["corr-1"]


def test_json_records_outside_a_handler_have_a_null_correlation_id(stream: io.StringIO) -> None:
    """Every JSON record has the ``correlation_id`` key the docs list: null outside handlers."""
    configure_logging(level="INFO", log_format="json", stream=stream)
    logger.info("outside")
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "correlation_id" in record
    assert record["correlation_id"] is None


@pytest.mark.anyio
async def test_correlation_patcher_for_library_users() -> None:
    """An application's own sink gets the correlation id by installing the exported patcher."""
    records: list[dict[str, object]] = []
    logger.remove()
    logger.configure(patcher=correlation_patcher)
    logger.add(lambda message: records.append(dict(message.record["extra"])), format="{message}")
    try:
        await log_in_a_handler("inside", "corr-7")
        logger.info("outside")
    finally:
        logger.remove()
        logger.configure(patcher=None)
    assert [r["correlation_id"] for r in records] == ["corr-7", None]


def user_code_that_fails() -> None:
    raise RuntimeError("the user's own failure")


@pytest.mark.parametrize(("level", "library_frames"), [("INFO", False), ("DEBUG", True)])
@pytest.mark.anyio
async def test_handler_failure_shows_the_users_frames(
    stream: io.StringIO, level: str, library_frames: bool
) -> None:
    """A failing handler's traceback starts at the user's code; DEBUG shows every frame."""
    configure_logging(level=level, log_format="text", stream=stream)
    scheduler = EventScheduler()

    @scheduler.on("ping")
    async def handle(event: Event) -> None:
        user_code_that_fails()

    with anyio.fail_after(10):
        async with scheduler:
            await scheduler.emit("ping", {})
    text = stream.getvalue()
    assert "RuntimeError: the user's own failure" in text
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
    assert frames, text
    # Trimmed, the traceback starts at the handler; in full, at the scheduler's worker.
    assert ("in handle" in frames[0]) != library_frames, frames
    assert any("in user_code_that_fails" in frame for frame in frames)
    library = str(Path(eventsched.__file__).parent) + os.sep
    assert any(library in frame for frame in frames) == library_frames, frames


@pytest.mark.anyio
async def test_json_summary_is_one_record(stream: io.StringIO) -> None:
    """In JSON the summary is one record holding the figures, not also ~20 rows of text."""
    configure_logging(level="INFO", log_format="json", stream=stream)
    scheduler = EventScheduler()
    scheduler.on("ping")(lambda event: None)
    with anyio.fail_after(10):
        async with scheduler:  # the summary is logged on the way out
            await scheduler.emit("ping", {})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    summary = [r for r in records if r.get("component") == "summary"]
    assert len(summary) == 1, summary
    assert summary[0]["message"].startswith("Summary: ")
    assert summary[0]["summary"]["handled"] == scheduler.statistics().handled, summary
