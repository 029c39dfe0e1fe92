"""Child processes for the lessons about signals: start one, read its lines.

Signals are about a whole process, so the lessons that send them (``shutdown``,
``ctrl-c``) run small programs in child processes and read what they print.
"""

from __future__ import annotations

import signal
import sys

import anyio
import anyio.abc

__all__ = ["CHILD_WAIT", "LineReader", "signal_child"]

#: Bound on any wait for a child process, in seconds: generous, because a child starts
#: many times slower on a loaded machine than on a quiet one.
CHILD_WAIT = 60.0


class LineReader:
    """Reads a child process's stdout one line at a time."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self._buffer = b""

    async def readline(self) -> str:
        """The next line; ``""`` once the child has closed its stdout."""
        while b"\n" not in self._buffer:
            try:
                self._buffer += await self._stdout.receive()
            except anyio.EndOfStream:
                line, self._buffer = self._buffer, b""
                return line.decode()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


async def signal_child(
    program: str, *args: str, signum: signal.Signals = signal.SIGINT
) -> tuple[list[str], int]:
    """Run ``program``, send ``signum`` once it prints ``ready``; its later lines, exit code."""
    command = [sys.executable, "-c", program, *args]
    with anyio.fail_after(CHILD_WAIT):
        async with await anyio.open_process(command, stderr=None) as process:
            stdout = LineReader(process)
            first = await stdout.readline()
            if first != "ready":
                raise RuntimeError(f"child did not get ready: {first!r}")
            process.send_signal(signum)
            lines = []
            while line := await stdout.readline():
                lines.append(line)
            code = await process.wait()
    return lines, code
