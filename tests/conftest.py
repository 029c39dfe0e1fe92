"""Every async test runs on asyncio and on trio (see the ``anyio_backend`` fixture)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loguru import logger
from trio.testing import MockClock

TRIO_VIRTUAL = "trio-virtual"

# Explicit rather than anyio's default (every installed backend), so that the
# parametrisation is visible and stays the same when uvloop is installed.
BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    if request.param == TRIO_VIRTUAL:
        # A fresh clock per test: a MockClock carries its virtual time from run to run.
        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    backend: tuple[str, dict[str, object]] = request.param
    return backend


# For time-based tests: asyncio in real time, trio in virtual time (a MockClock that
# jumps ahead whenever every task waits). Use with
# ``@pytest.mark.parametrize("anyio_backend", VIRTUAL_TIME, indirect=True)``.
VIRTUAL_TIME = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(TRIO_VIRTUAL, id="trio-virtual"),
]


@pytest.fixture
def unit(anyio_backend: tuple[str, dict[str, object]]) -> float:
    """One interval of a time-based test: 1 s of virtual time on trio-virtual (exact),
    50 ms of real time elsewhere (short, with generous bounds in the assertions)."""
    return 1.0 if "clock" in anyio_backend[1] else 0.05


@contextlib.contextmanager
def logging_to(sink: Callable[[Any], None], **options: Any) -> Iterator[None]:
    """eventsched's logging on (as an application has it), into ``sink`` (loguru's
    ``logger.add`` options: level, filter, format), and off again after."""
    handle = logger.add(sink, **options)
    logger.enable("eventsched")
    try:
        yield
    finally:
        logger.disable("eventsched")
        logger.remove(handle)


@pytest.fixture
def job_log() -> Iterator[list[str]]:
    """The messages the job scheduler logs during the test."""
    messages: list[str] = []
    with logging_to(
        lambda message: messages.append(message.record["message"]),
        filter=lambda record: record["extra"].get("component") == "jobs",
        level="DEBUG",
    ):
        yield messages
