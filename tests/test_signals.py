"""Real signals against the runtime in a subprocess (tests/programs/runtime.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventsched import EXIT_SIGINT, EXIT_SIGTERM, EXIT_WATCHDOG

PROGRAM = Path(__file__).parent / "programs" / "runtime.py"
BACKENDS = ["asyncio", "trio"]
SUMMARY = re.compile(r"Summary(?: \(forced exit\))?: (\d+) emitted, .* (\d+) unaccounted")


class Runtime:
    """The program running in a subprocess, with its stderr collected line by line."""

    def __init__(self, backend: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PROGRAM), "--backend", backend, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()  # blocks until READY (or the end)
        assert ready.strip() == "READY", self.stderr()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    def wait_for(self, fragment: str, timeout: float = 10) -> None:
        """Block until a stderr line contains ``fragment``."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(fragment in line for line in self.lines) or "<EOF>" in self.lines,
                timeout,
            )
        assert found, self.stderr()
        assert any(fragment in line for line in self.lines), self.stderr()

    def send(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        self._reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def summary(self) -> tuple[int, int]:
        match = SUMMARY.search(self.stderr())
        assert match, self.stderr()
        return int(match.group(1)), int(match.group(2))


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:  # never leave a process behind, whatever the test did
        if runtime.proc.poll() is None:
            runtime.proc.kill()
            runtime.proc.wait(5)
        runtime.close()


def start(runtimes: list[Runtime], backend: str, *args: str) -> Runtime:
    runtime = Runtime(backend, *args)
    runtimes.append(runtime)
    return runtime


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_shuts_down_gracefully(runtimes: list[Runtime], backend: str, signum: int) -> None:
    """SIGTERM or SIGINT: exit 0, a summary with zero unaccounted, and no traceback."""
    runtime = start(runtimes, backend, "--events", "50")
    runtime.send(signum)
    assert runtime.wait(15) == 0, runtime.stderr()
    emitted, unaccounted = runtime.summary()
    assert emitted == 51  # the events and SHUTDOWN_REQUESTED
    assert unaccounted == 0
    assert f"Received {signal.Signals(signum).name}" in runtime.stderr()
    assert "Traceback" not in runtime.stderr()
    assert "KeyboardInterrupt" not in runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, EXIT_SIGTERM), (signal.SIGINT, EXIT_SIGINT)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_second_signal_during_a_slow_drain_exits_at_once(
    runtimes: list[Runtime], backend: str, signum: int, code: int
) -> None:
    """A second signal while the queue drains ends the process promptly with 130/143."""
    # 20 events at 0.2 s each: the drain would take 4 s, within a 30 s grace period.
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30")
    runtime.send(signum)
    runtime.wait_for("Shutting down")
    sent = time.monotonic()
    runtime.send(signum)
    assert runtime.wait(10) == code, runtime.stderr()
    assert time.monotonic() - sent < 2.0
    assert "Second signal" in runtime.stderr()
    assert "Summary (forced exit)" in runtime.stderr()
    assert runtime.summary()[1] == 0, runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_storm_of_signals_never_kills_by_default_action(
    runtimes: list[Runtime], backend: str
) -> None:
    """200 signals in a row end the process through our handlers, never the default action."""
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30")
    for index in range(200):
        runtime.send(signal.SIGTERM if index % 2 else signal.SIGINT)
    code = runtime.wait(15)
    assert code in (0, EXIT_SIGINT, EXIT_SIGTERM), (code, runtime.stderr())
    assert "Traceback" not in runtime.stderr()
    assert runtime.summary()[1] == 0, runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_handler_awaiting_forever_is_cancelled_after_the_grace_period(
    runtimes: list[Runtime], backend: str
) -> None:
    """Awaiting forever does not hold shutdown: cancelled at the grace period, exit 0."""
    runtime = start(runtimes, backend, "--mode", "hang-await", "--grace", "0.5")
    sent = time.monotonic()
    runtime.send(signal.SIGTERM)
    assert runtime.wait(10) == 0, runtime.stderr()
    assert time.monotonic() - sent < 0.5 + 2.0
    assert "aborted in flight    1" in runtime.stderr()
    assert runtime.summary()[1] == 0, runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["hang-shielded", "hang-blocking"])
def test_the_watchdog_bounds_a_handler_that_cannot_be_cancelled(
    runtimes: list[Runtime], backend: str, mode: str
) -> None:
    """A shielded or loop-blocking handler: the watchdog exits 124 at grace + margin."""
    grace, margin = 0.5, 1.0
    runtime = start(
        runtimes, backend, "--mode", mode, "--grace", str(grace), "--margin", str(margin)
    )
    sent = time.monotonic()
    runtime.send(signal.SIGTERM)
    assert runtime.wait(10) == EXIT_WATCHDOG, runtime.stderr()
    elapsed = time.monotonic() - sent
    assert grace + margin <= elapsed < grace + margin + 2.0
    assert "Shutdown watchdog" in runtime.stderr()
    assert "Summary (forced exit)" in runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_command_does_not_wait_for_a_sync_handler_abandoned_at_shutdown(
    backend: str,
) -> None:
    """A sync handler stuck in its thread past the grace period: exit 0, promptly.

    Without this the interpreter waits at exit for the thread (on asyncio anyio's
    worker threads are not daemon threads), here for a minute after the summary.
    """
    program = Path(__file__).parent / "programs" / "cli_stuck_thread.py"
    proc = subprocess.Popen(
        [sys.executable, str(program), "--backend", backend, "--grace-period", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # the demo logs a line a second at least: never stuck
            lines.append(line)
            if "Application is running" in line:
                break
        assert any("Application is running" in line for line in lines), "".join(lines)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert elapsed < 0.5 + 5, text
    assert "still run in worker threads: exiting without waiting" in text, text
    assert "Traceback" not in text
