"""The real command, ``python -m eventsched``, run as a subprocess on both backends."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventsched import EXIT_CONFIG, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_WATCHDOG
from eventsched.cli._settings import Settings, env_name

pytestmark = pytest.mark.slow

BACKENDS = ["asyncio", "trio"]
STARTUP_LINES = [
    "Starting the scheduler application...",
    "Event handler started",
    "Application is running. Press Ctrl+C to stop.",
]
TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ \| ")
#: Bound on any single wait for the child (start-up imports take ~0.6 s).
WAIT = 15.0

# Runs the real CLI with a handler that blocks the event loop once shutdown begins,
# the case only the second signal or the watchdog can end.
STALL_APP = """
import sys, time
from loguru import logger
from eventsched import EventType
from eventsched.cli import main

def stall(scheduler):
    @scheduler.on(EventType.SHUTDOWN_REQUESTED)
    async def block_the_loop(event):
        logger.warning("stalling the event loop")
        time.sleep(60)

sys.exit(main(sys.argv[1:], customize=stall))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any eventsched setting, plus ``extra``."""
    names = {env_name(field) for field in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(extra)
    return env


class Child:
    """A running ``eventsched`` whose stderr lines are read as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], code: str = "") -> None:
        command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "eventsched"]
        self.proc = subprocess.Popen(
            [*command, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: list[str] = []
        self._cursor = 0  # lines before this one were matched by an earlier wait_for
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """Return the next line containing ``text``; fail after ``timeout`` seconds."""
        for index in range(self._cursor, len(self.lines)):
            if text in self.lines[index]:
                self._cursor = index + 1
                return self.lines[index]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                self.kill()
                pytest.fail(f"no line with {text!r} within {timeout}s; got {self.lines}")
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}) before {text!r}; got {self.lines}")
            self.lines.append(line)
            if text in line:
                self._cursor = len(self.lines)
                return line

    def finish(self, timeout: float = WAIT) -> tuple[int, list[str]]:
        """Wait for the exit; return the exit code and every line written."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"did not exit within {timeout}s; got {self.lines}")
        self._reader.join(timeout)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        self._close()
        return code, self.lines

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._reader.join(WAIT)
        self._close()

    def _close(self) -> None:
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)


@pytest.fixture
def run_child(tmp_path: Path) -> Iterator[type[Child]]:
    """Start children in a clean directory; kill any left running at the end."""
    children: list[Child] = []

    class Tracked(Child):
        def __init__(self, args: list[str], env: dict[str, str] | None = None, code: str = ""):
            super().__init__(args, tmp_path, clean_env() if env is None else env, code)
            children.append(self)

    yield Tracked
    for child in children:
        child.kill()


def run_once(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventsched", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def summary_line(lines: list[str]) -> str:
    found = [line for line in lines if "| Summary" in line]
    assert found, f"no summary in {lines}"
    return found[-1]


@pytest.mark.parametrize(
    ("backend", "signum"),
    [("asyncio", signal.SIGTERM), ("trio", signal.SIGTERM), ("trio", signal.SIGINT)],
)
def test_demo_starts_and_signal_exits_0_with_summary(
    run_child: type[Child], backend: str, signum: int
) -> None:
    """The demo logs the three start-up lines; a signal ends it with 0, a summary, none lost."""
    child = run_child(["--backend", backend, "--grace-period", "1"])
    child.wait_for(STARTUP_LINES[-1])
    child.wait_for("Received: Hello World")
    child.signal(signum)
    code, lines = child.finish()
    assert code == EXIT_OK
    startup = [line for line in lines if any(text in line for text in STARTUP_LINES)]
    assert len(startup) == 3, startup  # each once, in order
    assert all(text in line for text, line in zip(STARTUP_LINES, startup, strict=True))
    assert ", 0 unaccounted" in summary_line(lines)
    assert all(TEXT_RECORD.match(line) for line in lines), lines


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_names_the_backend(tmp_path: Path, backend: str) -> None:
    """The first record says which event loop runs: in its text and as a JSON field."""
    result = run_once(["--backend", backend, "--duration", "0.2", "--log-format", "json"], tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[0]["message"] == f"Starting the scheduler application... (backend {backend})"
    assert records[0]["backend"] == backend
    assert records[0]["correlation_id"] is None
    assert all("correlation_id" in record for record in records)
    summary = [r for r in records if r.get("component") == "summary"]
    assert [r["message"].split(":")[0] for r in summary] == ["Summary"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_duration_stops_by_itself(tmp_path: Path, backend: str) -> None:
    """``--duration`` ends the demo gracefully on its own, with exit code 0 and the summary."""
    result = run_once(["--backend", backend, "--duration", "1", "--grace-period", "1"], tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == EXIT_OK, lines
    assert any("duration of 1s reached" in line for line in lines)
    assert ", 0 unaccounted" in summary_line(lines)


BAD_CONFIGS = [
    pytest.param(
        {"LOG_LEVEL": "verbose"}, [], None, ["LOG_LEVEL", "'verbose'", "'DEBUG'"], id="level"
    ),
    pytest.param({"QUEUE_SIZE": "-5"}, [], None, ["QUEUE_SIZE", "'-5'", "greater than 0"], id="-5"),
    pytest.param({"QUEUE_SIZE": "abc"}, [], None, ["QUEUE_SIZE", "'abc'", "integer"], id="abc"),
    pytest.param(
        {"BACKEND": "curio"}, [], None, ["BACKEND", "'curio'", "'asyncio' or 'trio'"], id="curio"
    ),
    pytest.param(
        {}, ["--overflow", "sometimes"], None, ["OVERFLOW", "'sometimes'", "'block'"], id="flag"
    ),
    pytest.param({}, [], "QUEUE_SIZ=5\n", ["QUEUE_SIZ", ".env", "QUEUE_SIZE"], id="dotenv-key"),
    pytest.param(
        {},
        ["--env-file", "gone.env"],
        None,
        ["--env-file", "'gone.env'", "no such file"],
        id="gone",
    ),
    pytest.param({}, ["--no-such-flag"], None, ["--no-such-flag", "--help"], id="unknown-flag"),
    # argparse alone took the 5 for a subcommand: "invalid choice: '5'".
    pytest.param(
        {},
        ["--qeue-size", "5"],
        None,
        ["unknown flag --qeue-size", "did you mean --queue-size?"],
        id="misspelt-flag-with-value",
    ),
    pytest.param(
        {}, ["--queue_size", "5"], None, ["unknown flag --queue_size"], id="underscore-flag"
    ),
    # After a subcommand argparse said only "unrecognized arguments".
    pytest.param(
        {},
        ["bench", "--qick"],
        None,
        ["unknown flag --qick", "did you mean --quick?", "(see eventsched bench --help)"],
        id="misspelt-bench-flag",
    ),
    pytest.param(
        {},
        ["bench", "--latency-runs", "2"],
        None,
        ["unknown flag --latency-runs", "did you mean --latency-processes?"],
        id="renamed-bench-flag",
    ),
    pytest.param(
        {},
        ["lesson", "timers", "--backnd", "trio"],
        None,
        ["unknown flag --backnd", "did you mean --backend? allowed are: --backend ("],
        id="misspelt-lesson-flag",
    ),
    # Valid settings to the model, accepted and then ignored in a settings file.
    pytest.param(
        {},
        [],
        "ENV_FILE=other.env\n",
        ["setting ENV_FILE cannot be given in"],
        id="env-file-in-env",
    ),
    pytest.param({}, [], "BENCH=1\n", ["setting BENCH cannot be given in"], id="bench-in-env"),
    # Judged before start: one line, whatever the log level.
    pytest.param(
        {"LOG_LEVEL": "CRITICAL"},
        ["--state-file", "."],
        None,
        ["bad setting STATE_FILE (--state-file) = '.'", "is a directory"],
        id="state-file-directory",
    ),
    pytest.param(
        {"STATE_FILE": ""}, [], None, ["STATE_FILE", "must name a file"], id="state-file-empty"
    ),
    # It said "no such file" of a directory that exists.
    pytest.param(
        {},
        ["--env-file", "."],
        None,
        ["--env-file='.'", "is a directory"],
        id="env-file-directory",
    ),
    # A 100 KB value was echoed whole: the line is cut, the setting still named.
    pytest.param(
        {"DEMO_MESSAGE": "x" * 100_000},
        [],
        None,
        ["DEMO_MESSAGE (--demo-message) = 'xxx", "... (100002 characters)", "at most 1000"],
        id="long-value-cut",
    ),
]


@pytest.mark.parametrize(("env", "args", "dotenv", "expected"), BAD_CONFIGS)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], dotenv: str | None, expected: list[str]
) -> None:
    """A bad setting gives exit 2 and one stderr line: the setting, the value, what is allowed."""
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    result = run_once(args, tmp_path, clean_env(**env))
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("eventsched: ")
    for text in expected:
        assert text in lines[0]
    assert len(lines[0]) < 500, len(lines[0])
    assert "Traceback" not in result.stderr
    assert "Starting" not in result.stderr  # judged before anything starts


def test_dotenv_applies_env_beats_it_and_flags_beat_both(tmp_path: Path) -> None:
    """``.env`` values apply, the environment overrides them, and flags override both."""
    (tmp_path / ".env").write_text("QUEUE_SIZE=11\nWORKERS=3\nOVERFLOW=block\n")
    env = clean_env(WORKERS="2", OVERFLOW="drop_oldest")
    result = run_once(["--overflow", "reject", "--duration", "0.2"], tmp_path, env)
    assert result.returncode == EXIT_OK, result.stderr
    assert "(2 handler task(s), queue of 11, overflow reject)" in result.stderr


def test_env_file_flag_reads_the_named_file(tmp_path: Path) -> None:
    """``--env-file`` reads settings from the named file instead of ``./.env``."""
    (tmp_path / ".env").write_text("QUEUE_SIZE=11\n")
    (tmp_path / "other.env").write_text("QUEUE_SIZE=22\nLOG_LEVEL=warning\n")
    result = run_once(["--env-file", "other.env", "--duration", "0.2"], tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert "Starting" not in result.stderr  # LOG_LEVEL=warning from other.env
    assert "| Summary" not in result.stderr


def test_production_logs_json_unless_told_otherwise(tmp_path: Path) -> None:
    """``APP_ENV=production`` defaults to JSON logs; an explicit ``--log-format text`` wins."""
    env = clean_env(APP_ENV="production")
    result = run_once(["--duration", "0.2"], tmp_path, env)
    assert result.returncode == EXIT_OK, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[0]["message"].startswith("Starting the scheduler application...")
    result = run_once(["--duration", "0.2", "--log-format", "text"], tmp_path, env)
    assert all(TEXT_RECORD.match(line) for line in result.stderr.splitlines())


HOSTILE = "evil\n2024-01-01 00:00:00.000 | CRITICAL | forged\x1b[31m red {0.__init__} {} {"


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_event_data_makes_one_text_line(run_child: type[Child], backend: str) -> None:
    """Data with a newline, ANSI escapes and braces gives one escaped text line and no error."""
    child = run_child(["--backend", backend], clean_env(DEMO_MESSAGE=HOSTILE))
    line = child.wait_for("| Received: ")
    child.signal(signal.SIGTERM)
    code, lines = child.finish()
    assert code == EXIT_OK
    assert line.endswith(
        "Received: evil\\n2024-01-01 00:00:00.000 | CRITICAL | forged\\x1b[31m red "
        "{0.__init__} {} { [correlation_id=demo-123]"
    )
    assert all(TEXT_RECORD.match(line) for line in lines), lines
    assert not any("forged" in other for other in lines if other != line)
    assert not any("\x1b" in other for other in lines)
    assert not any("| ERROR |" in other or "Traceback" in other for other in lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_logs_parse_line_by_line(run_child: type[Child], backend: str) -> None:
    """With ``--log-format json`` every line is one JSON object, hostile data included."""
    child = run_child(
        ["--backend", backend, "--log-format", "json"], clean_env(DEMO_MESSAGE=HOSTILE)
    )
    child.wait_for('"Received: ')
    child.signal(signal.SIGTERM)
    code, lines = child.finish()
    assert code == EXIT_OK
    records = [json.loads(line) for line in lines]
    greeting = [r for r in records if r["message"].startswith("Received: ")]
    assert [r["message"] for r in greeting] == ["Received: " + HOSTILE]
    assert greeting[0]["correlation_id"] == "demo-123"
    summary = [r for r in records if r["message"].startswith("Summary:")]
    assert summary[0]["summary"]["unaccounted"] == 0
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(
    ("backend", "signum", "code"),
    [
        ("asyncio", signal.SIGTERM, EXIT_SIGTERM),
        ("trio", signal.SIGTERM, EXIT_SIGTERM),
        ("asyncio", signal.SIGINT, EXIT_SIGINT),
    ],
)
def test_second_signal_forces_exit_with_summary(
    run_child: type[Child], backend: str, signum: int, code: int
) -> None:
    """A second signal while a handler blocks the loop exits at once (130/143) with the summary."""
    child = run_child(["--backend", backend, "--grace-period", "30"], code=STALL_APP)
    child.wait_for("Application is running")
    child.signal(signum)
    child.wait_for("stalling the event loop")
    child.signal(signum)
    exit_code, lines = child.finish()
    assert exit_code == code
    assert "Summary (forced exit)" in summary_line(lines)
    assert any("  unaccounted" in line for line in lines)
    assert "job fire times missed" in lines[-1]  # the table's last row was written too


@pytest.mark.parametrize("backend", BACKENDS)
def test_watchdog_exit_writes_summary(run_child: type[Child], backend: str) -> None:
    """When shutdown cannot finish, the watchdog exits with 124 after writing the summary."""
    child = run_child(["--backend", backend, "--grace-period", "0.1"], code=STALL_APP)
    child.wait_for("Application is running")
    child.signal(signal.SIGTERM)
    exit_code, lines = child.finish()
    assert exit_code == EXIT_WATCHDOG
    assert any("Shutdown watchdog" in line for line in lines)
    assert "Summary (forced exit)" in summary_line(lines)
    assert any("  unaccounted" in line for line in lines)
    assert "job fire times missed" in lines[-1]  # the table's last row was written too
