"""Real signals against the runtime in a subprocess (tests/programs/runtime.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from eventsched import EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGQUIT, EXIT_SIGTERM, EXIT_WATCHDOG
from eventsched._signals import COPY_WINDOW

PROGRAM = Path(__file__).parent / "programs" / "runtime.py"
BACKENDS = ["asyncio", "trio"]
SUMMARY = re.compile(r"Summary(?: \(forced exit\))?: (\d+) emitted, .* (\d+) unaccounted")


class Runtime:
    """The program running in a subprocess, with its stderr collected line by line."""

    def __init__(self, backend: str, *args: str, launcher: Sequence[str] = ()) -> None:
        # Under a launcher (uv run), in a session of its own: a group signal then
        # reaches the launcher and Python, as a terminal's or systemd's does.
        self.proc = subprocess.Popen(
            [*launcher, sys.executable, str(PROGRAM), "--backend", backend, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=bool(launcher),
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

    def wait_for_after(self, first: str, fragment: str, timeout: float = 10) -> None:
        """Block until a stderr line contains ``fragment``, after one containing ``first``."""

        def seen() -> bool:
            start = next((i for i, line in enumerate(self.lines) if first in line), None)
            return start is not None and any(fragment in line for line in self.lines[start:])

        with self._changed:
            found = self._changed.wait_for(lambda: seen() or "<EOF>" in self.lines, timeout)
        assert found, self.stderr()
        assert seen(), self.stderr()

    def send(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def send_to_group(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

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


def start(
    runtimes: list[Runtime], backend: str, *args: str, launcher: Sequence[str] = ()
) -> Runtime:
    runtime = Runtime(backend, *args, launcher=launcher)
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


# -- under uv run: one signal reaches Python twice ----------------------------------------

UV = shutil.which("uv")
UV_RUN = [UV or "uv", "run", "--no-sync", "--"]
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not on PATH")


@needs_uv
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_one_group_signal_under_uv_run_is_one_signal(
    runtimes: list[Runtime], backend: str, signum: int
) -> None:
    """A signal to uv's process group (a terminal, systemd, docker stop): drain, exit 0.

    uv forwards its copy to Python (SIGTERM at once, SIGINT ~200 ms later without a
    terminal); the copy must not count as a second signal during the 4 s drain.
    """
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30", launcher=UV_RUN)
    runtime.send_to_group(signum)
    assert runtime.wait(30) == 0, runtime.stderr()
    assert "Second signal" not in runtime.stderr()
    emitted, unaccounted = runtime.summary()
    assert emitted == 21  # the 20 events and SHUTDOWN_REQUESTED, every one handled
    assert unaccounted == 0
    assert "handled              21" in runtime.stderr()


@needs_uv
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, EXIT_SIGTERM), (signal.SIGINT, EXIT_SIGINT)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_real_second_press_under_uv_run_still_forces_the_exit(
    runtimes: list[Runtime], backend: str, signum: int, code: int
) -> None:
    """A second group signal after the copy window ends the process with 130/143."""
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30", launcher=UV_RUN)
    first = time.monotonic()
    runtime.send_to_group(signum)
    runtime.wait_for("Shutting down")
    # A press later than the window in which a repeat is taken as uv's copy: this wait
    # is what the test is about (the second press), not a stand-in for a sync point.
    time.sleep(max(0.0, first + COPY_WINDOW + 0.3 - time.monotonic()))
    runtime.send_to_group(signum)
    assert runtime.wait(10) == code, runtime.stderr()
    assert "Second signal" in runtime.stderr()
    assert runtime.stderr().count("Summary") == 1, runtime.stderr()


# -- a second signal under load --------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log_delay", ["0", "0.03"], ids=["fast-log", "slow-log"])
def test_a_second_signal_under_load_ends_handling_at_once_with_one_summary(
    runtimes: list[Runtime], backend: str, log_delay: str
) -> None:
    """A busy handler (~100 us per event, holding the loop): the second SIGINT exits 130.

    The handlers stop at once: none writes its TICK after "exiting now", even while a
    slow log destination makes the forced summary take a while; the forced summary is
    the only one; with a fast log the process ends within half a second (the drain
    alone would take about 4 s).
    """
    runtime = start(
        runtimes,
        backend,
        "--mode", "busy", "--events", "40000", "--queue", "40000", "--grace", "60",
        "--log-delay", log_delay,
    )  # fmt: skip
    runtime.send(signal.SIGINT)
    runtime.wait_for("Shutting down")
    runtime.wait_for_after("Shutting down", "TICK")  # the drain is under way
    sent = time.monotonic()
    runtime.send(signal.SIGINT)
    assert runtime.wait(10) == EXIT_SIGINT, runtime.stderr()
    elapsed = time.monotonic() - sent
    text = runtime.stderr()
    exiting = next(i for i, line in enumerate(runtime.lines) if "exiting now" in line)
    assert "TICK" not in runtime.lines[exiting:], text  # no handler ran after that line
    assert text.count("Summary") == 1, text
    assert "Summary (forced exit)" in text
    assert runtime.summary()[1] == 0, text
    if log_delay == "0":
        assert elapsed < 0.5, text


# -- per signal ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_sighup_is_a_graceful_stop(runtimes: list[Runtime], backend: str) -> None:
    """SIGHUP (the terminal closed, or a service manager's stop): drain, summary, exit 0."""
    runtime = start(runtimes, backend, "--events", "50")
    runtime.send(signal.SIGHUP)
    assert runtime.wait(15) == 0, runtime.stderr()
    assert "Received SIGHUP: shutting down gracefully" in runtime.stderr()
    assert runtime.summary() == (51, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sighup_then_a_second_signal_forces_the_exit(runtimes: list[Runtime], backend: str) -> None:
    """After a SIGHUP, a second SIGHUP during the drain exits with 129."""
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30")
    runtime.send(signal.SIGHUP)
    runtime.wait_for("Shutting down")
    runtime.send(signal.SIGHUP)
    assert runtime.wait(10) == EXIT_SIGHUP, runtime.stderr()
    assert "Summary (forced exit)" in runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigquit_exits_at_once_with_the_summary(runtimes: list[Runtime], backend: str) -> None:
    """SIGQUIT (Ctrl+\\) means quit now: exit 131 with the forced summary, no drain."""
    runtime = start(runtimes, backend, "--mode", "slow-drain", "--grace", "30")
    runtime.send(signal.SIGQUIT)
    assert runtime.wait(10) == EXIT_SIGQUIT, runtime.stderr()
    assert "SIGQUIT received: exiting now with code 131" in runtime.stderr()
    assert "Summary (forced exit)" in runtime.stderr()
    assert runtime.summary()[1] == 0, runtime.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigusr1_and_sigusr2_are_logged_and_ignored(runtimes: list[Runtime], backend: str) -> None:
    """SIGUSR1/2 do not kill (their default action): logged, then SIGTERM stops as usual."""
    runtime = start(runtimes, backend, "--events", "5")
    runtime.send(signal.SIGUSR1)
    runtime.wait_for("Received SIGUSR1: ignored")
    runtime.send(signal.SIGUSR2)
    runtime.wait_for("Received SIGUSR2: ignored")
    runtime.send(signal.SIGTERM)
    assert runtime.wait(15) == 0, runtime.stderr()
    assert runtime.summary() == (6, 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_command_still_imports_stops_it_gracefully(
    backend: str, signum: int
) -> None:
    """A signal before the package has imported anyio: no traceback, no silent death.

    The command line is held in its first imports; the signal is kept and honoured as
    a graceful stop once the scheduler runs: a summary and exit 0.
    """
    program = Path(__file__).parent / "programs" / "early_signal.py"
    proc = subprocess.Popen(
        [sys.executable, str(program), "--backend", backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "IMPORTING"
        proc.send_signal(signum)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"Received {signal.Signals(signum).name}: shutting down" in out
    assert "Traceback" not in out
    assert "KeyboardInterrupt" not in out
    match = SUMMARY.search(out)
    assert match, out
    assert match.group(2) == "0"


# -- a handler or job raising a BaseException ---------------------------------------------


def run_user_exit(backend: str, where: str, kind: str) -> tuple[int, str]:
    program = Path(__file__).parent / "programs" / "user_exit.py"
    proc = subprocess.Popen(
        [sys.executable, str(program), "--backend", backend, "--where", where, "--kind", kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # hung: the failure this guards against
            proc.kill()
            proc.communicate()
    return proc.returncode, out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["handler", "job"])
@pytest.mark.parametrize(
    ("kind", "code"),
    # An uncaught KeyboardInterrupt ends Python by SIGINT, as Ctrl+C does (a shell: 130).
    [("exit", 3), ("interrupt", -signal.SIGINT)],
    ids=["SystemExit", "KeyboardInterrupt"],
)
def test_systemexit_or_keyboardinterrupt_from_user_code_stops_gracefully_with_its_code(
    backend: str, where: str, kind: str, code: int
) -> None:
    """SystemExit(3) exits 3, KeyboardInterrupt as Ctrl+C does, both backends, after a drain.

    The call counts as failed; the scheduler stops gracefully and run() raises the
    original again once everything is accounted for (no hang on asyncio).
    """
    returncode, out = run_user_exit(backend, where, kind)
    assert returncode == code, out
    assert out.count("Summary") == 1, out
    assert "Summary (forced exit)" not in out
    assert "raised by a handler or job" in out  # the shutdown's reason
    assert "UserBaseExceptionError" in out
    match = SUMMARY.search(out)
    assert match, out
    assert match.group(2) == "0", out
    failed = (
        "failed               1 (1 handler"
        if where == "handler"
        else "failed               1 (0 timed"
    )
    assert failed in out, out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["handler", "job"])
@pytest.mark.parametrize("kind", ["generator", "own"])
def test_other_base_exceptions_from_user_code_are_counted_failures(
    backend: str, where: str, kind: str
) -> None:
    """GeneratorExit or a user's own BaseException: a failure like any other; it goes on."""
    returncode, out = run_user_exit(backend, where, kind)
    assert returncode == 0, out
    assert "RETURNED" in out
    assert "the program saw the failure" in out  # stopped by the program, not the error
    assert "UserBaseExceptionError" in out
    failed = (
        "failed               1 (1 handler"
        if where == "handler"
        else "failed               1 (0 timed"
    )
    assert failed in out, out


@needs_uv
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_readme_command_under_uv_run_exits_0_on_one_group_signal(signum: int) -> None:
    """``uv run python -m eventsched`` and one group signal: a summary, exit 0.

    The demo stops within milliseconds, so uv's copy of SIGINT (~200 ms later) finds
    the process already exiting: it must not kill it then.
    """
    proc = subprocess.Popen(
        [*UV_RUN, sys.executable, "-m", "eventsched"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # the demo logs a line a second at least: never stuck
            lines.append(line)
            if "Application is running" in line:
                break
        os.killpg(proc.pid, signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert text.count("Summary") == 1, text
    assert "Second signal" not in text
