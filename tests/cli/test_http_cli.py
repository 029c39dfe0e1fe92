"""``--http`` / ``HTTP_ADDRESS`` and ``HTTP_TOKEN`` on the real command, as a subprocess."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventsched import EXIT_CONFIG, EXIT_OK
from eventsched.cli._settings import Settings, env_name

pytestmark = pytest.mark.slow

BACKENDS = ["asyncio", "trio"]
#: Bound on any single wait for the child (start-up imports take ~1 s, more under load).
WAIT = 30.0
URL_LINE = re.compile(r"HTTP service on http://127\.0\.0\.1:(\d+)/")
TOKEN = "s3cret-token-never-shown-0123456789"

APP = """
from eventsched import EventScheduler
scheduler = EventScheduler()

async def tick():
    pass

scheduler.add_job(tick, "interval", seconds=0.2, id="tick")
"""


def clean_env(**extra: str) -> dict[str, str]:
    names = {env_name(field) for field in Settings.model_fields} | {"HTTP"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(extra)
    return env


class Child:
    """A running ``python -m eventsched`` whose stderr lines are read as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eventsched", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern.pattern!r} within {WAIT}s: {self.lines}")
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}) before {pattern.pattern!r}: {self.lines}")
            self.lines.append(line)
            if found := pattern.search(line):
                return found

    def finish(self) -> tuple[int, list[str]]:
        code = self.proc.wait(timeout=WAIT)
        self._reader.join(WAIT)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return code, self.lines

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        if self.proc.stdout is not None:
            self._reader.join(WAIT)
            self.proc.stdout.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[type[Child]]:
    """Start children in a directory holding ``myapp.py``; kill any left at the end."""
    (tmp_path / "myapp.py").write_text(APP)
    children: list[Child] = []

    class Tracked(Child):
        def __init__(self, args: list[str], **env: str) -> None:
            super().__init__(args, tmp_path, clean_env(**env))
            children.append(self)

    yield Tracked
    for child in children:
        child.kill()


def get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as reply:
        return reply.status, reply.read().decode()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    except ConnectionRefusedError:
        return True
    return False


def run_once(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventsched", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.mark.parametrize(
    ("backend", "command"),
    [
        ("asyncio", []),
        ("trio", []),
        ("asyncio", ["run", "myapp:scheduler"]),
        ("trio", ["run", "myapp:scheduler"]),
    ],
)
def test_metrics_scraped_while_running_and_the_port_closes(
    start: type[Child], backend: str, command: list[str]
) -> None:
    """--http 127.0.0.1:0: the start line gives the real port; /metrics parses; the
    probes answer; a SIGTERM ends the run with 0, and nothing listens on the port after."""
    child = start(["--backend", backend, "--http", "127.0.0.1:0", *command])
    port = int(child.wait_for(URL_LINE).group(1))
    assert port != 0
    child.wait_for(re.compile("Application is running"))
    status, text = get(port, "/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # The parser drops the _total suffix from a counter family's name.
    assert {"eventsched_events", "eventsched_queue_depth", "eventsched_job_runs"} <= set(families)
    capacity = families["eventsched_queue_capacity"].samples[0].value
    assert capacity == 1000
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200
    child.proc.send_signal(signal.SIGTERM)
    code, lines = child.finish()
    assert code == EXIT_OK, lines
    assert any("0 unaccounted" in line for line in lines), lines
    assert refused(port)


def test_a_port_in_use_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    """Exit 2, one line naming HTTP_ADDRESS, before the scheduler starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_once(["--http", f"127.0.0.1:{port}", "--duration", "5"], tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"eventsched: HTTP_ADDRESS='127.0.0.1:{port}': cannot listen")
    assert "Starting" not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HTTP_ADDRESS": "0.0.0.0:0"}, "not a loopback address; listening beyond this machine"),
        ({"HTTP_ADDRESS": "example.com:80"}, "the host must be an IP address or localhost"),
        ({"HTTP_ADDRESS": "127.0.0.1:99999"}, "the port must be a number from 0 to 65535"),
    ],
)
def test_bad_addresses_are_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    """Non-loopback without a token, a host name, a bad port: exit 2, one line."""
    result = run_once(["--duration", "5"], tmp_path, **env)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert expected in result.stderr
    assert "Starting" not in result.stderr


def test_the_token_is_never_printed(start: type[Child], tmp_path: Path) -> None:
    """Not in the start-up or shutdown logs (even at DEBUG), nor in an error line."""
    child = start(
        ["--log-level", "DEBUG", "--http", "0.0.0.0:0", "--duration", "0.5"], HTTP_TOKEN=TOKEN
    )
    code, lines = child.finish()
    assert code == EXIT_OK, lines
    assert any("job changes over HTTP need the token" in line for line in lines), lines
    assert not any(TOKEN in line for line in lines)
    # Given as a flag beside a bad setting, and as a value that is itself refused.
    other = run_once(["--http-token", TOKEN, "--workers", "0"], tmp_path)
    assert other.returncode == EXIT_CONFIG
    assert TOKEN not in other.stderr + other.stdout
    short = TOKEN[:8]
    bad = run_once(["--duration", "1"], tmp_path, HTTP_TOKEN=short)
    assert bad.returncode == EXIT_CONFIG
    assert bad.stderr.strip() == (
        "eventsched: bad setting HTTP_TOKEN (--http-token) = '**********': "
        "value error, must be at least 16 characters"
    )
    assert short not in bad.stderr
