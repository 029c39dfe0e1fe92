"""A signal that arrives while ``run()`` sets up its signal receiver (a subprocess,
tests/programs/swap_signal.py): counted as the first, so a second one forces the exit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eventsched import EXIT_SIGINT

PROGRAM = Path(__file__).parent / "programs" / "swap_signal.py"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_signal_while_the_receiver_is_set_up_is_the_first(backend: str) -> None:
    """It reached the receiver alone, uncounted: the second SIGINT was taken for the
    first and the drain went on for its 30 s grace period."""
    proc = subprocess.Popen(
        [sys.executable, str(PROGRAM), "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "DRAINING\n"  # the first SIGINT was heard
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)  # at once; the drain would take 30 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_SIGINT, err[-2000:]
