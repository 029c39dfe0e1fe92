"""STATE_URL on the command line: the demo on a shared store, and each refusal in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eventsched import EXIT_CONFIG, EXIT_OK

pytestmark = pytest.mark.slow

WAIT = 60.0


def eventsched(*args: str, code: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("STATE_FILE", "STATE_URL")}
    environ.update(env)
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "eventsched"]
    return subprocess.run(
        [*command, *args], env=environ, capture_output=True, text=True, timeout=WAIT, check=False
    )


def test_the_demo_runs_on_a_shared_store(state_url: str, schema: str, postgres_url: str) -> None:
    import psycopg

    result = eventsched("--duration", "2.5", STATE_URL=state_url)
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {schema}.fires").fetchone()
    assert row is not None
    assert row[0] > 0


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--state-file", "x.state"],
            {"STATE_URL": "postgresql://u@127.0.0.1/test"},
            "STATE_FILE (--state-file) and STATE_URL (--state-url): give one of them",
        ),
        (["--state-url", "mysql://u:hunter2@h/db"], {}, "expected a postgresql://"),
        (
            ["--state-url", "postgresql://u:hunter2@127.0.0.1:1/test", "--duration", "1"],
            {},
            "cannot connect",
        ),
    ],
    ids=["with-state-file", "not-postgresql", "unreachable"],
)
def test_a_bad_state_url_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], expected: str, tmp_path: object
) -> None:
    result = eventsched(*args, **env)
    assert result.returncode == EXIT_CONFIG, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if expected in line]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "hunter2" not in result.stderr + result.stdout


def test_without_psycopg_state_url_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; from eventsched.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    result = eventsched("--state-url", "postgresql://u@h/db", code=code)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.strip().splitlines()[-1] == (
        "eventsched: STATE_URL (--state-url) needs psycopg: pip install 'eventsched[postgres]'"
    )
