"""An asyncio event loop in virtual time, so that schedule tests run exactly on asyncio too.

trio has ``MockClock(autojump_threshold=0)``; asyncio has no such thing. This loop's
clock starts at 0 and stands still while callbacks run; whenever the loop would block
waiting for its next timer with nothing ready, the clock jumps to that timer instead.
A day of schedules passes in a fraction of a second, with every fire time exact.

The caveat of trio's mock clock holds here too: a worker thread's work is invisible
to the loop, which may jump ahead meanwhile, so use async jobs in virtual time.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

import pytest

from conftest import TRIO_VIRTUAL

__all__ = ["BOTH_VIRTUAL", "VirtualTimeLoop"]


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer at all: only another thread can wake the loop; wait for it.
            return super().select(None)
        self._loop.virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock jumps to the next timer when it would block."""

    def __init__(self) -> None:
        self.virtual_now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.virtual_now


#: ``anyio_backend`` parameters: asyncio and trio, both in virtual time.
BOTH_VIRTUAL = [
    pytest.param(("asyncio", {"loop_factory": VirtualTimeLoop}), id="asyncio-virtual"),
    pytest.param(TRIO_VIRTUAL, id="trio-virtual"),
]
