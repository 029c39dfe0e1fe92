"""Lessons about signals: shutdown and ctrl-c (child processes, so marked slow)."""

from __future__ import annotations

import signal

import anyio
import pytest

from eventsched.lessons import find_lesson
from eventsched.lessons.ctrl_c import BACKENDS, CtrlCOutcome
from eventsched.lessons.shutdown import ShutdownOutcome

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LIMIT = 300.0


async def demonstrate(name: str) -> object:
    with anyio.fail_after(LIMIT):
        return await find_lesson(name).demonstrate()


async def test_shutdown(anyio_backend_name: str) -> None:
    """Drain, cancel after the grace period, the second signal."""
    outcome = await demonstrate("shutdown")
    assert isinstance(outcome, ShutdownOutcome)
    assert (outcome.drained_handled, outcome.drained_aborted) == (20, 0)
    assert (outcome.stuck_aborted, outcome.stuck_still_queued) == (1, 5)
    assert outcome.stuck_unaccounted == 0
    assert outcome.second_signal_exit_code == 130
    assert outcome.held


async def test_ctrl_c(anyio_backend_name: str) -> None:
    """Where Ctrl+C lands and what run() raises, per backend; SIGTERM skips cleanup."""
    outcome = await demonstrate("ctrl-c")
    assert isinstance(outcome, CtrlCOutcome)
    for backend in BACKENDS:
        plain = outcome.shape(backend, group=False)
        assert (plain.raised, plain.inside, plain.plain_except_catches) == (
            "KeyboardInterrupt",
            "-",
            True,
        )
    in_group = outcome.shape("asyncio", group=True)
    assert (in_group.raised, in_group.plain_except_catches) == ("KeyboardInterrupt", True)
    in_group = outcome.shape("trio", group=True)
    assert (in_group.raised, in_group.inside, in_group.plain_except_catches) == (
        "BaseExceptionGroup",
        "KeyboardInterrupt",
        False,
    )
    assert outcome.landed == {"asyncio": "await", "trio": "sync"}
    for backend in BACKENDS:
        assert outcome.sigterm_cleanup[(backend, "none")] == (False, -signal.SIGTERM)
        assert outcome.sigterm_cleanup[(backend, "receiver")] == (True, 0)
    assert outcome.held
