"""`eventsched run MODULE:ATTRIBUTE` end to end: the real command, as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eventsched import EXIT_CONFIG, EXIT_OK
from eventsched.cli._settings import Settings, env_name

pytestmark = pytest.mark.slow

BACKENDS = ["asyncio", "trio"]
#: Bound on a whole run of the child (start-up imports take ~1 s, more under load).
WAIT = 60.0

# A scheduler with a handler and a job; the handler appends to a file, so that the test
# sees the user's code ran (not only the library's summary).
APP = """
import os
from eventsched import EventScheduler

scheduler = EventScheduler(queue_size=10, workers=2, grace_period=1)

@scheduler.on("ping")
async def ping(event):
    with open(os.environ["PINGS_FILE"], "a") as out:
        out.write(f"{event.data['n']}\\n")

runs = 0

async def pinger():
    global runs
    runs += 1
    await scheduler.emit("ping", {"n": runs})

scheduler.add_job(pinger, "interval", seconds=0.1, id="pinger")

def make():
    return scheduler
"""

SUMMARY = re.compile(r"Summary: (\d+) emitted, (\d+) handled, .* (\d+) unaccounted")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any eventsched setting, plus ``extra``."""
    names = {env_name(field) for field in Settings.model_fields} | {"HTTP"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(extra)
    return env


def eventsched(
    args: list[str], cwd: Path, *, command: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or [sys.executable, "-m", "eventsched"]), *args],
        cwd=cwd,
        env=clean_env(PINGS_FILE=str(cwd / "pings.txt"), **env),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", ["myapp:scheduler", "myapp:make"])
def test_run_a_good_target(app_dir: Path, backend: str, target: str) -> None:
    """The user's scheduler (object or factory) runs, stops after --duration, exits 0."""
    result = eventsched(["--backend", backend, "--duration", "1", "run", target], app_dir)
    assert result.returncode == EXIT_OK, result.stderr
    assert f"Starting the scheduler application... (backend {backend})" in result.stderr
    # The application's own constructor arguments hold.
    assert "2 handler task(s), queue of 10" in result.stderr
    found = SUMMARY.search(result.stderr)
    assert found is not None, result.stderr
    emitted, handled, unaccounted = map(int, found.groups())
    # Every ping the job emitted was handled, once (the job's own events count too).
    pings = sorted(int(n) for n in (app_dir / "pings.txt").read_text().split())
    assert pings == list(range(1, len(pings) + 1))
    assert len(pings) > 0
    assert handled == emitted
    assert unaccounted == 0
    assert "duration of 1s reached" in result.stderr


def test_the_console_script_runs_too(app_dir: Path) -> None:
    """`eventsched run` (the installed script), not only `python -m eventsched run`."""
    script = Path(sys.executable).with_name("eventsched")
    if not script.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    result = eventsched(
        ["--duration", "0.5", "run", "myapp:scheduler"], app_dir, command=[str(script)]
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert SUMMARY.search(result.stderr) is not None, result.stderr


@pytest.mark.parametrize(
    ("target", "source", "message"),
    [
        ("nocolon", "", "run: target 'nocolon' must be MODULE:ATTRIBUTE"),
        ("not_there:app", "", "run: no module named 'not_there'"),
        ("bad:missing", "x = 1\n", "run: module 'bad' has no attribute 'missing'"),
        ("bad:x", "x = 1\n", "run: 'bad:x' is a int, not an EventScheduler"),
        ("bad:f", "def f(n): pass\n", "run: 'bad:f' needs arguments (n)"),
        ("bad:f", "def f(): return 3\n", "run: 'bad:f'() returned a int, not an EventScheduler"),
    ],
)
def test_bad_targets_are_one_line(tmp_path: Path, target: str, source: str, message: str) -> None:
    """Each kind of the operator's mistake: exit 2, one line, nothing started."""
    if source:
        (tmp_path / "bad.py").write_text(source)
    result = eventsched(["run", target], tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"eventsched {message}"), result.stderr
    assert "Starting" not in result.stderr


@pytest.mark.parametrize(
    ("source", "target", "error"),
    [
        ("import not_installed_anywhere\n", "buggy:s", "ModuleNotFoundError"),
        ("x = 1\nraise RuntimeError('boom at import')\n", "buggy:s", "RuntimeError: boom"),
        ("def s():\n    return 1 / 0\n", "buggy:s", "ZeroDivisionError"),
    ],
)
def test_the_users_bug_shows_its_traceback(
    tmp_path: Path, source: str, target: str, error: str
) -> None:
    """An error raised by the user's code: their frames and error, a last line, exit 2."""
    (tmp_path / "buggy.py").write_text(source)
    result = eventsched(["run", target], tmp_path)
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):", result.stderr
    assert f'File "{tmp_path / "buggy.py"}", line ' in result.stderr
    assert error in result.stderr
    assert lines[-1].startswith("eventsched run: "), result.stderr
    # Loading it is ours: neither the import system's frames nor the command's own.
    assert "importlib" not in result.stderr
    assert "eventsched/cli" not in result.stderr
    assert "Starting" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--queue-size", "5"], {}, ["QUEUE_SIZE (--queue-size)"]),
        ([], {"OVERFLOW": "block"}, ["OVERFLOW (--overflow)"]),
        (["--grace-period", "5"], {"WORKERS": "1"}, ["WORKERS", "GRACE_PERIOD"]),
        ([], {"DEMO_MESSAGE": "hi"}, ["DEMO_MESSAGE (--demo-message): applies to the demo"]),
    ],
)
def test_settings_the_app_fixes_are_refused(
    app_dir: Path, args: list[str], env: dict[str, str], named: list[str]
) -> None:
    """The app's constructor wins: giving its settings to `run` is one line, exit 2.

    Even a value equal to the default is refused: it was given, so the operator expects
    it to hold, and it would not.
    """
    result = eventsched([*args, "--duration", "0.5", "run", "myapp:scheduler"], app_dir, **env)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("eventsched run: "), result.stderr
    assert all(name in result.stderr for name in named), result.stderr
    assert "Starting" not in result.stderr


def test_the_same_settings_are_fine_for_the_demo(tmp_path: Path) -> None:
    """The refusal is `run`'s rule: the demo builds its own scheduler from them."""
    result = eventsched(["--queue-size", "5", "--workers", "2", "--duration", "0.3"], tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert "2 handler task(s), queue of 5" in result.stderr


def test_state_file_is_applied_when_the_app_has_none(app_dir: Path) -> None:
    """STATE_FILE keeps the app's job schedule, as it does the demo's."""
    state = app_dir / "jobs.state"
    result = eventsched(
        ["--duration", "0.5", "run", "myapp:scheduler"], app_dir, STATE_FILE=str(state)
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert b"pinger" in state.read_bytes()  # the job was saved (the format is not ours)


def test_a_state_file_other_than_the_apps_is_refused(tmp_path: Path) -> None:
    """An app that keeps its own state file: another STATE_FILE is one line, exit 2."""
    (tmp_path / "own.py").write_text(
        textwrap.dedent(
            """
            from eventsched import EventScheduler
            scheduler = EventScheduler()
            scheduler.configure_jobs(state_file="mine.state")
            """
        )
    )
    result = eventsched(["--state-file", "other.state", "run", "own:scheduler"], tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert "STATE_FILE (--state-file) = 'other.state'" in result.stderr
    assert "mine.state" in result.stderr
    same = eventsched(
        ["--state-file", "mine.state", "--duration", "0.3", "run", "own:scheduler"], tmp_path
    )
    assert same.returncode == EXIT_OK, same.stderr


def test_a_shared_setting_after_run_says_where_it_goes(app_dir: Path) -> None:
    """`run TARGET --duration 1`: one line saying shared settings go before `run`."""
    result = eventsched(["run", "myapp:scheduler", "--duration", "1"], app_dir)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.strip() == (
        "eventsched: --duration is a shared setting: give it before the subcommand "
        "(eventsched --duration ... run ...), or as an environment variable"
    )


def test_a_timezone_other_than_the_apps_is_refused_and_a_bad_one_too(tmp_path: Path) -> None:
    """TIMEZONE against the app's own configure_jobs(timezone=): one line, exit 2; a zone
    that does not exist: one line, exit 2, naming the setting, the value, what is allowed."""
    (tmp_path / "zoned.py").write_text(
        textwrap.dedent(
            """
            from eventsched import EventScheduler
            scheduler = EventScheduler()
            scheduler.configure_jobs(timezone="Asia/Tokyo")
            """
        )
    )
    result = eventsched(["run", "zoned:scheduler"], tmp_path, TIMEZONE="Europe/Berlin")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert "TIMEZONE (--timezone) = 'Europe/Berlin'" in result.stderr
    assert "'Asia/Tokyo'" in result.stderr
    bad = eventsched(["--timezone", "Mars/Olympus", "run", "zoned:scheduler"], tmp_path)
    assert bad.returncode == EXIT_CONFIG
    assert bad.stderr.splitlines() == [bad.stderr.strip()], bad.stderr
    assert "TIMEZONE (--timezone) = 'Mars/Olympus'" in bad.stderr
    assert "IANA time zone name" in bad.stderr
