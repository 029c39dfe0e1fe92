"""Opening the state file (issue 15, items 2 and 3): every refusal is one line, exit 2.

Through the command line, as a user meets them: a symlink, deeply nested JSON, a
read-only file, a path too long or holding a NUL, a file another process holds.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventsched import EXIT_CONFIG, JobStateError, SQLiteJobStore
from eventsched._jobs import check_state_file

WAIT = 60


def clean_env() -> dict[str, str]:
    """Only what a Python process needs: no eventsched setting leaks in."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventsched", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == EXIT_CONFIG, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("eventsched: bad setting STATE_FILE"), line
    assert len(line) < 400, line
    for text in expected:
        assert text in line, line
    return line


def _dangling(tmp: Path) -> str:
    (tmp / "jobs.sqlite").symlink_to(tmp / "nowhere")
    return "jobs.sqlite"


def _to_a_file(tmp: Path) -> str:
    (tmp / "precious.txt").write_text("keep me\n")
    (tmp / "jobs.sqlite").symlink_to(tmp / "precious.txt")
    return "jobs.sqlite"


def _deep_json(tmp: Path) -> str:
    check_state_file(tmp / "jobs.sqlite")
    depth = 200_000
    with sqlite3.connect(tmp / "jobs.sqlite") as conn:
        conn.execute(
            "INSERT INTO jobs (job_id, fingerprint, running, updated_at)"
            " VALUES ('tick', 'f', ?, '')",
            ("[" * depth + "]" * depth,),
        )
    conn.close()
    return "jobs.sqlite"


def _long(tmp: Path) -> str:
    return "j" * 5000


CASES: dict[str, tuple[Callable[[Path], str], list[str]]] = {
    "dangling-symlink": (_dangling, ["is a symlink"]),
    "symlink-to-a-file": (_to_a_file, ["is a symlink"]),
    "deep-json": (_deep_json, ["'tick'", "nested too deeply"]),
    "long-path": (_long, ["File name too long", "..."]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_state_file_that_cannot_be_used_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    name = make(tmp_path)
    assert_one_line(run_cli(["--state-file", name, "--duration", "0.5"], tmp_path), *expected)
    if case == "symlink-to-a-file":
        assert (tmp_path / "precious.txt").read_text() == "keep me\n"


@pytest.mark.slow
def test_a_nul_in_the_state_file_from_dotenv_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"STATE_FILE=jobs\x00.sqlite\n")
    assert_one_line(run_cli(["--duration", "0.5"], tmp_path), "NUL")


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A state file nobody may write, root included (chattr +i), else mode 0400."""
    path = tmp_path / "jobs.sqlite"
    check_state_file(path)
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", path], capture_output=True).returncode == 0:
        try:
            yield path
        finally:
            subprocess.run([chattr, "-i", path], check=True)
        return
    if os.geteuid() == 0:
        pytest.skip("root without chattr +i: no way to make a file read-only here")
    path.chmod(0o400)
    yield path


@pytest.mark.slow
def test_a_read_only_state_file_is_refused_at_start(immutable: Path) -> None:
    """Not a run with an ERROR at every save and nothing saved: exit 2 before start."""
    result = run_cli(["--state-file", immutable.name, "--duration", "0.5"], immutable.parent)
    assert_one_line(result, "read-only")


def test_a_held_state_file_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    holder = SQLiteJobStore(path)
    holder.lock_now()
    try:
        with pytest.raises(JobStateError, match=rf"in use by process {os.getpid()}\b"):
            check_state_file(path)
    finally:
        holder.close_now()
    check_state_file(path)  # released by close


HOLD = """
import sys, time
from eventsched import SQLiteJobStore
store = SQLiteJobStore(sys.argv[1])
store.lock_now()
store.load_now()
print("HOLDING", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_second_process_is_refused_and_a_crash_releases_the_lock(tmp_path: Path) -> None:
    """Issue 15, item 2: one line naming the file and the pid; SIGKILL frees the file."""
    path = tmp_path / "jobs.sqlite"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    ) as first:
        try:
            assert first.stdout is not None
            assert first.stdout.readline().strip() == "HOLDING"
            result = run_cli(["--state-file", path.name, "--duration", "0.5"], tmp_path)
            assert_one_line(result, f"in use by process {first.pid}", "jobs.sqlite")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=WAIT)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=WAIT)
    check_state_file(path)  # the kernel dropped the lock with the process


@pytest.mark.slow
def test_two_demo_runs_on_one_state_file(tmp_path: Path) -> None:
    """``eventsched --state-file j.db`` twice at once: the second exits 2, naming the first."""
    with subprocess.Popen(
        [sys.executable, "-m", "eventsched", "--state-file", "j.db", "--duration", "30"],
        cwd=tmp_path,
        env={**clean_env(), "LOG_LEVEL": "INFO"},
        stderr=subprocess.PIPE,
        text=True,
    ) as first:
        try:
            assert first.stderr is not None
            for line in first.stderr:  # until its scheduler holds the file
                if "saved job(s)" in line:
                    break
            else:
                pytest.fail("the first process ended before opening its state file")
            assert_one_line(
                run_cli(["--state-file", "j.db", "--duration", "0.5"], tmp_path),
                f"in use by process {first.pid}",
                "j.db",
            )
        finally:
            first.send_signal(signal.SIGTERM)
            try:
                first.communicate(timeout=WAIT)
            except subprocess.TimeoutExpired:
                first.kill()
                first.communicate(timeout=WAIT)
